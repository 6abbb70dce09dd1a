import { buildStoragePoolXml } from '@koala/libvirt';
import { LibvirtPoolBackend, rawVolumeXml, type LibvirtPoolOptions } from './libvirt-pool-backend.js';

export interface LogicalPoolOptions extends LibvirtPoolOptions {
  /** LVM volume group (KOALA_LVM_VG); it must exist already (the SC never builds a VG). */
  vgName: string;
}

/**
 * A libvirt `logical` (LVM) pool: one logical volume per Koala volume, named by its id, at
 * `/dev/<vg>/<id>`. Thick: space is taken at create and a new LV holds old data, so copies
 * write every byte. Only exercised on libvirt's test driver here (no device-mapper on the
 * project's machines): see README "Storage backends".
 */
export class LogicalPoolBackend extends LibvirtPoolBackend {
  readonly kind = 'logical';
  readonly thin = false;
  /** The VG is the operator's: defining the pool never runs vgcreate (pool-build). */
  protected override readonly buildOnDefine = false;

  constructor(private readonly lvmOpts: LogicalPoolOptions) {
    super(lvmOpts);
  }

  protected poolXml() {
    return buildStoragePoolXml({ type: 'logical', name: this.poolName, vgName: this.lvmOpts.vgName });
  }

  protected volumeName(id: string) {
    return id;
  }

  protected idOf(name: string) {
    return /^(vol|snap)-[0-9a-z]+$/.test(name) ? name : undefined;
  }

  protected volumeXml(name: string, sizeBytes: number) {
    // allocation = capacity: a fully allocated (non-thin) LV.
    return rawVolumeXml(name, sizeBytes, { allocationBytes: sizeBytes });
  }
}
