import { SparseUnsupportedError, StorageError, type BackendVolume, type PoolCapacity, type VolumeBackend, type VolumeSegment } from './volume-backend.js';

/**
 * An in-memory, sparse VolumeBackend for unit tests (written ranges only are stored; what was
 * never written is a hole for readSegments). With `sparse` false, readSegments/writeSegments
 * refuse with SparseUnsupportedError, as a pool that cannot stream sparsely.
 */
export class MemoryBackend implements VolumeBackend {
  readonly volumes = new Map<string, { capacity: number; writes: { offset: number; data: Buffer }[] }>();
  /** Make the next create/write of this id fail. */
  readonly failOn = new Set<string>();
  /** Calls per kind, so tests see which path a copy took. */
  readonly calls = { read: 0, write: 0, readSegments: 0, writeSegments: 0 };

  constructor(
    readonly kind = 'memory',
    readonly thin = true,
    private readonly poolBytes = 1000 * 1024 ** 3,
    readonly sparse = true,
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
    this.calls.read++;
    return this.bytes(id, offset, length);
  }

  private bytes(id: string, offset: number, length: number): Buffer {
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
    this.calls.write++;
    const v = this.volumes.get(id);
    if (!v) throw new StorageError('InvalidVolume.NotFound', id);
    if (this.failOn.has(`write:${id}`)) throw new Error('injected write failure');
    v.writes.push({ offset, data: Buffer.from(data) });
  }

  /** Written ranges are data (in pieces of at most 1 MiB), the rest holes; ends at the capacity. */
  async *readSegments(id: string, offset: number, length: number): AsyncGenerator<VolumeSegment, void, undefined> {
    this.calls.readSegments++;
    if (!this.sparse) throw new SparseUnsupportedError('memory backend without sparse streams');
    const v = this.volumes.get(id);
    if (!v) throw new StorageError('InvalidVolume.NotFound', id);
    const end = Math.min(offset + length, v.capacity);
    // merged written ranges inside [offset, end)
    const ranges: [number, number][] = [];
    for (const w of [...v.writes].sort((a, b) => a.offset - b.offset)) {
      const from = Math.max(offset, w.offset);
      const to = Math.min(end, w.offset + w.data.length);
      if (from >= to) continue;
      const last = ranges.at(-1);
      if (last && from <= last[1]) last[1] = Math.max(last[1], to);
      else ranges.push([from, to]);
    }
    let pos = offset;
    for (const [from, to] of ranges) {
      if (from > pos) yield { kind: 'hole', offset: pos, length: from - pos };
      for (let at = from; at < to; at += 1024 ** 2) {
        const n = Math.min(1024 ** 2, to - at);
        yield { kind: 'data', offset: at, data: this.bytes(id, at, n) };
      }
      pos = to;
    }
    if (end > pos) yield { kind: 'hole', offset: pos, length: end - pos };
  }

  /** Data is stored; holes are skipped when thin and stored as zeros when thick. */
  async writeSegments(id: string, segments: AsyncIterable<VolumeSegment>, length: number): Promise<number> {
    this.calls.writeSegments++;
    if (!this.sparse) throw new SparseUnsupportedError('memory backend without sparse streams');
    const v = this.volumes.get(id);
    if (!v) throw new StorageError('InvalidVolume.NotFound', id);
    let pos = 0;
    let written = 0;
    for await (const seg of segments) {
      if (seg.offset !== pos) throw new Error(`segment at ${seg.offset}, expected ${pos}`);
      if (this.failOn.has(`write:${id}`)) throw new Error('injected write failure');
      const data = seg.kind === 'data' ? Buffer.from(seg.data) : this.thin ? undefined : Buffer.alloc(seg.length);
      if (data) {
        v.writes.push({ offset: pos, data });
        written += data.length;
      }
      pos += seg.kind === 'data' ? seg.data.length : seg.length;
    }
    if (pos !== length) throw new Error(`segments end at ${pos}, expected ${length}`);
    return written;
  }

  private describe(id: string): BackendVolume {
    const v = this.volumes.get(id)!;
    return { id, path: `/fake/${id}.img`, capacityBytes: v.capacity, allocationBytes: v.writes.reduce((a, w) => a + w.data.length, 0) };
  }
}
