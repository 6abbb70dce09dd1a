import {
  LibvirtError,
  StoragePoolState,
  VIR_ERR_ARGUMENT_UNSUPPORTED,
  VIR_ERR_INVALID_ARG,
  VIR_ERR_NO_STORAGE_POOL,
  VIR_ERR_NO_STORAGE_VOL,
  VIR_ERR_NO_SUPPORT,
  VIR_ERR_OPERATION_UNSUPPORTED,
  VIR_ERR_STORAGE_VOL_EXIST,
  buildStorageVolumeXml,
  type Libvirt,
  type StoragePool,
  type StorageVol,
} from '@koala/libvirt';
import { SparseUnsupportedError, StorageError, type BackendVolume, type PoolCapacity, type VolumeBackend, type VolumeSegment } from './volume-backend.js';

const isCode = (err: unknown, ...codes: number[]): boolean => err instanceof LibvirtError && codes.includes(err.code);

/** libvirt's answers for "this driver/pool cannot stream (sparsely)": no download/upload, or a refused flag. */
const isUnsupported = (err: unknown): boolean =>
  isCode(err, VIR_ERR_NO_SUPPORT, VIR_ERR_ARGUMENT_UNSUPPORTED, VIR_ERR_OPERATION_UNSUPPORTED) || (isCode(err, VIR_ERR_INVALID_ARG) && /unsupported flags/i.test((err as Error).message));

/** Zeros for holes written to a thick volume (never modified: stream writes copy what they send). */
const ZEROS = Buffer.alloc(1024 * 1024);

export interface LibvirtPoolOptions {
  /** The open connection (e.g. `() => reconnector.get()`). */
  libvirt: () => Promise<Libvirt>;
  poolName: string;
}

/**
 * A volume store on one libvirt storage pool. Every operation goes through libvirt (volume
 * create/delete, stream upload/download); nothing touches the pool's storage directly.
 * Subclasses give the pool XML and the volume naming.
 */
export abstract class LibvirtPoolBackend implements VolumeBackend {
  abstract readonly kind: string;
  abstract readonly thin: boolean;
  private pool?: Promise<StoragePool>;

  constructor(protected readonly opts: LibvirtPoolOptions) {}

  get poolName(): string {
    return this.opts.poolName;
  }

  protected abstract poolXml(): string;
  /** libvirt volume name of a Koala volume/snapshot id. */
  protected abstract volumeName(id: string): string;
  /** Koala id of a libvirt volume name, or undefined for a volume that is not ours. */
  protected abstract idOf(volumeName: string): string | undefined;
  protected abstract volumeXml(name: string, sizeBytes: number): string;
  /** Whether a newly defined pool is built (mkdir for `dir`; never vgcreate for `logical`). */
  protected readonly buildOnDefine: boolean = true;

  async open(): Promise<void> {
    const lv = await this.opts.libvirt();
    await lv.refreshStoragePool(await this.ensurePool(lv));
  }

  async list(): Promise<BackendVolume[]> {
    const lv = await this.opts.libvirt();
    const pool = await this.ensurePool(lv);
    const out: BackendVolume[] = [];
    for (const vol of await lv.listAllVolumes(pool)) {
      const id = this.idOf(vol.name);
      if (id === undefined) continue;
      try {
        out.push(await this.describe(lv, id, vol));
      } catch (err) {
        if (!isCode(err, VIR_ERR_NO_STORAGE_VOL)) throw err; // deleted meanwhile
      }
    }
    return out;
  }

  async get(id: string): Promise<BackendVolume | undefined> {
    const lv = await this.opts.libvirt();
    const vol = await this.lookup(lv, id);
    return vol ? this.describe(lv, id, vol) : undefined;
  }

  async exists(id: string): Promise<boolean> {
    return (await this.lookup(await this.opts.libvirt(), id)) !== undefined;
  }

  async create(id: string, sizeBytes: number): Promise<BackendVolume> {
    const lv = await this.opts.libvirt();
    const pool = await this.ensurePool(lv);
    try {
      const vol = await lv.createVolume(pool, this.volumeXml(this.volumeName(id), sizeBytes));
      return await this.describe(lv, id, vol);
    } catch (err) {
      // (the test driver says VIR_ERR_OPERATION_FAILED instead of VIR_ERR_STORAGE_VOL_EXIST)
      if (isCode(err, VIR_ERR_STORAGE_VOL_EXIST) || (err instanceof LibvirtError && (await this.lookup(lv, id)))) {
        throw new StorageError('VolumeExists', `volume ${id} already exists in pool ${this.poolName}`);
      }
      throw err;
    }
  }

  async delete(id: string): Promise<void> {
    const lv = await this.opts.libvirt();
    const vol = await this.lookup(lv, id);
    if (!vol) return;
    try {
      await lv.deleteVolume(vol);
    } catch (err) {
      if (!isCode(err, VIR_ERR_NO_STORAGE_VOL)) throw err;
    }
  }

  async path(id: string): Promise<string> {
    const lv = await this.opts.libvirt();
    return lv.getVolumePath(await this.require(lv, id));
  }

  async capacity(): Promise<PoolCapacity> {
    const lv = await this.opts.libvirt();
    const info = await lv.getStoragePoolInfo(await this.ensurePool(lv));
    return { capacityBytes: Number(info.capacity), availableBytes: Number(info.available) };
  }

  async read(id: string, offset: number, length: number): Promise<Buffer> {
    const lv = await this.opts.libvirt();
    return lv.downloadVolume(await this.require(lv, id), { offset, length });
  }

  async write(id: string, offset: number, data: Uint8Array): Promise<void> {
    const lv = await this.opts.libvirt();
    await lv.uploadVolume(await this.require(lv, id), data, { offset, length: data.length });
  }

