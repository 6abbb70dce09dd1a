import { statSync } from 'node:fs';
import {
  DomainState,
  LibvirtError,
  StoragePoolState,
  VIR_DOMAIN_UNDEFINE_MANAGED_SAVE,
  VIR_DOMAIN_UNDEFINE_NVRAM,
  VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
  VIR_ERR_ARGUMENT_UNSUPPORTED,
  VIR_ERR_INVALID_ARG,
  VIR_ERR_NO_DOMAIN,
  VIR_ERR_NO_STORAGE_POOL,
  VIR_ERR_NO_STORAGE_VOL,
  VIR_ERR_NO_SUPPORT,
  VIR_ERR_OPERATION_INVALID,
  VIR_ERR_OPERATION_UNSUPPORTED,
  buildDomainXml,
  buildStoragePoolXml,
  buildStorageVolumeXml,
  chooseDomainType,
  parseDomainXml,
  parseStoragePoolXml,
  type DiskSpec,
  type Domain,
  type DomainType,
  type Libvirt,
  type StoragePool,
} from '@koala/libvirt';
import type { Logger } from '@koala/logging';
import type { CachedImage } from '../images/image-cache.js';
import { fromDomainMetadata, toDomainMetadata } from './domain-metadata.js';
import { volumeNames, type DomainRunState, type HostDomain, type HostDomainEvent, type Hypervisor, type InstanceDomainSpec, type VolumeRef } from './hypervisor.js';
import type { NodeLibvirt } from './node-libvirt.js';

export const INSTANCES_POOL = 'koala-instances';

/** virDomainShutdownFlagValues / virDomainRebootFlagValues: ACPI power button. */
const VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN = 1;
const VIR_DOMAIN_REBOOT_ACPI_POWER_BTN = 1;

const isCode = (err: unknown, ...codes: number[]) => err instanceof LibvirtError && codes.includes(err.code);
/** Errors a driver gives for flags or calls it does not implement (the test driver). */
const UNSUPPORTED = [VIR_ERR_NO_SUPPORT, VIR_ERR_OPERATION_UNSUPPORTED, VIR_ERR_ARGUMENT_UNSUPPORTED, VIR_ERR_INVALID_ARG];

export function runState(state: number): DomainRunState {
  switch (state) {
    case DomainState.RUNNING:
    case DomainState.BLOCKED:
    case DomainState.PMSUSPENDED:
      return 'running';
    case DomainState.PAUSED:
      return 'paused';
    case DomainState.SHUTDOWN:
      return 'shutdown';
    case DomainState.SHUTOFF:
      return 'shutoff';
    case DomainState.CRASHED:
      return 'crashed';
    default:
      return 'other';
  }
}

/**
 * Whether QEMU can use /dev/kvm: the device exists and grants read/write beyond its owner (udev
 * makes it 0660 root:kvm and the libvirt-qemu user is in group kvm). A 0600 root-only device
 * (some containers) makes QEMU fail with "Could not access KVM kernel module".
 */
export function kvmDeviceUsable(path = '/dev/kvm'): boolean {
  try {
    const st = statSync(path);
    return st.isCharacterDevice() && (st.mode & 0o066) !== 0;
  } catch {
    return false;
  }
}

export interface LibvirtHypervisorOptions {
  /** Directory of the instances pool (`$KOALA_HOME/instances`). */
  poolPath: string;
  poolName?: string;
  /** auto | kvm | qemu (KOALA_NC_DOMAIN_TYPE). */
  domainType: 'auto' | 'kvm' | 'qemu';
  kvmUsable?: () => boolean;
}

/**
 * Instances on libvirt: disks in a `dir` pool, domains named after the instance, Koala metadata.
 *
 * On the test driver (`test:///default`, simulated nodes) storage lives in the driver's memory:
 * volumes are created and deleted as usual but stream upload is not implemented
 * (VIR_ERR_NO_SUPPORT), so the config drive volume exists with the ISO's size but without its
 * bytes; domains "run" without any guest (no console output); the domain type is written as
 * `qemu`, which the test driver accepts.
 */
