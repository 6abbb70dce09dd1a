// Sparse streams of @koala/libvirt against the machine's libvirtd (qemu:///system): a raw volume
// in a temporary dir pool with data at known offsets is downloaded as data segments and holes,
// which must rebuild it exactly while moving far fewer bytes than its size; a sparse download
// piped (from a second connection) into a sparse upload gives an identical, still sparse copy.
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { Libvirt, type StoragePool, type StorageVol, type VolumeSegment } from '@koala/libvirt';

// A stuck stream fails the test in 60 s instead of hanging the run.
jest.setTimeout(60_000);

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
/** Where the source volume holds data; everything else was never written (holes in the file). */
const EXTENTS = [
  { offset: 1 * MiB, length: MiB },
  { offset: 10 * MiB + 12_345, length: 300_000 }, // not block aligned
  { offset: 40 * MiB, length: 2 * MiB },
  { offset: 63 * MiB, length: MiB }, // up to the end
];

describe('sparse volume streams against qemu:///system', () => {
  const poolName = `koala-test-sparse-${randomUUID().slice(0, 8)}`;
  let lv: Libvirt;
  let dir: string;
  let pool: StoragePool;
  let src: StorageVol;
  const expected = Buffer.alloc(SIZE);

  const rawVolume = (name: string) =>
    lv.createVolume(pool, `<volume><name>${name}</name><capacity unit='bytes'>${SIZE}</capacity><allocation unit='bytes'>0</allocation><target><format type='raw'/></target></volume>`);

  async function collect(it: AsyncIterable<VolumeSegment>): Promise<VolumeSegment[]> {
    const out: VolumeSegment[] = [];
    for await (const s of it) out.push(s);
    return out;
  }

  /** Checks the segments run without gaps from `start` and rebuilds the bytes they describe. */
  function rebuild(segs: VolumeSegment[], start: number, length: number): { bytes: Buffer; dataBytes: number } {
    const bytes = Buffer.alloc(length);
    let pos = start;
    let dataBytes = 0;
    for (const s of segs) {
      expect(s.offset).toBe(pos);
      if (s.kind === 'data') {
        s.data.copy(bytes, s.offset - start);
        dataBytes += s.data.length;
        pos += s.data.length;
      } else {
        expect(s.length).toBeGreaterThan(0);
        pos += s.length;
      }
    }
    expect(pos).toBe(start + length);
    return { bytes, dataBytes };
  }

  beforeAll(async () => {
    lv = await Libvirt.connect({ uri: 'qemu:///system' });
    dir = mkdtempSync(join(tmpdir(), 'koala-test-sparse-'));
    chmodSync(dir, 0o755);
    pool = await lv.defineStoragePool(`<pool type='dir'><name>${poolName}</name><target><path>${dir}</path></target></pool>`);
    await lv.buildStoragePool(pool);
    await lv.createStoragePool(pool);
    src = await rawVolume('src.img');
    for (const e of EXTENTS) {
      const data = randomBytes(e.length);
      data.copy(expected, e.offset);
      await lv.uploadVolume(src, data, { offset: e.offset, length: e.length });
    }
  });

  afterAll(async () => {
    try {
      if (pool) {
        await lv.refreshStoragePool(pool).catch(() => undefined);
        for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
        await lv.destroyStoragePool(pool).catch(() => undefined);
        await lv.undefineStoragePool(pool).catch(() => undefined);
      }
    } finally {
      await lv?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('downloads data segments and holes that rebuild the volume exactly, moving far fewer bytes than its size', async () => {
    const segs = await collect(lv.downloadVolumeSparse(src));
    const { bytes, dataBytes } = rebuild(segs, 0, SIZE);
    expect(bytes.equals(expected)).toBe(true);
    // The file system reports holes by block, so data segments may round the extents up a little.
    const written = EXTENTS.reduce((s, e) => s + e.length, 0);
    expect(dataBytes).toBeGreaterThanOrEqual(written);
    expect(dataBytes).toBeLessThan(written + 4 * MiB);
    // No written byte may be reported as a hole.
    for (const h of segs.filter((s) => s.kind === 'hole')) {
      for (const e of EXTENTS) expect(h.offset + (h as { length: number }).length <= e.offset || h.offset >= e.offset + e.length).toBe(true);
    }
    // The long unwritten stretch between the extents travels as holes.
    const holeBytes = (from: number, to: number) =>
      segs.filter((s) => s.kind === 'hole').reduce((n, h) => n + Math.max(0, Math.min(to, h.offset + (h as { length: number }).length) - Math.max(from, h.offset)), 0);
    expect(holeBytes(12 * MiB, 40 * MiB)).toBe(28 * MiB);
    // The dense download gives the same bytes.
    expect((await lv.downloadVolume(src)).equals(expected)).toBe(true);
  });

  it('downloads a range that starts in a hole and ends inside data', async () => {
    const start = MiB / 2;
    const length = MiB / 2 + 8192;
    const segs = await collect(lv.downloadVolumeSparse(src, { offset: start, length }));
    expect(segs[0]).toEqual({ kind: 'hole', offset: start, length: MiB / 2 });
    expect(rebuild(segs, start, length).bytes.equals(expected.subarray(start, start + length))).toBe(true);
  });

  it('gives an empty volume as one hole', async () => {
    const empty = await rawVolume('empty.img');
    expect(await collect(lv.downloadVolumeSparse(empty))).toEqual([{ kind: 'hole', offset: 0, length: SIZE }]);
  });

  it('pipes a sparse download (second connection) into a sparse upload: an identical copy that stays sparse', async () => {
    const dst = await rawVolume('copy.img');
    const reader = await lv.connectAgain();
    const sent = await lv.uploadVolumeSparse(dst, reader.downloadVolumeSparse(src), { length: SIZE }).finally(() => reader.close());
    expect(sent).toBeLessThan(EXTENTS.reduce((s, e) => s + e.length, 0) + 4 * MiB);
    expect((await lv.downloadVolume(dst)).equals(expected)).toBe(true);
    const st = statSync(join(dir, 'copy.img'));
    expect(st.size).toBe(SIZE);
    expect(st.blocks * 512).toBeLessThan(16 * MiB);
    const info = await lv.getVolumeInfo(dst);
    expect(info.capacity).toBe(SIZE);
    expect(info.allocation).toBeLessThan(16 * MiB);
  });

  it('stops a sparse download the consumer breaks off, and the connection carries on', async () => {
    let seen = 0;
    for await (const s of lv.downloadVolumeSparse(src)) {
      if (s.kind === 'data' && ++seen === 2) break;
    }
    expect(lv.rpc.pendingCount).toBe(0);
    const again = await collect(lv.downloadVolumeSparse(src, { offset: 40 * MiB, length: MiB }));
    expect(rebuild(again, 40 * MiB, MiB).bytes.equals(expected.subarray(40 * MiB, 41 * MiB))).toBe(true);
  });
});
