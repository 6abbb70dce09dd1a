// Integration tests of the NC image cache against the machine's libvirtd: a temporary `dir`
// pool (qemu:///system) under a mkdtemp directory, blobs served by a local HTTP server on
// 127.0.0.1 that counts requests, and the test driver (test:///default) without stream upload.
import { jest } from '@jest/globals';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageBlob } from '@koala/contracts';
import { Libvirt, StoragePoolState, buildStorageVolumeXml, type StoragePool } from '@koala/libvirt';
import { BlobFetchError, HttpBlobFetcher } from '../../apps/node-controller/src/images/blob-fetcher.js';
import { markerName } from '../../apps/node-controller/src/images/image-pool.js';
import { ImageDigestMismatchError, ImageFormatError, LibvirtImageCache } from '../../apps/node-controller/src/images/libvirt-image-cache.js';
import { LibvirtImagePool } from '../../apps/node-controller/src/images/libvirt-image-pool.js';

jest.setTimeout(120_000);

const MiB = 1024 * 1024;
const suffix = randomUUID().slice(0, 8);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Serves registered blobs at /blob/<name>?sig=...; counts requests per name. */
class BlobServer {
  readonly blobs = new Map<string, Buffer>();
  readonly requests = new Map<string, number>();
  stall = new Set<string>();
  private server!: Server;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const name = new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/blob\//, '');
      this.requests.set(name, (this.requests.get(name) ?? 0) + 1);
      const data = this.blobs.get(name);
      if (!data) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(data.length) });
      if (this.stall.has(name)) {
        res.write(data.subarray(0, 10)); // then nothing more
        return;
      }
      res.end(data);
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
  /** Registers `served` under a fresh name and returns the blob describing `data`. */
  blob(data: Buffer, served: Buffer = data): ImageBlob {
    const name = randomUUID();
    this.blobs.set(name, served);
    return { imageId: `emi-${name.slice(0, 8)}`, sha256: sha(data), sizeBytes: data.length, format: 'raw', url: `${this.base}/blob/${name}?sig=secret` };
  }
  count(b: ImageBlob): number {
    return this.requests.get(new URL(b.url).pathname.replace(/^\/blob\//, '')) ?? 0;
  }
}

async function dropPool(lv: Libvirt, name: string): Promise<void> {
  const pool = await lv.lookupStoragePoolByName(name).catch(() => undefined);
  if (!pool) return;
  await lv.refreshStoragePool(pool).catch(() => undefined);
  for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
  await lv.destroyStoragePool(pool).catch(() => undefined);
  await lv.undefineStoragePool(pool).catch(() => undefined);
}

async function volumeNames(lv: Libvirt, pool: StoragePool): Promise<string[]> {
  await lv.refreshStoragePool(pool);
  return (await lv.listAllVolumes(pool)).map((v) => v.name).sort();
}

describe('LibvirtImageCache on qemu:///system', () => {
  const server = new BlobServer();
  let lv: Libvirt;
  let dir: string;
  const pools: string[] = [];

  function makeCache(tag: string, maxBytes: number): { cache: LibvirtImageCache; poolName: string; targetPath: string } {
    const poolName = `koala-test-images-${tag}-${suffix}`;
    pools.push(poolName);
    const targetPath = join(dir, tag);
    const pool = new LibvirtImagePool({ libvirt: async () => lv, poolName, targetPath });
    return { cache: new LibvirtImageCache({ pool, fetcher: new HttpBlobFetcher({ stallTimeoutMs: 5000 }), maxBytes }), poolName, targetPath };
  }
  function reopen(poolName: string, targetPath: string, maxBytes: number): LibvirtImageCache {
    const pool = new LibvirtImagePool({ libvirt: async () => lv, poolName, targetPath });
    return new LibvirtImageCache({ pool, fetcher: new HttpBlobFetcher({ stallTimeoutMs: 5000 }), maxBytes });
  }

  beforeAll(async () => {
    await server.start();
    lv = await Libvirt.connect({ uri: 'qemu:///system' });
    dir = mkdtempSync(join(tmpdir(), 'koala-test-images-'));
    chmodSync(dir, 0o755);
  });

  afterAll(async () => {
    try {
      for (const p of pools) await dropPool(lv, p);
    } finally {
      await lv?.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('one pool, one NC life then a restart', () => {
    let cache: LibvirtImageCache;
    let poolName: string;
    let targetPath: string;
    let first: ImageBlob;
    let firstData: Buffer;

    beforeAll(() => {
      ({ cache, poolName, targetPath } = makeCache('main', 4096 * MiB));
    });

    it('creates, starts and autostarts the pool', async () => {
      await cache.start();
      const pool = await lv.lookupStoragePoolByName(poolName);
      expect((await lv.getStoragePoolInfo(pool)).state).toBe(StoragePoolState.RUNNING);
      expect(await lv.getStoragePoolAutostart(pool)).toBe(true);
    });

    it('downloads once for two concurrent acquires; the volume holds exactly the source bytes', async () => {
      firstData = randomBytes(8 * MiB + 123);
      first = server.blob(firstData);
      const [a, b] = await Promise.all([cache.acquire(first, 'i-1'), cache.acquire(first, 'i-2')]);
      expect(server.count(first)).toBe(1);
      expect(a.path).toBe(b.path);
      expect(a).toMatchObject({ sha256: first.sha256, pool: poolName, volume: first.sha256, sizeBytes: firstData.length, format: 'raw' });
      expect(a.path).toBe(join(targetPath, first.sha256));
      const pool = await lv.lookupStoragePoolByName(poolName);
      const vol = await lv.lookupVolumeByName(pool, first.sha256);
      const viaLibvirt = await lv.downloadVolume(vol);
      expect(viaLibvirt.length).toBe(firstData.length);
      expect(sha(viaLibvirt)).toBe(first.sha256);
      expect(sha(await readFile(a.path))).toBe(first.sha256);
      expect(await volumeNames(lv, pool)).toEqual([first.sha256, markerName(first.sha256)].sort());
      // A later acquire is a hit.
      await cache.acquire(first, 'i-3');
      expect(server.count(first)).toBe(1);
      expect(cache.stats()).toMatchObject({ downloads: 1, verified: 1, hits: 1, simulated: 0 });
    });

    it('rejects a corrupt download and leaves no volume', async () => {
      const good = randomBytes(2 * MiB);
      const bad = Buffer.from(good);
      bad[12345] ^= 0xff;
      const blob = server.blob(good, bad);
      const err = await cache.acquire(blob, 'i-9').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ImageDigestMismatchError);
      expect((err as Error).message).toContain(`expected ${blob.sha256}, got ${sha(bad)}`);
      const pool = await lv.lookupStoragePoolByName(poolName);
      expect((await volumeNames(lv, pool)).filter((n) => n.startsWith(blob.sha256))).toEqual([]);
    });

    it('refuses a qcow2 whose backing file is a host file, or whose format is not the claimed one, and leaves no volume', async () => {
      // Made with qemu-img as an attacker would; the "host file" lives in the test's directory.
      const hostFile = join(dir, 'passwd');
      writeFileSync(hostFile, 'root:x:0:0:root:/root:/bin/bash\n');
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', hostFile, join(dir, 'evil.qcow2'), '1M']);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'plain.qcow2'), '1M']);
      const evil = { ...server.blob(readFileSync(join(dir, 'evil.qcow2'))), format: 'qcow2' as const };
      const mislabelled = server.blob(readFileSync(join(dir, 'plain.qcow2'))); // says raw
      await expect(cache.acquire(evil, 'i-10')).rejects.toThrow(new ImageFormatError(evil.imageId, 'qcow2 image with a backing file'));
      await expect(cache.acquire(mislabelled, 'i-11')).rejects.toThrow(ImageFormatError);
      const pool = await lv.lookupStoragePoolByName(poolName);
      expect((await volumeNames(lv, pool)).filter((n) => n.startsWith(evil.sha256) || n.startsWith(mislabelled.sha256))).toEqual([]);
      const ok = await cache.acquire({ ...mislabelled, format: 'qcow2' }, 'i-12');
      expect(ok.format).toBe('qcow2');
      cache.release(ok.sha256, 'i-12');
    });

    it('measures download + verify + upload throughput (printed, not asserted)', async () => {
      const data = randomBytes(256 * MiB);
      const blob = server.blob(data);
      const t0 = performance.now();
      const img = await cache.acquire(blob, 'i-big');
      const ms = performance.now() - t0;
      console.log(`image cache: 256 MiB fetched over HTTP, sha256-verified and uploaded through libvirt in ${ms.toFixed(0)} ms = ${((256 / ms) * 1000).toFixed(0)} MiB/s`);
      expect(img.sizeBytes).toBe(data.length);
      cache.release(blob.sha256, 'i-big');
    });

    it('after a restart: removes leftovers, keeps foreign volumes, serves cached images without downloading', async () => {
      const pool = await lv.lookupStoragePoolByName(poolName);
      const orphanData = sha(Buffer.from('orphan'));
      const loneMarker = sha(Buffer.from('marker'));
      const partial = `${sha(Buffer.from('partial'))}.partial`;
      for (const name of [partial, orphanData, markerName(loneMarker), 'keep-me.img']) {
        await lv.createVolume(pool, buildStorageVolumeXml({ name, format: 'raw', capacityBytes: 4096 }));
      }
      const restarted = reopen(poolName, targetPath, 4096 * MiB);
      restarted.adopt(first.sha256, 'i-1');
      await restarted.start();
      const names = await volumeNames(lv, pool);
      expect(names).not.toContain(partial);
      expect(names).not.toContain(orphanData);
      expect(names).not.toContain(markerName(loneMarker));
      expect(names).toContain('keep-me.img');
      const before = server.count(first);
      const img = await restarted.acquire(first, 'i-4');
      expect(server.count(first)).toBe(before);
      expect(img.sizeBytes).toBe(firstData.length);
      expect(restarted.stats()).toMatchObject({ downloads: 0, hits: 1 });
    });
  });

  it('an NC dying mid-download leaves an unmarked volume that the next start removes', async () => {
    const { poolName, targetPath } = makeCache('crash', 100 * MiB);
    const data = randomBytes(MiB);
    const blob = server.blob(data);
    server.stall.add(new URL(blob.url).pathname.replace(/^\/blob\//, ''));
    // The "NC" that dies has its own libvirt connection; closing it is what its death does.
    const lv2 = await Libvirt.connect({ uri: 'qemu:///system' });
    const dying = new LibvirtImageCache({
      pool: new LibvirtImagePool({ libvirt: async () => lv2, poolName, targetPath }),
      fetcher: new HttpBlobFetcher({ stallTimeoutMs: 1000 }),
      maxBytes: 100 * MiB,
    });
    const acquiring = dying.acquire(blob, 'i-1').catch((e: unknown) => e);
    const pool = await (async () => {
      for (let i = 0; i < 100; i++) {
        const p = await lv.lookupStoragePoolByName(poolName).catch(() => undefined);
        if (p && (await volumeNames(lv, p)).includes(blob.sha256)) return p;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('the download never created its volume');
    })();
    await lv2.close();
    expect(await acquiring).toBeInstanceOf(Error);
    expect(await volumeNames(lv, pool)).toEqual([blob.sha256]); // bytes, but no verified marker
    server.stall.clear();
    const next = reopen(poolName, targetPath, 100 * MiB);
    await next.start();
    expect(await volumeNames(lv, pool)).toEqual([]);
    const img = await next.acquire(blob, 'i-1');
    expect(sha(await readFile(img.path))).toBe(blob.sha256);
  });

  it('evicts least recently used images under a tiny cap, never one in use', async () => {
    const { cache, poolName } = makeCache('lru', 2 * MiB + 1000);
    const [a, b, c] = [1, 2, 3].map(() => server.blob(randomBytes(MiB)));
    await cache.acquire(a, 'i-a');
    await cache.acquire(b, 'i-b');
    cache.release(b.sha256, 'i-b');
    await cache.acquire(c, 'i-c'); // over the cap: b is the only image not in use
    await new Promise((r) => setTimeout(r, 100));
    const pool = await lv.lookupStoragePoolByName(poolName);
    expect(await volumeNames(lv, pool)).toEqual([a.sha256, c.sha256, markerName(a.sha256), markerName(c.sha256)].sort());
    expect(cache.stats()).toMatchObject({ evictions: 1, evictedBytes: MiB, cachedBytes: 2 * MiB });
  });

  it('HttpBlobFetcher: only http(s), non-2xx is an error without the signature, stalls time out', async () => {
    const f = new HttpBlobFetcher({ stallTimeoutMs: 300 });
    await expect(f.open('file:///etc/passwd')).rejects.toThrow(/must use http or https/);
    const missing = `${server.base}/blob/nope?sig=topsecret`;
    const err = (await f.open(missing).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(BlobFetchError);
    expect(err.message).toContain('HTTP 404');
    expect(err.message).not.toContain('topsecret');
    const blob = server.blob(randomBytes(1000));
    server.stall.add(new URL(blob.url).pathname.replace(/^\/blob\//, ''));
    const dl = await f.open(blob.url);
    const t0 = performance.now();
    await expect(
      (async () => {
        for await (const _ of dl.body) void _;
      })(),
    ).rejects.toThrow(/no data for 300 ms/);
    expect(performance.now() - t0).toBeLessThan(3000);
  });
});

describe('LibvirtImageCache on test:///default (simulated node)', () => {
  const server = new BlobServer();
  let lv: Libvirt;
  const poolName = `koala-test-images-sim-${suffix}`;

  beforeAll(async () => {
    await server.start();
    lv = await Libvirt.connect({ uri: 'test:///default' });
  });
  afterAll(async () => {
    try {
      await dropPool(lv, poolName);
    } finally {
      await lv?.close();
      await server.stop();
    }
  });

  it('acquires with a verified download and a simulated volume; a corrupt download still fails', async () => {
    const pool = new LibvirtImagePool({ libvirt: async () => lv, poolName, targetPath: `/koala-test-images-${suffix}` });
    const cache = new LibvirtImageCache({ pool, fetcher: new HttpBlobFetcher(), maxBytes: 100 * MiB });
    const data = randomBytes(MiB);
    const blob = server.blob(data);
    const [a, b] = await Promise.all([cache.acquire(blob, 'i-1'), cache.acquire(blob, 'i-2')]);
    expect(server.count(blob)).toBe(1);
    expect(a.path).toBe(b.path);
    expect(a.path).toBe(`/koala-test-images-${suffix}/${blob.sha256}`);
    expect(cache.stats()).toMatchObject({ downloads: 1, verified: 1, simulated: 1, downloadedBytes: MiB });
    const bad = server.blob(randomBytes(1000), randomBytes(1000));
    await expect(cache.acquire(bad, 'i-3')).rejects.toThrow(ImageDigestMismatchError);
    const p = await lv.lookupStoragePoolByName(poolName);
    expect((await lv.listAllVolumes(p)).map((v) => v.name).sort()).toEqual([blob.sha256, markerName(blob.sha256)].sort());
    // Download + verify alone (no upload on this driver): printed, not asserted.
    const big = server.blob(randomBytes(256 * MiB));
    const t0 = performance.now();
    await cache.acquire(big, 'i-big');
    const ms = performance.now() - t0;
    console.log(`image cache (test driver): 256 MiB fetched over HTTP and sha256-verified in ${ms.toFixed(0)} ms = ${((256 / ms) * 1000).toFixed(0)} MiB/s`);
  });
});