export class LibvirtHypervisor implements Hypervisor {
  private readonly poolName: string;
  private type?: DomainType;
  private poolChecked = false;
  private readonly eventListeners: ((ev: HostDomainEvent) => void)[] = [];
  private readonly connectedListeners: (() => unknown)[] = [];

  constructor(
    private readonly conn: NodeLibvirt,
    private readonly opts: LibvirtHypervisorOptions,
    private readonly logger?: Logger,
  ) {
    this.poolName = opts.poolName ?? INSTANCES_POOL;
    conn.onConnected(async (lv) => {
      const sub = await lv.subscribeDomainLifecycle();
      sub.on('event', (ev) => {
        for (const l of this.eventListeners) l({ name: ev.domain.name, event: ev.eventName, detail: ev.detail });
      });
      for (const l of this.connectedListeners) await l();
    });
  }

  onDomainEvent(listener: (ev: HostDomainEvent) => void): void {
    this.eventListeners.push(listener);
  }

  onConnected(listener: () => unknown): void {
    this.connectedListeners.push(listener);
    if (this.conn.isConnected)
      void Promise.resolve()
        .then(listener)
        .catch((err) => this.logger?.error({ err }, 'hypervisor connected listener failed'));
  }

  async prepare(): Promise<void> {
    await this.conn.run(async (lv) => {
      await this.ensurePool(lv);
      this.type = await this.pickType(lv);
    });
  }

  private async pickType(lv: Libvirt): Promise<DomainType> {
    if ((await lv.getType()).toUpperCase() === 'TEST') return 'qemu';
    if (this.opts.domainType !== 'auto') return this.opts.domainType;
    return chooseDomainType(await lv.getCapabilities(), (this.opts.kvmUsable ?? kvmDeviceUsable)());
  }

  private async ensurePool(lv: Libvirt): Promise<StoragePool> {
    let pool: StoragePool | undefined;
    try {
      pool = await lv.lookupStoragePoolByName(this.poolName);
      const path = parseStoragePoolXml(await lv.getStoragePoolXml(pool)).targetPath;
      if (path !== this.opts.poolPath && !this.poolChecked) {
        // Defined by another KOALA_HOME (e.g. a test): take it over only if it holds nothing.
        const active = (await lv.getStoragePoolInfo(pool)).state === StoragePoolState.RUNNING;
        const vols = active ? await lv.listAllVolumes(pool) : [];
        if (vols.length === 0) {
          if (active) await lv.destroyStoragePool(pool);
          await lv.undefineStoragePool(pool);
          this.logger?.warn({ pool: this.poolName, was: path, now: this.opts.poolPath }, 'instances pool pointed elsewhere and was empty: redefined');
          pool = undefined;
        } else {
          this.logger?.warn({ pool: this.poolName, path, configured: this.opts.poolPath }, 'instances pool is in another directory and holds volumes: using it as it is');
        }
      }
    } catch (err) {
      if (!isCode(err, VIR_ERR_NO_STORAGE_POOL)) throw err;
    }
    this.poolChecked = true;
    if (!pool) {
      pool = await lv.defineStoragePool(buildStoragePoolXml({ type: 'dir', name: this.poolName, targetPath: this.opts.poolPath }));
      await lv.buildStoragePool(pool);
      this.logger?.info({ pool: this.poolName, path: this.opts.poolPath }, 'instances pool defined');
    }
    if ((await lv.getStoragePoolInfo(pool)).state !== StoragePoolState.RUNNING) {
      try {
        await lv.createStoragePool(pool);
      } catch {
        await lv.buildStoragePool(pool); // its directory went away: make it again
        await lv.createStoragePool(pool);
      }
    }
    if (!(await lv.getStoragePoolAutostart(pool))) await lv.setStoragePoolAutostart(pool, true);
    return pool;
  }

