/**
 * Raw disk → compact qcow2 with `qemu-img convert`: qemu-img walks the file's extents
 * (SEEK_DATA/SEEK_HOLE), so holes are never read, and it leaves zero clusters unallocated, so the
 * output holds only the data (a 10 GiB raw file with 10 MiB of data gives ~10 MiB). The output
 * has no backing file and no external data file, and the same input gives the same bytes (the
 * store's digest stays stable across imports).
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

export class RawConversionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RawConversionError';
  }
}

export function convertRawToQcow2(src: string, dst: string, opts: { qemuImg?: string; timeoutMs?: number } = {}): Promise<void> {
  // Absolute paths: qemu-img reads "proto:..." as a protocol, which an absolute path cannot be.
  const args = ['convert', '-q', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=1.1', resolve(src), resolve(dst)];
  return new Promise((ok, fail) => {
    execFile(opts.qemuImg ?? 'qemu-img', args, { timeout: opts.timeoutMs ?? 3_600_000, maxBuffer: 64 * 1024 }, (err, _out, stderr) => {
      if (!err) return ok();
      const why = String(stderr).trim().split('\n').pop() || err.message;
      fail(new RawConversionError(`qemu-img convert failed: ${why}`));
    });
  });
}
