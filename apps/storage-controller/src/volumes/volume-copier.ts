import type { VolumeBackend } from './volume-backend.js';

export const COPY_WINDOW_BYTES = 8 * 1024 * 1024;

export class CopyAbortedError extends Error {
  constructor() {
    super('copy aborted (storage controller stopping)');
    this.name = 'CopyAbortedError';
  }
}

export interface CopyOptions {
  /** Bytes to copy from offset 0 (the source's size). */
  lengthBytes: number;
  windowBytes?: number;
  /** Called with 0..100 after each window. */
  onProgress?: (percent: number) => void | Promise<void>;
  signal?: AbortSignal;
}

/**
 * Copies a volume's bytes between pools through libvirt streams, one window at a time
 * (download a window, upload it). Into a thin (sparse) destination, all-zero windows are
 * skipped, so a copy of a sparse volume stays sparse; a thick destination (LVM: a new LV may
 * hold stale data) gets every byte. Returns the bytes written.
 */
export async function copyVolume(src: VolumeBackend, srcId: string, dst: VolumeBackend, dstId: string, opts: CopyOptions): Promise<number> {
  const window = opts.windowBytes ?? COPY_WINDOW_BYTES;
  const zeros = Buffer.alloc(window);
  let written = 0;
  let lastPercent = -1;
  for (let offset = 0; offset < opts.lengthBytes; offset += window) {
    if (opts.signal?.aborted) throw new CopyAbortedError();
    const length = Math.min(window, opts.lengthBytes - offset);
    const data = await src.read(srcId, offset, length);
    if (data.length !== length) throw new Error(`short read from ${srcId} at ${offset}: ${data.length} of ${length} bytes`);
    if (!dst.thin || !data.equals(zeros.subarray(0, length))) {
      await dst.write(dstId, offset, data);
      written += length;
    }
    const percent = Math.floor(((offset + length) * 100) / opts.lengthBytes);
    if (percent !== lastPercent) {
      lastPercent = percent;
      await opts.onProgress?.(percent);
    }
  }
  return written;
}
