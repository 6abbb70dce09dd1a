import { StorageError, type BackendVolume, type PoolCapacity, type VolumeBackend } from './volume-backend.js';

/** An in-memory, sparse VolumeBackend for unit tests (written ranges only are stored). */
export class MemoryBackend implements VolumeBackend {
  readonly volumes = new Map<string, { capacity: number; writes: { offset: number; data: Buffer }[] }>();
  /** Make the next create/write of this id fail. */
  readonly failOn = new Set<string>();

  constructor(
    readonly kind = 'memory',
    readonly thin = true,
    private readonly poolBytes = 1000 * 1024 ** 3,
  ) {}

  async open() {}

  async list(): Promise<BackendVolume[]> {
    return [...this.volumes.keys()].map((id) => this.describe(id));
  }

  async get(id: string) {
    return this.volumes.has(id) ? this.describe(id) : undefined;
  }

  async exists(id: string) {
    return this.volumes.has(id);
  }

  async create(id: string, sizeBytes: number) {
    if (this.failOn.has(`create:${id}`)) throw new Error('injected create failure');
    if (this.volumes.has(id)) throw new StorageError('VolumeExists', id);
    this.volumes.set(id, { capacity: sizeBytes, writes: [] });
    return this.describe(id);
  }

  async delete(id: string) {
    this.volumes.delete(id);
  }

  async path(id: string) {
    if (!this.volumes.has(id)) throw new StorageError('InvalidVolume.NotFound', id);
    return `/fake/${id}.img`;
  }

  async capacity(): Promise<PoolCapacity> {
    const used = [...this.volumes.values()].reduce((s, v) => s + (this.thin ? v.writes.reduce((a, w) => a + w.data.length, 0) : v.capacity), 0);
    return { capacityBytes: this.poolBytes, availableBytes: this.poolBytes - used };
  }

  async read(id: string, offset: number, length: number) {
    const v = this.volumes.get(id);
    if (!v) throw new StorageError('InvalidVolume.NotFound', id);
    const out = Buffer.alloc(length);
    for (const w of v.writes) {
      const from = Math.max(offset, w.offset);
      const to = Math.min(offset + length, w.offset + w.data.length);
      if (from < to) w.data.copy(out, from - offset, from - w.offset, to - w.offset);
    }
    return out;
  }

  async write(id: string, offset: number, data: Uint8Array) {
    const v = this.volumes.get(id);
    if (!v) throw new StorageError('InvalidVolume.NotFound', id);
    if (this.failOn.has(`write:${id}`)) throw new Error('injected write failure');
    v.writes.push({ offset, data: Buffer.from(data) });
  }

  private describe(id: string): BackendVolume {
    const v = this.volumes.get(id)!;
    return { id, path: `/fake/${id}.img`, capacityBytes: v.capacity, allocationBytes: v.writes.reduce((a, w) => a + w.data.length, 0) };
  }
}