  private async lookupDomain(lv: Libvirt, name: string): Promise<Domain | undefined> {
    try {
      return await lv.lookupDomainByName(name);
    } catch (err) {
      if (isCode(err, VIR_ERR_NO_DOMAIN)) return undefined;
      throw err;
    }
  }

  private async describe(lv: Libvirt, dom: Domain): Promise<HostDomain> {
    const [xml, st] = await Promise.all([lv.getDomainXml(dom), lv.getDomainState(dom)]);
    const koala = parseDomainXml(xml).koala;
    const out: HostDomain = { name: dom.name, state: runState(st.state) };
    if (koala) out.meta = fromDomainMetadata(koala);
    return out;
  }

  listDomains(): Promise<HostDomain[]> {
    return this.conn.run(async (lv) => {
      const out: HostDomain[] = [];
      for (const dom of await lv.listAllDomains()) {
        try {
          out.push(await this.describe(lv, dom));
        } catch (err) {
          if (!isCode(err, VIR_ERR_NO_DOMAIN)) throw err; // undefined in between
        }
      }
      return out;
    });
  }

  getDomain(name: string): Promise<HostDomain | undefined> {
    return this.conn.run(async (lv) => {
      const dom = await this.lookupDomain(lv, name);
      if (!dom) return undefined;
      try {
        return await this.describe(lv, dom);
      } catch (err) {
        if (isCode(err, VIR_ERR_NO_DOMAIN)) return undefined;
        throw err;
      }
    });
  }

  createRootDisk(instanceId: string, base: CachedImage, capacityBytes: number): Promise<VolumeRef> {
    const name = volumeNames(instanceId).root;
    return this.conn.run(async (lv) => {
      const pool = await this.ensurePool(lv);
      const xml = buildStorageVolumeXml({ name, format: 'qcow2', capacityBytes, backingStore: { path: base.path, format: base.format } });
      await lv.createVolume(pool, xml);
      return { pool: this.poolName, name, format: 'qcow2' as const };
    });
  }

  createEphemeralDisk(instanceId: string, capacityBytes: number): Promise<VolumeRef> {
    const name = volumeNames(instanceId).ephemeral;
    return this.conn.run(async (lv) => {
      const pool = await this.ensurePool(lv);
      await lv.createVolume(pool, buildStorageVolumeXml({ name, format: 'raw', capacityBytes, allocationBytes: 0 }));
      return { pool: this.poolName, name, format: 'raw' as const };
    });
  }

  createConfigDrive(instanceId: string, iso: Buffer): Promise<VolumeRef> {
    const name = volumeNames(instanceId).configDrive;
    return this.conn.run(async (lv) => {
      const pool = await this.ensurePool(lv);
      const vol = await lv.createVolume(pool, buildStorageVolumeXml({ name, format: 'raw', capacityBytes: iso.length, permissions: { mode: '0644' } }));
      try {
        await lv.uploadVolume(vol, iso);
      } catch (err) {
        if (!isCode(err, VIR_ERR_NO_SUPPORT)) throw err;
        // test:///default: no stream upload; the volume stands in for the drive (simulated).
        this.logger?.debug({ instanceId, volume: name }, 'driver cannot upload volumes; config drive content simulated');
      }
      return { pool: this.poolName, name, format: 'raw' as const };
    });
  }

  deleteVolumes(instanceId: string): Promise<void> {
    return this.conn.run(async (lv) => {
      const pool = await this.ensurePool(lv);
      for (const name of Object.values(volumeNames(instanceId))) {
        try {
          await lv.deleteVolume(await lv.lookupVolumeByName(pool, name));
        } catch (err) {
          if (!isCode(err, VIR_ERR_NO_STORAGE_VOL)) throw err;
        }
      }
    });
  }

