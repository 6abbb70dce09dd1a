import { createHash } from 'node:crypto';
import type { ImageBlob } from '@koala/contracts';
import type { BlobDownload, BlobFetcher } from './blob-fetcher.js';
import { classifyVolume, markerName, planSweep, type ImagePool, type PoolImage, type WriteOutcome } from './image-pool.js';
import { ImageDigestMismatchError, ImageFormatError, ImageSizeMismatchError, LibvirtImageCache } from './libvirt-image-cache.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** In-memory ImagePool with the same contract as LibvirtImagePool. */
class FakePool implements ImagePool {
  readonly name = 'fake-images';
  readonly volumes = new Map<string, Buffer>();
  uploads = true;
  readonly log: string[] = [];

  async open(): Promise<PoolImage[]> {
    const { complete, remove } = planSweep([...this.volumes.keys()]);
    for (const n of remove) this.volumes.delete(n);
    return complete.map((d) => ({ sha256: d, volume: d, path: `/pool/${d}`, sizeBytes: this.volumes.get(d)!.length }));
  }
  async createVolume(name: string, sizeBytes: number): Promise<string> {
    this.log.push(`create ${name}`);
    this.volumes.set(name, Buffer.alloc(sizeBytes));
    return `/pool/${name}`;
  }
  async writeVolume(name: string, source: AsyncIterable<Uint8Array>): Promise<WriteOutcome> {
    if (!this.uploads) return 'unsupported';
    const chunks: Buffer[] = [];
    for await (const c of source) {
      chunks.push(Buffer.from(c));
      this.volumes.set(name, Buffer.concat(chunks)); // partially written while streaming
    }
    return 'written';
  }
  async markVerified(d: string): Promise<void> {
    this.log.push(`mark ${d.slice(0, 4)}`);
    this.volumes.set(markerName(d), Buffer.alloc(1));
  }
  deleteGate?: Promise<void>;
  async deleteVolume(name: string): Promise<void> {
    await this.deleteGate;
    this.log.push(`delete ${name.slice(0, 4)}${name.length > 64 ? name.slice(64) : ''}`);
    this.volumes.delete(name);
  }
  /** Puts a complete (verified) image into the pool, as a previous NC run would have left it. */
  seed(data: Buffer): string {
    const d = sha(data);
    this.volumes.set(d, data);
    this.volumes.set(markerName(d), Buffer.alloc(1));
    return d;
  }
  images(): string[] {
    return planSweep([...this.volumes.keys()]).complete;
  }
}

/** Serves blobs by URL; `gate` holds every download until released; counts opens. */
class FakeFetcher implements BlobFetcher {
  readonly blobs = new Map<string, Buffer>();
  opens = 0;
  contentLength?: (url: string) => number | undefined;
  private gate?: Promise<void>;
  private openGate?: () => void;

  hold(): void {
    this.gate = new Promise((r) => (this.openGate = r));
  }
  releaseAll(): void {
    this.openGate?.();
    this.gate = undefined;
  }
  async open(url: string): Promise<BlobDownload> {
    this.opens++;
    const data = this.blobs.get(url);
    if (!data) throw new Error(`404 ${url}`);
    const gate = this.gate;
    async function* body() {
      await gate;
      for (let i = 0; i < data!.length; i += 7) yield data!.subarray(i, i + 7);
    }
    return { contentLength: this.contentLength?.(url), body: body(), cancel: async () => undefined };
  }
}

let n = 0;
function blob(fetcher: FakeFetcher, data: Buffer, served = data): ImageBlob {
  const url = `http://127.0.0.1/blob/${++n}`;
  fetcher.blobs.set(url, served);
  return { imageId: `emi-${n}`, sha256: sha(data), sizeBytes: data.length, format: 'raw', url };
}
const bytes = (s: string, len = 10) => Buffer.from(s.repeat(len).slice(0, len));
const flush = () => new Promise((r) => setImmediate(r));

