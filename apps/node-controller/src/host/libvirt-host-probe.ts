import type { DomainReport, Resources } from '@koala/contracts';
import { LibvirtError, VIR_ERR_NO_DOMAIN, VIR_ERR_NO_STORAGE_POOL, formatLibvirtVersion, parseDomainXml, type KoalaDomainMetadata } from '@koala/libvirt';
import { instanceStateOf } from '../instances/instance-manager.js';
import { runState } from '../libvirt/libvirt-hypervisor.js';
import type { NodeLibvirt } from '../libvirt/node-libvirt.js';
import type { HostProbe } from './host-probe.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/**
 * The host as libvirt sees it, over the NC's one connection: cores and memory from
 * nodeGetInfo, the hypervisor from connectGetType/Version, disk from the instances pool, and
 * the domains (Koala's carry their instance id from the domain metadata).
 */
export class LibvirtHostProbe implements HostProbe {
  /** Metadata never changes once defined: parsed once per domain UUID. */
  private readonly metadata = new Map<string, KoalaDomainMetadata | null>();
  private description?: string;

  constructor(
    private readonly conn: NodeLibvirt,
    private readonly opts: { poolName: string; node: string },
  ) {}

  async describe(): Promise<{ uri: string; hypervisor: string }> {
    this.description ??= await this.conn.run(async (lv) => {
      const [type, version, lib] = await Promise.all([lv.getType(), lv.getVersion(), lv.getLibVersion()]);
      return `${type} ${formatLibvirtVersion(version)} (libvirt ${formatLibvirtVersion(lib)})`;
    });
    return { uri: this.conn.uri, hypervisor: this.description };
  }

  async total(): Promise<Resources> {
    return this.conn.run(async (lv) => {
      const info = await lv.getNodeInfo();
      let diskGiB = 0;
      try {
        const pool = await lv.lookupStoragePoolByName(this.opts.poolName);
        diskGiB = Math.floor((await lv.getStoragePoolInfo(pool)).capacity / GiB);
      } catch (err) {
        if (!(err instanceof LibvirtError && err.code === VIR_ERR_NO_STORAGE_POOL)) throw err;
      }
      return { cores: info.cpus, memoryMiB: Math.floor((info.memory * 1024) / MiB), diskGiB };
    });
  }

  async domains(): Promise<DomainReport[]> {
    return this.conn.run(async (lv) => {
      const out: DomainReport[] = [];
      const live = new Set<string>();
      for (const dom of await lv.listAllDomains()) {
        live.add(dom.uuid);
        try {
          let meta = this.metadata.get(dom.uuid);
          if (meta === undefined) {
            meta = parseDomainXml(await lv.getDomainXml(dom)).koala ?? null;
            this.metadata.set(dom.uuid, meta);
          }
          // Simulated nodes share test:///default: leave other nodes' instances to them.
          if (meta?.extra?.node && meta.extra.node !== this.opts.node) continue;
          const state = instanceStateOf(runState((await lv.getDomainState(dom)).state));
          out.push({ name: dom.name, ...(meta ? { instanceId: meta.instanceId } : {}), state });
        } catch (err) {
          if (!(err instanceof LibvirtError && err.code === VIR_ERR_NO_DOMAIN)) throw err;
        }
      }
      for (const uuid of this.metadata.keys()) if (!live.has(uuid)) this.metadata.delete(uuid);
      return out;
    });
  }
}