  defineDomain(spec: InstanceDomainSpec): Promise<void> {
    return this.conn.run(async (lv) => {
      this.type ??= await this.pickType(lv);
      const disks: DiskSpec[] = [{ kind: 'volume', pool: spec.root.pool, volume: spec.root.name, format: spec.root.format, targetDev: 'vda' }];
      if (spec.ephemeral) disks.push({ kind: 'volume', pool: spec.ephemeral.pool, volume: spec.ephemeral.name, format: spec.ephemeral.format, targetDev: 'vdb' });
      if (spec.configDrive) {
        disks.push({ kind: 'volume', pool: spec.configDrive.pool, volume: spec.configDrive.name, format: spec.configDrive.format, targetDev: spec.ephemeral ? 'vdc' : 'vdb', readonly: true });
      }
      const xml = buildDomainXml({
        name: spec.meta.instanceId,
        type: this.type,
        memoryMiB: spec.memoryMiB,
        vcpus: spec.vcpus,
        boot: spec.boot,
        onPoweroff: 'destroy',
        onReboot: 'restart',
        onCrash: 'destroy',
        disks,
        // The tap by the name the node's firewall and L2 rules already hold for it.
        ...(spec.network ? { interfaces: [{ type: 'network' as const, source: spec.network.network, mac: spec.network.mac, targetDev: spec.network.tap }] } : {}),
        serialLog: { path: spec.consoleLogPath, mode: 'pty-log', append: true },
        koala: toDomainMetadata(spec.meta),
        description: `Koala instance ${spec.meta.instanceId} (${spec.meta.instanceType})`,
      });
      await lv.defineDomain(xml);
    });
  }

  private withDomain(name: string, fn: (lv: Libvirt, dom: Domain) => Promise<void>, missingOk = false): Promise<void> {
    return this.conn.run(async (lv) => {
      const dom = await this.lookupDomain(lv, name);
      if (!dom) {
        if (missingOk) return;
        throw new LibvirtError(VIR_ERR_NO_DOMAIN, 0, `domain ${name} not found`);
      }
      await fn(lv, dom);
    });
  }

  startDomain(name: string): Promise<void> {
    return this.withDomain(name, async (lv, dom) => {
      await lv.startDomain(dom);
    });
  }

  shutdownDomain(name: string): Promise<void> {
    return this.withDomain(name, async (lv, dom) => {
      try {
        await lv.shutdownDomain(dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN);
      } catch (err) {
        if (!isCode(err, ...UNSUPPORTED)) throw err;
        await lv.shutdownDomain(dom); // test driver: no flags
      }
    });
  }

  rebootDomain(name: string): Promise<void> {
    return this.withDomain(name, async (lv, dom) => {
      try {
        await lv.rebootDomain(dom, VIR_DOMAIN_REBOOT_ACPI_POWER_BTN);
      } catch (err) {
        if (!isCode(err, ...UNSUPPORTED)) throw err;
        await lv.rebootDomain(dom, 0);
      }
    });
  }

  destroyDomain(name: string): Promise<void> {
    return this.withDomain(
      name,
      async (lv, dom) => {
        try {
          await lv.destroyDomain(dom);
        } catch (err) {
          if (!isCode(err, VIR_ERR_OPERATION_INVALID, VIR_ERR_NO_DOMAIN)) throw err; // not running
        }
      },
      true,
    );
  }

  undefineDomain(name: string): Promise<void> {
    return this.withDomain(
      name,
      async (lv, dom) => {
        const attempts = [
          VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
          VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
          0,
        ];
        for (const [i, flags] of attempts.entries()) {
          try {
            await lv.undefineDomain(dom, flags);
            return;
          } catch (err) {
            if (isCode(err, VIR_ERR_NO_DOMAIN)) return;
            if (i === attempts.length - 1 || !isCode(err, ...UNSUPPORTED)) throw err;
          }
        }
      },
      true,
    );
  }
}