  /**
   * A sparse download (VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM) on a connection of its own: the
   * segments are usually piped into an upload, and a download pauses its whole socket whenever its
   * consumer lags, which on a shared connection would stall the upload (libvirtd acknowledges
   * upload packets in the same queue as the download's data) and every other call of the SC.
   */
  async *readSegments(id: string, offset: number, length: number): AsyncGenerator<VolumeSegment, void, undefined> {
    const lv = await this.opts.libvirt();
    const vol = await this.require(lv, id);
    const reader = await lv.connectAgain();
    let started = false;
    try {
      for await (const seg of reader.downloadVolumeSparse(vol, { offset, length })) {
        started = true;
        yield seg;
      }
    } catch (err) {
      if (!started && isUnsupported(err)) throw new SparseUnsupportedError(`pool ${this.poolName} cannot stream ${id} sparsely: ${(err as Error).message}`);
      throw err;
    } finally {
      await reader.close();
    }
  }

  /**
   * Writes [0, length) of a new volume in one upload. Thin (a new sparse file): a sparse upload
   * in which holes are skipped. libvirt turns a hole in a file into a seek plus a truncation at
   * the new position, so the upload always runs to the volume's end (capacity), the rest going as
   * one final hole; until then the file is shorter than its capacity. Thick (a new LV may hold
   * stale data): a plain upload with zeros for the holes.
   */
  async writeSegments(id: string, segments: AsyncIterable<VolumeSegment>, length: number): Promise<number> {
    const lv = await this.opts.libvirt();
    const vol = await this.require(lv, id);
    let started = false;
    const checked = async function* (): AsyncGenerator<VolumeSegment, void, undefined> {
      let pos = 0;
      for await (const seg of segments) {
        started = true;
        if (seg.offset !== pos) throw new Error(`segment at ${seg.offset}, expected ${pos}`);
        pos += seg.kind === 'data' ? seg.data.length : seg.length;
        if (pos > length) throw new Error(`segments run past ${length} bytes`);
        yield seg;
      }
      if (pos !== length) throw new Error(`segments end at ${pos} of ${length} bytes`);
    };
    try {
      if (this.thin) {
        const { capacity } = await lv.getVolumeInfo(vol);
        if (capacity < length) throw new StorageError('InvalidParameterValue', `volume ${id} (${capacity} bytes) is smaller than ${length} bytes`);
        return await lv.uploadVolumeSparse(vol, checked(), { offset: 0, length: capacity });
      }
      await lv.uploadVolume(vol, zeroFilled(checked()), { offset: 0, length });
      return length;
    } catch (err) {
      if (!started && isUnsupported(err)) throw new SparseUnsupportedError(`pool ${this.poolName} cannot take ${id} as a sparse stream: ${(err as Error).message}`);
      throw err;
    }
  }

  private async describe(lv: Libvirt, id: string, vol: StorageVol): Promise<BackendVolume> {
    const info = await lv.getVolumeInfo(vol);
    return { id, path: await lv.getVolumePath(vol), capacityBytes: Number(info.capacity), allocationBytes: Number(info.allocation) };
  }

  private async lookup(lv: Libvirt, id: string): Promise<StorageVol | undefined> {
    const pool = await this.ensurePool(lv);
    try {
      return await lv.lookupVolumeByName(pool, this.volumeName(id));
    } catch (err) {
      if (isCode(err, VIR_ERR_NO_STORAGE_VOL)) return undefined;
      throw err;
    }
  }

  private async require(lv: Libvirt, id: string): Promise<StorageVol> {
    const vol = await this.lookup(lv, id);
    if (!vol) throw new StorageError('InvalidVolume.NotFound', `volume ${id} does not exist in pool ${this.poolName}`);
    return vol;
  }

  /** Looks the pool up, defining, building, starting and autostarting it when needed (once at a time). */
  protected ensurePool(lv: Libvirt): Promise<StoragePool> {
    this.pool ??= this.preparePool(lv).catch((err) => {
      this.pool = undefined;
      throw err;
    });
    return this.pool;
  }

  private async preparePool(lv: Libvirt): Promise<StoragePool> {
    let pool: StoragePool;
    try {
      pool = await lv.lookupStoragePoolByName(this.poolName);
    } catch (err) {
      if (!isCode(err, VIR_ERR_NO_STORAGE_POOL)) throw err;
      pool = await lv.defineStoragePool(this.poolXml());
      if (this.buildOnDefine) await lv.buildStoragePool(pool);
    }
    const info = await lv.getStoragePoolInfo(pool);
    if (info.state !== StoragePoolState.RUNNING) await lv.createStoragePool(pool);
    if (!(await lv.getStoragePoolAutostart(pool))) await lv.setStoragePoolAutostart(pool, true);
    return pool;
  }
}

/** The bytes of in-order segments, holes as zeros (in pieces of at most 1 MiB). */
async function* zeroFilled(segments: AsyncIterable<VolumeSegment>): AsyncGenerator<Buffer, void, undefined> {
  for await (const seg of segments) {
    if (seg.kind === 'data') {
      yield seg.data;
      continue;
    }
    for (let left = seg.length; left > 0; left -= ZEROS.length) yield ZEROS.subarray(0, Math.min(left, ZEROS.length));
  }
}

export const rawVolumeXml = (name: string, sizeBytes: number, opts: { allocationBytes?: number; mode?: string } = {}) =>
  buildStorageVolumeXml({ name, format: 'raw', capacityBytes: sizeBytes, allocationBytes: opts.allocationBytes ?? 0, ...(opts.mode ? { permissions: { mode: opts.mode } } : {}) });
