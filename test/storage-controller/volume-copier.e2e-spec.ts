// The storage controller's volume copier on real libvirt pools: two `dir` pools on qemu:///system
// under a mkdtemp directory (removed afterwards). A volume with data at known offsets is copied
// through sparse streams (holes never travel, the copy stays sparse) and window by window (the
// old path), into a thin destination, a bigger one, and a "thick" one that holds junk; and the
// test driver, which cannot stream at all, takes the window-by-window path.
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Libvirt, LibvirtError, VIR_ERR_NO_SUPPORT } from '@koala/libvirt';
import { DirPoolBackend } from '../../apps/storage-controller/src/volumes/dir-pool-backend.js';
import { SparseUnsupportedError } from '../../apps/storage-controller/src/volumes/volume-backend.js';
import { CopyAbortedError, copyVolume, type CopyOptions } from '../../apps/storage-controller/src/volumes/volume-copier.js';

jest.setTimeout(120_000);

const MiB = 1024 ** 2;
const WINDOW = 8 * MiB;
const SIZE = 128 * MiB;
const EXTENTS = [
  { offset: 0, length: 64 * 1024 }, // a boot sector or so
  { offset: 7 * MiB, length: 2 * MiB }, // across a window boundary
  { offset: 50 * MiB + 4321, length: 777_777 },
  { offset: SIZE - MiB, length: MiB }, // up to the end
];
const DATA_BYTES = EXTENTS.reduce((s, e) => s + e.length, 0);

/** A dir pool that declares itself thick, to drive the copier's zero-filling path on real streams. */
class ThickDirPoolBackend extends DirPoolBackend {
  override readonly thin = false;
}

describe('copyVolume between libvirt dir pools (qemu:///system)', () => {
  const suffix = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const home = mkdtempSync(join(tmpdir(), 'koala-test-copier-'));
  const pools = { volumes: `koala-test-copy-vols-${suffix}`, snapshots: `koala-test-copy-snaps-${suffix}`, thick: `koala-test-copy-thick-${suffix}` };
  let lv: Libvirt;
  let volumes: DirPoolBackend;
  let snapshots: DirPoolBackend;
  let thick: DirPoolBackend;
  const expected = Buffer.alloc(SIZE);

  beforeAll(async () => {
    chmodSync(home, 0o755);
    lv = await Libvirt.connect({ uri: 'qemu:///system' });
    const libvirt = async () => lv;
    volumes = new DirPoolBackend({ libvirt, poolName: pools.volumes, targetPath: join(home, 'volumes') });
    snapshots = new DirPoolBackend({ libvirt, poolName: pools.snapshots, targetPath: join(home, 'snapshots') });
    thick = new ThickDirPoolBackend({ libvirt, poolName: pools.thick, targetPath: join(home, 'thick') });
    for (const b of [volumes, snapshots, thick]) await b.open();
    await volumes.create('vol-src', SIZE);
    for (const e of EXTENTS) {
      const data = randomBytes(e.length);
      data.copy(expected, e.offset);
      await volumes.write('vol-src', e.offset, data);
    }
  });

  afterAll(async () => {
    try {
      for (const name of Object.values(pools)) {
        const pool = await lv.lookupStoragePoolByName(name).catch(() => undefined);
        if (!pool) continue;
        for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
        await lv.destroyStoragePool(pool).catch(() => undefined);
        await lv.undefineStoragePool(pool).catch(() => undefined);
      }
    } finally {
      await lv?.close();
      rmSync(home, { recursive: true, force: true });
    }
  });

  async function copy(dst: DirPoolBackend, dstId: string, opts: Partial<CopyOptions> = {}, dstSize = SIZE) {
    await dst.create(dstId, dstSize);
    const progress: number[] = [];
    const written = await copyVolume(volumes, 'vol-src', dst, dstId, { lengthBytes: SIZE, windowBytes: WINDOW, onProgress: (p) => void progress.push(p), ...opts });
    return { written, progress };
  }

  const windowsProgress = Array.from({ length: SIZE / WINDOW }, (_, i) => Math.floor(((i + 1) * WINDOW * 100) / SIZE));

  it('copies through sparse streams into a thin pool: same bytes, only the data written, file still sparse', async () => {
    const { written, progress } = await copy(snapshots, 'snap-sparse');
    expect(written).toBeGreaterThanOrEqual(DATA_BYTES);
    expect(written).toBeLessThan(DATA_BYTES + 4 * MiB); // the file system's block granularity
    expect(progress).toEqual(windowsProgress);
    expect((await snapshots.read('snap-sparse', 0, SIZE)).equals(expected)).toBe(true);
    const st = statSync(join(home, 'snapshots', 'snap-sparse.img'));
    expect(st.size).toBe(SIZE);
    expect(st.blocks * 512).toBeLessThan(DATA_BYTES + 4 * MiB);
    expect((await snapshots.get('snap-sparse'))!.capacityBytes).toBe(SIZE);
    expect(lv.rpc.pendingCount).toBe(0);
  });

  it('gives the same bytes window by window (the baseline), writing whole windows that hold data', async () => {
    const { written, progress } = await copy(snapshots, 'snap-dense', { mode: 'dense' });
    const windowsWithData = new Set(EXTENTS.flatMap((e) => [Math.floor(e.offset / WINDOW), Math.floor((e.offset + e.length - 1) / WINDOW)]));
    expect(written).toBe(windowsWithData.size * WINDOW);
    expect(progress).toEqual(windowsProgress);
    expect((await snapshots.read('snap-dense', 0, SIZE)).equals(expected)).toBe(true);
  });

  it('restores into a bigger volume: the capacity stays, the rest reads as zeros', async () => {
    await copy(volumes, 'vol-big', {}, 2 * SIZE);
    const st = statSync(join(home, 'volumes', 'vol-big.img'));
    expect(st.size).toBe(2 * SIZE);
    expect((await volumes.get('vol-big'))!.capacityBytes).toBe(2 * SIZE);
    expect((await volumes.read('vol-big', 0, SIZE)).equals(expected)).toBe(true);
    expect((await volumes.read('vol-big', SIZE, SIZE)).equals(Buffer.alloc(SIZE))).toBe(true);
  });

  it('writes zeros for the holes into a thick destination (which may hold stale data)', async () => {
    // a new volume whose blocks hold someone's old data, as a new LV may
    await thick.create('vol-thick', SIZE);
    for (let off = 0; off < SIZE; off += WINDOW) await thick.write('vol-thick', off, Buffer.alloc(WINDOW, 0xee));
    const written = await copyVolume(volumes, 'vol-src', thick, 'vol-thick', { lengthBytes: SIZE, windowBytes: WINDOW });
    expect(written).toBe(SIZE);
    expect((await thick.read('vol-thick', 0, SIZE)).equals(expected)).toBe(true);
  });

  it('stops at the next window when aborted, leaving the connection usable', async () => {
    const abort = new AbortController();
    const progress: number[] = [];
    await snapshots.create('snap-aborted', SIZE);
    await expect(
      copyVolume(volumes, 'vol-src', snapshots, 'snap-aborted', {
        lengthBytes: SIZE,
        windowBytes: WINDOW,
        signal: abort.signal,
        onProgress: (p) => {
          progress.push(p);
          if (progress.length === 2) abort.abort();
        },
      }),
    ).rejects.toBeInstanceOf(CopyAbortedError);
    expect(progress).toEqual(windowsProgress.slice(0, 2));
    expect(lv.rpc.pendingCount).toBe(0);
    await snapshots.delete('snap-aborted');
    const { written } = await copy(snapshots, 'snap-after');
    expect(written).toBeLessThan(DATA_BYTES + 4 * MiB);
    expect((await snapshots.read('snap-after', 0, SIZE)).equals(expected)).toBe(true);
  });
});