function setup(maxBytes = 1_000_000) {
  const pool = new FakePool();
  const fetcher = new FakeFetcher();
  const cache = new LibvirtImageCache({ pool, fetcher, maxBytes });
  return { pool, fetcher, cache };
}

describe('LibvirtImageCache', () => {
  it('downloads once per digest under concurrent acquires, then serves hits', async () => {
    const { pool, fetcher, cache } = setup();
    const data = bytes('abc', 1000);
    const b = blob(fetcher, data);
    fetcher.hold();
    const all = Promise.all(Array.from({ length: 8 }, (_, i) => cache.acquire(b, `i-${i}`)));
    await flush();
    fetcher.releaseAll();
    const got = await all;
    expect(fetcher.opens).toBe(1);
    expect(new Set(got.map((g) => g.path)).size).toBe(1);
    expect(got[0]).toEqual({ sha256: b.sha256, pool: 'fake-images', volume: b.sha256, path: `/pool/${b.sha256}`, format: 'raw', sizeBytes: 1000, virtualSizeBytes: 1000 });
    expect(pool.volumes.get(b.sha256)).toEqual(data);
    expect(pool.images()).toEqual([b.sha256]);
    await cache.acquire(b, 'i-late');
    expect(fetcher.opens).toBe(1);
    expect(cache.stats()).toMatchObject({ downloads: 1, verified: 1, failures: 0, downloadedBytes: 1000, hits: 1, entries: 1, cachedBytes: 1000 });
    expect(cache.holdersOf(b.sha256)).toHaveLength(9);
    // The marker is created only after the bytes were written and verified.
    expect(pool.log).toEqual([`create ${b.sha256}`, `mark ${b.sha256.slice(0, 4)}`]);
  });

  it('rejects a digest mismatch for every waiter, leaves nothing, and retries next time', async () => {
    const { pool, fetcher, cache } = setup();
    const good = bytes('good', 100);
    const b = blob(fetcher, good, bytes('evil', 100));
    const results = await Promise.allSettled([cache.acquire(b, 'i-1'), cache.acquire(b, 'i-2')]);
    expect(fetcher.opens).toBe(1);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(ImageDigestMismatchError);
      expect(err.message).toContain(`expected ${b.sha256}`);
      expect(err.message).toContain(`got ${sha(bytes('evil', 100))}`);
    }
    expect([...pool.volumes.keys()]).toEqual([]);
    expect(cache.holdersOf(b.sha256)).toEqual([]);
    expect(cache.stats()).toMatchObject({ failures: 1, entries: 0, cachedBytes: 0 });
    fetcher.blobs.set(b.url, good); // the store is fixed
    await expect(cache.acquire(b, 'i-1')).resolves.toMatchObject({ sha256: b.sha256 });
    expect(fetcher.opens).toBe(2);
  });

  it('rejects a wrong size (announced or streamed) and leaves nothing', async () => {
    const { pool, fetcher, cache } = setup();
    const data = bytes('x', 50);
    const longer = blob(fetcher, data, Buffer.concat([data, Buffer.from('extra')]));
    await expect(cache.acquire(longer, 'i-1')).rejects.toThrow(ImageSizeMismatchError);
    const shorter = blob(fetcher, data, data.subarray(0, 20));
    await expect(cache.acquire(shorter, 'i-1')).rejects.toThrow(/expected 50 bytes, got 20/);
    fetcher.contentLength = () => 7;
    const announced = blob(fetcher, bytes('y', 50));
    await expect(cache.acquire(announced, 'i-1')).rejects.toThrow(/expected 50 bytes, got 7/);
    expect([...pool.volumes.keys()]).toEqual([]);
  });

  it('evicts the least recently acquired unused image under the cap', async () => {
    const { pool, fetcher, cache } = setup(30);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((s) => blob(fetcher, bytes(s)));
    for (const x of [a, b, c]) {
      await cache.acquire(x, 'i-1');
      cache.release(x.sha256, 'i-1');
    }
    await cache.acquire(a, 'i-2'); // a is now the most recent
    cache.release(a.sha256, 'i-2');
    expect(cache.lruOrder()).toEqual([b.sha256, c.sha256, a.sha256]);
    await cache.acquire(d, 'i-3');
    await flush();
    expect(pool.images().sort()).toEqual([a.sha256, c.sha256, d.sha256].sort());
    expect(cache.stats()).toMatchObject({ evictions: 1, evictedBytes: 10, cachedBytes: 30 });
    // Eviction removes the marker before the data volume.
    expect(pool.log.filter((l) => l.startsWith('delete'))).toEqual([`delete ${b.sha256.slice(0, 4)}.verified`, `delete ${b.sha256.slice(0, 4)}`]);
  });

  it('never evicts an image in use; a release lets the cache shrink back under its cap', async () => {
    const { pool, fetcher, cache } = setup(20);
    const [a, b, c] = ['a', 'b', 'c'].map((s) => blob(fetcher, bytes(s)));
    await cache.acquire(a, 'i-a');
    await cache.acquire(b, 'i-b');
    await cache.acquire(c, 'i-c');
    await flush();
    expect(pool.images()).toHaveLength(3); // over the cap, but everything is in use
    expect(cache.stats().evictions).toBe(0);
    cache.release(b.sha256, 'i-b');
    await flush();
    await flush();
    expect(pool.images().sort()).toEqual([a.sha256, c.sha256].sort());
    // Releasing an unknown holder changes nothing.
    cache.release(a.sha256, 'i-nobody');
    await flush();
    expect(pool.images()).toHaveLength(2);
  });

  it('keeps images adopted after a restart and drops unadopted ones beyond the cap', async () => {
    const { pool, fetcher, cache } = setup(15);
    const inUse = pool.seed(bytes('u'));
    const idle = pool.seed(bytes('i'));
    pool.volumes.set(`${sha(bytes('p'))}.partial`, Buffer.alloc(3)); // crash leftovers
    pool.volumes.set(sha(bytes('q')), bytes('q')); // data without marker
    cache.adopt(inUse, 'i-running'); // before the pool was scanned
    await cache.start();
    await flush();
    expect([...pool.volumes.keys()].sort()).toEqual([inUse, markerName(inUse)].sort());
    expect(idle).not.toBe(inUse);
    const again = await cache.acquire({ imageId: 'emi-u', sha256: inUse, sizeBytes: 10, format: 'qcow2', url: 'http://127.0.0.1/none' }, 'i-2');
    expect(again).toMatchObject({ format: 'qcow2', sizeBytes: 10 });
    expect(fetcher.opens).toBe(0);
  });

  it('waits for an eviction in progress and downloads again', async () => {
    const { pool, fetcher, cache } = setup(10);
    const a = blob(fetcher, bytes('a'));
    const b = blob(fetcher, bytes('b'));
    await cache.acquire(a, 'i-1');
    cache.release(a.sha256, 'i-1');
    let unblock!: () => void;
    pool.deleteGate = new Promise((r) => (unblock = r));
    const pb = cache.acquire(b, 'i-2'); // starts evicting a (its deletes are held)
    await flush();
    expect(cache.stats().entries).toBe(0);
    const pa = cache.acquire(a, 'i-3'); // must wait for the eviction, then download a again
    await flush();
    expect(fetcher.opens).toBe(1); // b's download makes room first, a's waits for the eviction
    unblock();
    await Promise.all([pa, pb]);
    expect(fetcher.opens).toBe(3);
    expect(pool.images().sort()).toEqual([a.sha256, b.sha256].sort()); // both in use now
  });

  it('verifies the download even where the driver cannot upload (test driver)', async () => {
    const { pool, fetcher, cache } = setup();
    pool.uploads = false;
    const ok = blob(fetcher, bytes('ok', 64));
    await expect(cache.acquire(ok, 'i-1')).resolves.toMatchObject({ sha256: ok.sha256 });
    expect(cache.stats()).toMatchObject({ simulated: 1, downloadedBytes: 64 });
    const bad = blob(fetcher, bytes('ab', 64), bytes('ko', 64));
    await expect(cache.acquire(bad, 'i-1')).rejects.toThrow(ImageDigestMismatchError);
    expect(pool.images()).toEqual([ok.sha256]);
  });

  it('drops the holder of a failed acquire but keeps an earlier one', async () => {
    const { fetcher, cache } = setup();
    const b = blob(fetcher, bytes('z'), bytes('w'));
    cache.adopt(b.sha256, 'i-old');
    await expect(cache.acquire(b, 'i-new')).rejects.toThrow(ImageDigestMismatchError);
    expect(cache.holdersOf(b.sha256)).toEqual(['i-old']);
  });
});

