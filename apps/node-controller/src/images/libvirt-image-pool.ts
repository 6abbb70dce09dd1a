import {
  LibvirtError,
  StoragePoolState,
  VIR_ERR_ARGUMENT_UNSUPPORTED,
  VIR_ERR_NO_STORAGE_POOL,
  VIR_ERR_NO_STORAGE_VOL,
  VIR_ERR_NO_SUPPORT,
  VIR_ERR_OPERATION_UNSUPPORTED,
  VIR_ERR_STORAGE_VOL_EXIST,
  buildStoragePoolXml,
  buildStorageVolumeXml,
  parseStorageVolumeXml,
  type Libvirt,
  type StoragePool,
} from '@koala/libvirt';
import { markerName, planSweep, type ImagePool, type PoolImage, type WriteOutcome } from './image-pool.js';

export interface LibvirtImagePoolOptions {
  /** Returns the open connection (e.g. `() => reconnector.get()` of a LibvirtReconnector). */
  libvirt: () => Promise<Libvirt>;
  /** Pool name, e.g. `koala-images` (KOALA_IMAGE_CACHE_POOL). Simulated nodes sharing one
   *  `test:///default` driver must each use their own name. */
  poolName: string;
  /** Directory of the `dir` pool, e.g. `$KOALA_HOME/cache/images` (KOALA_IMAGE_CACHE_DIR). */
  targetPath: string;
  /** Called for each leftover volume removed by open() (logging). */
  onLeftoverRemoved?: (name: string) => void;
}

const UNSUPPORTED = new Set([VIR_ERR_NO_SUPPORT, VIR_ERR_OPERATION_UNSUPPORTED, VIR_ERR_ARGUMENT_UNSUPPORTED]);
const isCode = (err: unknown, ...codes: number[]): boolean => err instanceof LibvirtError && codes.includes(err.code);

/**
 * The image cache's storage: a libvirt `dir` pool. Every byte goes through libvirt (volume
 * create + stream upload); nothing writes into the pool directory directly. Volumes are raw
 * files of exactly the image's size, mode 0644 (QEMU reads them as backing files).
 */
export class LibvirtImagePool implements ImagePool {
  readonly name: string;
  private pool?: StoragePool;

  constructor(private readonly opts: LibvirtImagePoolOptions) {
    this.name = opts.poolName;
  }

  async open(): Promise<PoolImage[]> {
    const lv = await this.opts.libvirt();
    const pool = await this.ensurePool(lv);
    await lv.refreshStoragePool(pool);
    const vols = await lv.listAllVolumes(pool);
    const { complete, remove } = planSweep(vols.map((v) => v.name));
    for (const name of remove) {
      await this.deleteVolume(name);
      this.opts.onLeftoverRemoved?.(name);
    }
    const out: PoolImage[] = [];
    for (const sha256 of complete) {
      const vol = await lv.lookupVolumeByName(pool, sha256);
      const xml = await lv.getVolumeXml(vol);
      const parsed = parseStorageVolumeXml(xml);
      out.push({
        sha256,
        volume: sha256,
        path: parsed.path ?? (await lv.getVolumePath(vol)),
        // <physical> is the file's length; capacity is the virtual size once libvirt probed a qcow2.
        sizeBytes: physicalBytes(xml) ?? parsed.capacityBytes ?? 0,
      });
    }
    return out;
  }

  async createVolume(name: string, sizeBytes: number): Promise<string> {
    const lv = await this.opts.libvirt();
    const pool = await this.ensurePool(lv);
    const xml = buildStorageVolumeXml({ name, format: 'raw', capacityBytes: sizeBytes, allocationBytes: 0, permissions: { mode: '0644' } });
    let vol;
    try {
      vol = await lv.createVolume(pool, xml);
    } catch (err) {
      if (!isCode(err, VIR_ERR_STORAGE_VOL_EXIST)) throw err;
      await this.deleteVolume(name); // a stale volume of an earlier failed attempt
      vol = await lv.createVolume(pool, xml);
    }
    return lv.getVolumePath(vol);
  }

  async writeVolume(name: string, source: AsyncIterable<Uint8Array>): Promise<WriteOutcome> {
    const lv = await this.opts.libvirt();
    const vol = await lv.lookupVolumeByName(await this.ensurePool(lv), name);
    let started = false;
    const tracked = (async function* () {
      started = true;
      yield* source;
    })();
    try {
      await lv.uploadVolume(vol, tracked);
      return 'written';
    } catch (err) {
      // The test driver refuses virStorageVolUpload before any byte is sent.
      if (!started && err instanceof LibvirtError && UNSUPPORTED.has(err.code)) return 'unsupported';
      throw err;
    }
  }

  async markVerified(sha256: string): Promise<void> {
    await this.createVolume(markerName(sha256), 1);
  }

  async deleteVolume(name: string): Promise<void> {
    const lv = await this.opts.libvirt();
    const pool = await this.ensurePool(lv);
    try {
      await lv.deleteVolume(await lv.lookupVolumeByName(pool, name));
    } catch (err) {
      if (!isCode(err, VIR_ERR_NO_STORAGE_VOL)) throw err;
    }
  }

  /** Looks the pool up, defining, building, starting and autostarting it when needed. */
  private async ensurePool(lv: Libvirt): Promise<StoragePool> {
    if (this.pool) return this.pool;
    let pool: StoragePool;
    try {
      pool = await lv.lookupStoragePoolByName(this.opts.poolName);
    } catch (err) {
      if (!isCode(err, VIR_ERR_NO_STORAGE_POOL)) throw err;
      pool = await lv.defineStoragePool(buildStoragePoolXml({ type: 'dir', name: this.opts.poolName, targetPath: this.opts.targetPath }));
      await lv.buildStoragePool(pool);
    }
    const info = await lv.getStoragePoolInfo(pool);
    if (info.state !== StoragePoolState.RUNNING) await lv.createStoragePool(pool);
    if (!(await lv.getStoragePoolAutostart(pool))) await lv.setStoragePoolAutostart(pool, true);
    this.pool = pool;
    return pool;
  }
}

function physicalBytes(xml: string): number | undefined {
  const m = /<physical unit=['"]bytes['"]>(\d+)<\/physical>/.exec(xml);
  return m ? Number(m[1]) : undefined;
}
