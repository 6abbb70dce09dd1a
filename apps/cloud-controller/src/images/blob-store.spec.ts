import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { BlobNotFoundError, BlobTooLargeError, FsBlobStore } from './blob-store.js';
import { detectImageFormat } from './image-format.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A stream of `data` in chunks of `size` bytes. */
const chunks = (data: Buffer, size = 7000) =>
  Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
    })(),
  );

describe('FsBlobStore', () => {
  let root: string;
  let store: FsBlobStore;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'koala-blobs-'));
    store = new FsBlobStore(root);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('stores by sha256 and reads back the same bytes, whole and by range', async () => {
    const data = randomBytes(300_000);
    const r = await store.put(chunks(data));
    expect(r).toEqual({ sha256: sha(data), size: data.length });
    expect(statSync(join(root, 'sha256', r.sha256)).size).toBe(data.length);
    expect(sha(await buffer(await store.open(r.sha256)))).toBe(sha(data));
    expect((await buffer(await store.open(r.sha256, { start: 10, end: 19 }))).equals(data.subarray(10, 20))).toBe(true);
    expect((await store.head(r.sha256, 16)).equals(data.subarray(0, 16))).toBe(true);
    expect(await store.size(r.sha256)).toBe(data.length);
    expect(await store.list()).toEqual([r.sha256]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('stores the empty blob', async () => {
    const r = await store.put(Readable.from([]));
    expect(r).toEqual({ sha256: sha(Buffer.alloc(0)), size: 0 });
    expect(await store.size(r.sha256)).toBe(0);
  });

  it('keeps zero blocks as holes (sparse) with identical content', async () => {
    const data = Buffer.alloc(8 * 1024 * 1024);
    data.write('start', 0);
    data.write('end', data.length - 3);
    const r = await store.put(chunks(data, 65536 + 13));
    const st = statSync(join(root, 'sha256', r.sha256));
    expect(st.size).toBe(data.length);
    expect(st.blocks * 512).toBeLessThan(data.length / 2);
    expect(sha(await buffer(await store.open(r.sha256)))).toBe(sha(data));
  });

  it('a put that fails leaves nothing behind (too large, stream error)', async () => {
    await expect(store.put(chunks(randomBytes(10_000)), { maxBytes: 9_999 })).rejects.toBeInstanceOf(BlobTooLargeError);
    const broken = new Readable({
      read() {
        this.push(Buffer.from('abc'));
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(store.put(broken)).rejects.toThrow('connection reset');
    expect(await store.list()).toEqual([]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('concurrent puts of the same bytes both succeed and leave one blob', async () => {
    const data = randomBytes(1_000_000);
    const rs = await Promise.all(Array.from({ length: 6 }, () => store.put(chunks(data, 4096 + 1))));
    for (const r of rs) expect(r.sha256).toBe(sha(data));
    expect(await store.list()).toEqual([sha(data)]);
    expect(sha(await buffer(await store.open(sha(data))))).toBe(sha(data));
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('reports progress and deletes', async () => {
    const seen: number[] = [];
    const r = await store.put(chunks(randomBytes(20_000), 5000), { onProgress: (n) => seen.push(n) });
    expect(seen).toEqual([5000, 10000, 15000, 20000]);
    expect(await store.delete(r.sha256)).toBe(true);
    expect(await store.delete(r.sha256)).toBe(false);
    expect(await store.size(r.sha256)).toBeUndefined();
    await expect(store.open(r.sha256)).rejects.toBeInstanceOf(BlobNotFoundError);
  });

  it('refuses malformed digests', async () => {
    await expect(store.size('../../etc/passwd')).rejects.toThrow(/invalid sha256/);
  });

  it('stores a raw disk file as a compact qcow2 of the same content, the same bytes each time', async () => {
    const src = join(root, 'disk.raw');
    const data = randomBytes(300_000);
    closeSync(openSync(src, 'w'));
    truncateSync(src, 64 * 1024 * 1024);
    const fd = openSync(src, 'r+');
    writeSync(fd, data, 0, data.length, 5 * 1024 * 1024 + 3);
    closeSync(fd);
    const r = await store.putRawDisk(src);
    expect(r.size).toBeLessThan(1024 * 1024);
    expect(await store.allocated(r.sha256)).toBeLessThan(1024 * 1024);
    expect(detectImageFormat(await store.head(r.sha256, 512))).toEqual({ format: 'qcow2', virtualSize: 64 * 1024 * 1024 });
    const back = join(root, 'back.raw');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', store.pathOf(r.sha256), back]);
    expect(sha(readFileSync(back))).toBe(sha(readFileSync(src)));
    expect(await store.putRawDisk(src)).toEqual(r);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    await expect(store.putRawDisk(join(root, 'nope'))).rejects.toThrow(/qemu-img convert failed/);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });
});
