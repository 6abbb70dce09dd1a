/**
 * The CLC's image store: blobs addressed by the sha256 of their bytes, under
 * `$KOALA_HOME/image-store/sha256/<hex>`. The one place image bytes touch the file system.
 *
 * put: bytes are hashed while written to a private temporary file (all-zero 4 KiB blocks are
 * skipped, leaving holes, so sparse raw disks stay sparse), fsync'd, then renamed onto the
 * digest's path (atomic: a reader sees the whole blob or none; concurrent puts of the same bytes
 * both succeed and leave one file).
 *
 * putRawDisk: a raw disk file is stored as a compact qcow2 (raw-to-qcow2.ts): its holes are
 * neither read nor stored, and the digest is that of the qcow2 bytes (what the NCs download).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { convertRawToQcow2 } from './raw-to-qcow2.js';

export const SHA256_HEX = /^[a-f0-9]{64}$/;

export interface PutResult {
  sha256: string;
  size: number;
}

export interface PutOptions {
  /** Refuse (BlobTooLargeError) a blob larger than this. */
  maxBytes?: number;
  /** Called with the bytes stored so far (throttled by the caller, not here). */
  onProgress?: (bytes: number) => void;
}

/** Port: content-addressed blob storage. */
export interface BlobStore {
  /** Stores the stream's bytes; resolves when the blob is durable under its digest. */
  put(source: Readable | AsyncIterable<Buffer>, opts?: PutOptions): Promise<PutResult>;
  /** Stores the raw disk file at `path` (a host file, or `pathOf` a stored blob) as a compact qcow2. */
  putRawDisk(path: string, opts?: PutOptions): Promise<PutResult>;
  /** Where a blob's bytes are on the host (for putRawDisk of a stored raw blob). */
  pathOf(sha256: string): string;
  /** Size of the blob, or undefined when absent. */
  size(sha256: string): Promise<number | undefined>;
  /** Bytes the blob occupies on disk (its zero blocks are holes), or undefined when absent. */
  allocated(sha256: string): Promise<number | undefined>;
  /** The blob's bytes [start, end] (inclusive), whole blob by default. Absent → BlobNotFoundError. */
  open(sha256: string, range?: { start: number; end: number }): Promise<Readable>;
  /** The first `n` bytes (fewer when the blob is shorter). */
  head(sha256: string, n: number): Promise<Buffer>;
  /** Removes the blob; false when it was not there. */
  delete(sha256: string): Promise<boolean>;
  /** Digests of every stored blob. */
  list(): Promise<string[]>;
}
export const BLOB_STORE = Symbol('BLOB_STORE');

export class BlobTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`image larger than ${maxBytes} bytes`);
    this.name = 'BlobTooLargeError';
  }
}
export class BlobNotFoundError extends Error {
  constructor(readonly sha256: string) {
    super(`no blob sha256:${sha256}`);
    this.name = 'BlobNotFoundError';
  }
}

const BLOCK = 4096;
const ZERO = Buffer.alloc(BLOCK);

function check(sha256: string): string {
  if (!SHA256_HEX.test(sha256)) throw new Error(`invalid sha256 digest ${JSON.stringify(sha256)}`);
  return sha256;
}

/** File-system BlobStore rooted at a directory (normally `$KOALA_HOME/image-store`). */
export class FsBlobStore implements BlobStore {
  private readonly dir: string;
  private readonly tmp: string;

  constructor(root: string) {
    this.dir = join(root, 'sha256');
    this.tmp = join(root, 'tmp');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    mkdirSync(this.tmp, { recursive: true, mode: 0o700 });
  }

  pathOf(sha256: string): string {
    return join(this.dir, check(sha256));
  }

  async put(source: Readable | AsyncIterable<Buffer>, opts: PutOptions = {}): Promise<PutResult> {
    const tmpPath = join(this.tmp, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const fh = await open(tmpPath, 'wx', 0o600);
    const hash = createHash('sha256');
    let size = 0;
    let ok = false;
    try {
      for await (const c of source) {
        const chunk = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
        size += chunk.length;
        if (opts.maxBytes !== undefined && size > opts.maxBytes) throw new BlobTooLargeError(opts.maxBytes);
        hash.update(chunk);
        await writeSparse(fh, chunk, size - chunk.length);
        opts.onProgress?.(size);
      }
      await fh.truncate(size); // trailing holes still count
      await fh.sync();
      ok = true;
    } finally {
      await fh.close();
      if (!ok) await unlink(tmpPath).catch(() => undefined);
    }
    const sha256 = hash.digest('hex');
    try {
      await rename(tmpPath, this.pathOf(sha256));
    } catch (e) {
      await unlink(tmpPath).catch(() => undefined);
      throw e;
    }
    return { sha256, size };
  }

  async putRawDisk(path: string, opts: PutOptions = {}): Promise<PutResult> {
    const tmpPath = join(this.tmp, `${process.pid}-${randomBytes(8).toString('hex')}.qcow2`);
    try {
      await convertRawToQcow2(path, tmpPath);
      return await this.put(createReadStream(tmpPath, { highWaterMark: 1024 * 1024 }), opts);
    } finally {
      await unlink(tmpPath).catch(() => undefined);
    }
  }

  async size(sha256: string): Promise<number | undefined> {
    try {
      return (await stat(this.pathOf(sha256))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async allocated(sha256: string): Promise<number | undefined> {
    try {
      return (await stat(this.pathOf(sha256))).blocks * 512;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async open(sha256: string, range?: { start: number; end: number }): Promise<Readable> {
    const path = this.pathOf(sha256);
    // open first so a missing blob is an error here, not an 'error' event later
    const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new BlobNotFoundError(sha256) : e;
    });
    return fh.createReadStream({ start: range?.start, end: range?.end, highWaterMark: 256 * 1024 });
  }

  async head(sha256: string, n: number): Promise<Buffer> {
    const fh = await open(this.pathOf(sha256), 'r').catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new BlobNotFoundError(sha256) : e;
    });
    try {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fh.read(buf, 0, n, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  async delete(sha256: string): Promise<boolean> {
    try {
      await unlink(this.pathOf(sha256));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  async list(): Promise<string[]> {
    return (await readdir(this.dir)).filter((n) => SHA256_HEX.test(n)).sort();
  }

  /** Removes temporary files left by a crashed put (call at start, before any put). */
  async cleanTemporary(olderThanMs = 3600_000): Promise<void> {
    for (const n of await readdir(this.tmp)) {
      const p = join(this.tmp, n);
      const s = await stat(p).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs > olderThanMs) await rm(p, { force: true });
    }
  }
}

/** Writes `chunk` at `offset`, skipping 4 KiB-aligned all-zero blocks (they stay holes). */
async function writeSparse(fh: import('node:fs/promises').FileHandle, chunk: Buffer, offset: number): Promise<void> {
  let i = 0;
  let runStart = -1; // start (in chunk) of the pending non-zero run
  while (i < chunk.length) {
    const abs = offset + i;
    const blockEnd = Math.min(chunk.length, i + (BLOCK - (abs % BLOCK)));
    const len = blockEnd - i;
    const zero = len === BLOCK && chunk.subarray(i, blockEnd).equals(ZERO);
    if (zero) {
      if (runStart >= 0) {
        await writeAll(fh, chunk.subarray(runStart, i), offset + runStart);
        runStart = -1;
      }
    } else if (runStart < 0) runStart = i;
    i = blockEnd;
  }
  if (runStart >= 0) await writeAll(fh, chunk.subarray(runStart), offset + runStart);
}

async function writeAll(fh: import('node:fs/promises').FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}
