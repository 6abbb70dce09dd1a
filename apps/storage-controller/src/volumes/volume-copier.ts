import { SparseUnsupportedError, type VolumeBackend, type VolumeSegment } from './volume-backend.js';

export const COPY_WINDOW_BYTES = 8 * 1024 * 1024;

export class CopyAbortedError extends Error {
  constructor() {
    super('copy aborted (storage controller stopping)');
    this.name = 'CopyAbortedError';
  }
}

/**
 * `auto`: sparse when both backends can (readSegments/writeSegments), else window by window.
 * `dense`: window by window always (the path before sparse streams; the benchmark's baseline).
 */
export type CopyMode = 'auto' | 'dense';

export interface CopyOptions {
  /** Bytes to copy from offset 0 (the source's size). */
  lengthBytes: number;
  windowBytes?: number;
  /** Called with 0..100 after each window. */
  onProgress?: (percent: number) => void | Promise<void>;
  signal?: AbortSignal;
  /** Default `auto`. */
  mode?: CopyMode;
}

/**
 * Copies a volume's bytes between pools into a new destination volume, through libvirt streams.
 * Returns the bytes written.
 *
 * Sparse (both backends offer readSegments/writeSegments): the source is read once as data and
 * holes (a hole travels as one small packet whatever its length) and written in one pass. Into a
 * thin (sparse) destination, holes and all-zero data are not written, so a copy of a sparse
 * volume stays sparse and takes time for its data only; a thick destination (LVM: a new LV may
 * hold stale data) gets zeros for the holes.
 *
 * Dense (fallback where a pool cannot stream sparsely, e.g. libvirt's test driver; or `mode:
 * 'dense'`): one window at a time, download then upload; into a thin destination all-zero windows
 * are skipped, a thick one gets every byte.
 *
 * Either way progress (0..100) is reported after each window, and an aborted `signal` stops the
 * copy at the next window with CopyAbortedError.
 */
export async function copyVolume(src: VolumeBackend, srcId: string, dst: VolumeBackend, dstId: string, opts: CopyOptions): Promise<number> {
  if (opts.lengthBytes <= 0) return 0; // (a libvirt length of 0 would mean "to the end")
  if ((opts.mode ?? 'auto') === 'auto' && src.readSegments && dst.writeSegments) {
    try {
      return await copySparse(src, srcId, dst, dstId, opts);
    } catch (err) {
      if (!(err instanceof SparseUnsupportedError)) throw err;
      // nothing was read or written yet: go window by window
    }
  }
  return copyDense(src, srcId, dst, dstId, opts);
}

function progress(opts: CopyOptions): (doneBytes: number) => Promise<void> {
  let lastPercent = -1;
  return async (doneBytes) => {
    const percent = Math.floor((doneBytes * 100) / opts.lengthBytes);
    if (percent !== lastPercent) {
      lastPercent = percent;
      await opts.onProgress?.(percent);
    }
  };
}

async function copyDense(src: VolumeBackend, srcId: string, dst: VolumeBackend, dstId: string, opts: CopyOptions): Promise<number> {
  const window = opts.windowBytes ?? COPY_WINDOW_BYTES;
  const report = progress(opts);
  let written = 0;
  for (let offset = 0; offset < opts.lengthBytes; offset += window) {
    if (opts.signal?.aborted) throw new CopyAbortedError();
    const length = Math.min(window, opts.lengthBytes - offset);
    const data = await src.read(srcId, offset, length);
    if (data.length !== length) throw new Error(`short read from ${srcId} at ${offset}: ${data.length} of ${length} bytes`);
    if (!dst.thin || !isZero(data)) {
      await dst.write(dstId, offset, data);
      written += length;
    }
    await report(offset + length);
  }
  return written;
}

async function copySparse(src: VolumeBackend, srcId: string, dst: VolumeBackend, dstId: string, opts: CopyOptions): Promise<number> {
  const window = opts.windowBytes ?? COPY_WINDOW_BYTES;
  const total = opts.lengthBytes;
  const report = progress(opts);
  const read = src.readSegments!(srcId, 0, total);

  // The source's segments, checked, cut at window boundaries (progress and the abort check come
  // with every window, also inside a long hole) and, for a thin destination, with all-zero data
  // turned into holes. The writer pulls the next piece only when it has sent the previous one.
  async function* pieces(): AsyncGenerator<VolumeSegment, void, undefined> {
    let pos = 0;
    for await (const seg of read) {
      const end = seg.offset + (seg.kind === 'data' ? seg.data.length : seg.length);
      if (seg.offset !== pos || end > total) throw new Error(`sparse read of ${srcId}: got [${seg.offset}, ${end}) where [${pos}, ${total}) was left`);
      while (pos < end) {
        if (opts.signal?.aborted) throw new CopyAbortedError();
        const cut = Math.min(end, (Math.floor(pos / window) + 1) * window);
        if (seg.kind === 'hole') {
          yield { kind: 'hole', offset: pos, length: cut - pos };
        } else {
          const data = seg.data.subarray(pos - seg.offset, cut - seg.offset);
          yield dst.thin && isZero(data) ? { kind: 'hole', offset: pos, length: data.length } : { kind: 'data', offset: pos, data };
        }
        pos = cut;
        if (pos % window === 0 || pos === total) await report(pos);
      }
    }
    if (pos !== total) throw new Error(`short read from ${srcId}: ${pos} of ${total} bytes`);
  }

  return dst.writeSegments!(dstId, pieces(), total);
}

const ZERO_PAGE = Buffer.alloc(64 * 1024);

function isZero(data: Buffer): boolean {
  for (let off = 0; off < data.length; off += ZERO_PAGE.length) {
    const part = data.subarray(off, off + ZERO_PAGE.length);
    if (!part.equals(ZERO_PAGE.subarray(0, part.length))) return false;
  }
  return true;
}
