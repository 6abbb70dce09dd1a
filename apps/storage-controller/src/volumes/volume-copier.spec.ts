import { MemoryBackend } from './memory-backend.js';
import { CopyAbortedError, copyVolume, type CopyMode } from './volume-copier.js';
import type { VolumeSegment } from './volume-backend.js';

const MiB = 1024 ** 2;
const WINDOW = 4 * MiB;
const SIZE = 64 * MiB;

/** A source volume with data at known places, some of it straddling windows, one all-zero write. */
async function source(sparse = true) {
  const src = new MemoryBackend('memory', true, undefined, sparse);
  await src.create('src', SIZE);
  await src.write('src', 3 * MiB, Buffer.alloc(2 * MiB, 1)); // across the first window boundary
  await src.write('src', 20 * MiB + 100, Buffer.alloc(1000, 2));
  await src.write('src', 40 * MiB, Buffer.alloc(WINDOW)); // written, but zeros
  await src.write('src', SIZE - 10, Buffer.alloc(10, 3)); // the last bytes
  return src;
}

async function copy(src: MemoryBackend, dst: MemoryBackend, mode?: CopyMode, signal?: AbortSignal) {
  await dst.create('dst', SIZE);
  const progress: number[] = [];
  const written = await copyVolume(src, 'src', dst, 'dst', { lengthBytes: SIZE, windowBytes: WINDOW, mode, signal, onProgress: (p) => void progress.push(p) });
  return { written, progress };
}

const windowsProgress = Array.from({ length: SIZE / WINDOW }, (_, i) => Math.floor(((i + 1) * WINDOW * 100) / SIZE));

describe('copyVolume', () => {
  it('sparse into a thin destination: writes only non-zero data, reads nothing window by window', async () => {
    const src = await source();
    const dst = new MemoryBackend();
    const { written, progress } = await copy(src, dst);
    expect(written).toBe(2 * MiB + 1000 + 10);
    expect(src.calls).toMatchObject({ read: 0, readSegments: 1 });
    expect(dst.calls).toMatchObject({ write: 0, writeSegments: 1 });
    expect((await dst.read('dst', 0, SIZE)).equals(await src.read('src', 0, SIZE))).toBe(true);
    expect((await dst.get('dst'))!.allocationBytes).toBe(written);
    // data cut at the window boundary, the zero write never stored
    expect(dst.volumes.get('dst')!.writes.map((w) => [w.offset, w.data.length])).toEqual([
      [3 * MiB, MiB],
      [4 * MiB, MiB],
      [20 * MiB + 100, 1000],
      [SIZE - 10, 10],
    ]);
    expect(progress).toEqual(windowsProgress);
  });

  it('sparse into a thick destination: holes become zeros, every byte is written', async () => {
    const src = await source();
    const dst = new MemoryBackend('memory', false);
    const { written, progress } = await copy(src, dst);
    expect(written).toBe(SIZE);
    expect((await dst.get('dst'))!.allocationBytes).toBe(SIZE);
    expect((await dst.read('dst', 0, SIZE)).equals(await src.read('src', 0, SIZE))).toBe(true);
    expect(dst.calls.write).toBe(0);
    expect(progress).toEqual(windowsProgress);
  });

  it('falls back to window by window when the source cannot stream sparsely, and the result is the same', async () => {
    const src = await source(false);
    const dst = new MemoryBackend();
    const { written, progress } = await copy(src, dst);
    expect(src.calls.readSegments).toBe(1); // tried, refused before the first segment
    expect(src.calls.read).toBe(SIZE / WINDOW);
    expect(dst.calls.write).toBeGreaterThan(0);
    expect(written).toBe(2 * WINDOW + 2 * WINDOW); // the windows holding non-zero data
    expect((await dst.read('dst', 0, SIZE)).equals(await src.read('src', 0, SIZE))).toBe(true);
    expect(progress).toEqual(windowsProgress);
  });

  it("mode 'dense' keeps the window-by-window path (the benchmark's baseline)", async () => {
    const src = await source();
    const dst = new MemoryBackend();
    const { progress } = await copy(src, dst, 'dense');
    expect(src.calls).toMatchObject({ readSegments: 0, read: SIZE / WINDOW });
    expect(dst.calls.writeSegments).toBe(0);
    expect((await dst.read('dst', 0, SIZE)).equals(await src.read('src', 0, SIZE))).toBe(true);
    expect(progress).toEqual(windowsProgress);
  });

  it('stops at the next window once aborted, also inside one long hole', async () => {
    const src = new MemoryBackend();
    await src.create('src', SIZE); // one 64 MiB hole
    const dst = new MemoryBackend();
    await dst.create('dst', SIZE);
    const abort = new AbortController();
    const progress: number[] = [];
    const copying = copyVolume(src, 'src', dst, 'dst', {
      lengthBytes: SIZE,
      windowBytes: WINDOW,
      signal: abort.signal,
      onProgress: (p) => {
        progress.push(p);
        if (progress.length === 3) abort.abort();
      },
    });
    await expect(copying).rejects.toBeInstanceOf(CopyAbortedError);
    expect(progress).toEqual(windowsProgress.slice(0, 3));
  });

  it('refuses a source that ends early or out of order', async () => {
    const short = new MemoryBackend();
    await short.create('src', SIZE / 2);
    await expect(copy(short, new MemoryBackend())).rejects.toThrow(/short read/);

    const jumbled = new MemoryBackend();
    await jumbled.create('src', SIZE);
    jumbled.readSegments = async function* (): AsyncGenerator<VolumeSegment, void, undefined> {
      yield { kind: 'hole', offset: 0, length: MiB };
      yield { kind: 'hole', offset: 2 * MiB, length: SIZE - 2 * MiB };
    };
    await expect(copy(jumbled, new MemoryBackend())).rejects.toThrow(/was left/);
  });
});
