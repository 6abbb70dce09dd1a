import { buildStoragePoolXml } from '@koala/libvirt';
import { LibvirtPoolBackend, rawVolumeXml, type LibvirtPoolOptions } from './libvirt-pool-backend.js';

export interface DirPoolOptions extends LibvirtPoolOptions {
  /** Directory of the pool, e.g. `$KOALA_HOME/volumes`. */
  targetPath: string;
}

/**
 * A libvirt `dir` pool of sparse raw files `<id>.img` (capacity = size, allocation 0): the
 * default volume backend and the snapshot store. Thin: untouched ranges take no space.
 */
export class DirPoolBackend extends LibvirtPoolBackend {
  readonly kind = 'dir';
  readonly thin: boolean = true;

  constructor(private readonly dirOpts: DirPoolOptions) {
    super(dirOpts);
  }

  protected poolXml() {
    return buildStoragePoolXml({ type: 'dir', name: this.poolName, targetPath: this.dirOpts.targetPath });
  }

  protected volumeName(id: string) {
    return `${id}.img`;
  }

  protected idOf(name: string) {
    const m = /^(.+)\.img$/.exec(name);
    return m ? m[1] : undefined;
  }

  protected volumeXml(name: string, sizeBytes: number) {
    // 0600: only root (tgtd) reads volume files.
    return rawVolumeXml(name, sizeBytes, { mode: '0600' });
  }
}