describe('cache pool naming', () => {
  const d = 'ab'.repeat(32);
  it('classifies volumes and plans the start-up sweep', () => {
    expect(classifyVolume(d)).toEqual({ kind: 'data', sha256: d });
    expect(classifyVolume(`${d}.verified`)).toEqual({ kind: 'marker', sha256: d });
    expect(classifyVolume(`${d}.partial`)).toEqual({ kind: 'leftover', sha256: d });
    expect(classifyVolume('i-0123-root.qcow2')).toEqual({ kind: 'foreign' });
    expect(classifyVolume(`${d}x`)).toEqual({ kind: 'foreign' });
    const e = 'cd'.repeat(32);
    const f = 'ef'.repeat(32);
    expect(planSweep([d, `${d}.verified`, e, `${f}.verified`, `${d}.partial`, 'other'])).toEqual({
      complete: [d],
      remove: [`${d}.partial`, e, `${f}.verified`].sort(),
    });
  });
  it('refuses what the bytes contradict: a qcow2 with a backing file, a format other than claimed (download or hit)', async () => {
    const { pool, fetcher, cache } = setup();
    // qcow2 v3 header: magic, version 3, backing_file_offset 0x200, backing_file_size 11, then "/etc/passwd".
    const evil = Buffer.alloc(1024);
    evil.writeUInt32BE(0x514649fb, 0);
    evil.writeUInt32BE(3, 4);
    evil.writeBigUInt64BE(0x200n, 8);
    evil.writeUInt32BE(11, 16);
    evil.write('/etc/passwd', 0x200);
    const b = { ...blob(fetcher, evil), format: 'qcow2' as const };
    const err = await cache.acquire(b, 'i-1').catch((e) => e);
    expect(err).toBeInstanceOf(ImageFormatError);
    expect(err).toMatchObject({ code: 'Client.InvalidImage', message: `image ${b.imageId} refused: qcow2 image with a backing file` });
    expect(pool.images()).toEqual([]);
    expect(pool.volumes.size).toBe(0);

    const clean = Buffer.from(evil);
    clean.writeBigUInt64BE(0n, 8);
    clean.writeUInt32BE(0, 16);
    clean.writeBigUInt64BE(10n * 1024n ** 3n, 24); // a 10 GiB disk in a 1 KiB file
    const asRaw = blob(fetcher, clean); // claims raw
    await expect(cache.acquire(asRaw, 'i-2')).rejects.toThrow(/the image is qcow2, not raw as the launch says/);
    const ok = await cache.acquire({ ...asRaw, format: 'qcow2' }, 'i-3');
    expect(ok).toMatchObject({ format: 'qcow2', sizeBytes: 1024, virtualSizeBytes: 10 * 1024 ** 3 });
    // Cached now: the same digest under another claim is still refused.
    await expect(cache.acquire(asRaw, 'i-4')).rejects.toThrow(ImageFormatError);
    expect(cache.holdersOf(asRaw.sha256)).toEqual(['i-3']);
  });
});