describe('copyVolume on the test driver (no streams at all)', () => {
  const poolName = `koala-test-copy-td-${process.pid}-${randomBytes(3).toString('hex')}`;
  let lv: Libvirt;
  let backend: DirPoolBackend;

  beforeAll(async () => {
    lv = await Libvirt.connect({ uri: 'test:///default' });
    backend = new DirPoolBackend({ libvirt: async () => lv, poolName, targetPath: `/${poolName}` });
    await backend.open();
    await backend.create('vol-a', MiB);
    await backend.create('vol-b', MiB);
  });

  afterAll(async () => {
    const pool = await lv.lookupStoragePoolByName(poolName).catch(() => undefined);
    if (pool) {
      for (const v of await lv.listAllVolumes(pool)) await lv.deleteVolume(v).catch(() => undefined);
      await lv.destroyStoragePool(pool).catch(() => undefined);
      await lv.undefineStoragePool(pool).catch(() => undefined);
    }
    await lv.close();
  });

  it('reports sparse reads and writes as unsupported', async () => {
    const read = async () => {
      for await (const _ of backend.readSegments('vol-a', 0, MiB)) return;
    };
    await expect(read()).rejects.toBeInstanceOf(SparseUnsupportedError);
    await expect(backend.writeSegments('vol-b', (async function* () {})(), MiB)).rejects.toBeInstanceOf(SparseUnsupportedError);
  });

  it('falls back to the window-by-window path, which fails as it always did there', async () => {
    const err = await copyVolume(backend, 'vol-a', backend, 'vol-b', { lengthBytes: MiB }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: VIR_ERR_NO_SUPPORT, message: expect.stringMatching(/virStorageVolDownload/) });
  });
});
