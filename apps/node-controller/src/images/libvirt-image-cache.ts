import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageBlob } from '@koala/contracts';
import type { KoalaConfig } from '@koala/config';
import type { Libvirt } from '@koala/libvirt';
import { HttpBlobFetcher, redactUrl, type BlobDownload, type BlobFetcher } from './blob-fetcher.js';
import type { CachedImage, ImageCache } from './image-cache.js';
import { IMAGE_HEADER_BYTES, imageHeaderProblem, inspectImageHeader } from './image-header.js';
import { markerName, type ImagePool } from './image-pool.js';
import { LibvirtImagePool } from './libvirt-image-pool.js';

/** The downloaded bytes do not match the blob's digest or size; nothing was cached. */
export class ImageVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageVerificationError';
  }
}

export class ImageDigestMismatchError extends ImageVerificationError {
  constructor(
    readonly imageId: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`image ${imageId}: sha256 mismatch: expected ${expected}, got ${actual}; nothing was cached`);
    this.name = 'ImageDigestMismatchError';
  }
}

export class ImageSizeMismatchError extends ImageVerificationError {
  constructor(
    readonly imageId: string,
    readonly expected: number,
    readonly actual: number,
    more = false,
  ) {
    super(`image ${imageId}: size mismatch: expected ${expected} bytes, got ${more ? 'more than ' : ''}${actual}; nothing was cached`);
    this.name = 'ImageSizeMismatchError';
  }
}

/**
 * The image is not what the launch says (raw vs qcow2), or is a qcow2 that names another file
 * (backing file, external data file) QEMU would open on the host; nothing was cached.
 */
export class ImageFormatError extends ImageVerificationError {
  readonly code = 'Client.InvalidImage';
  constructor(
    readonly imageId: string,
    readonly problem: string,
  ) {
    super(`image ${imageId} refused: ${problem}`);
    this.name = 'ImageFormatError';
  }
}

/** Counters for tests, benchmarks and the heartbeat. */
export interface ImageCacheStats {
  /** Downloads started / completed and verified / failed. */
  downloads: number;
  verified: number;
  failures: number;
  /** Bytes received over HTTP (all downloads, including failed ones). */
  downloadedBytes: number;
  /** acquire() calls served from the cache without waiting on a download. */
  hits: number;
  evictions: number;
  evictedBytes: number;
  /** Verified images whose bytes are simulated (driver without stream upload: test:///default). */
  simulated: number;
  /** Current content. */
  entries: number;
  cachedBytes: number;
  maxBytes: number;
}

export interface LibvirtImageCacheOptions {
  /** Where the volumes live (LibvirtImagePool in production, a fake in unit tests). */
  pool: ImagePool;
  /** Where the bytes come from (HttpBlobFetcher in production). */
  fetcher: BlobFetcher;
  /** Soft cap on cached bytes (KOALA_IMAGE_CACHE_MAX_BYTES); images in use are never evicted. */
  maxBytes: number;
  /** Optional log sink (pino-compatible `info`/`warn`). */
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

interface Entry {
  sha256: string;
  volume: string;
  path: string;
  sizeBytes: number;
  /** The driver could not store the bytes (test driver): the volume content is simulated. */
  simulated: boolean;
  /** What the bytes are (read from the header; unknown for images found at start until read). */
  format?: 'raw' | 'qcow2';
  /** From the header with `format` (a qcow2's disk size); sizeBytes when unknown or raw. */
  virtualSize?: number;
}

/**
 * The NC image cache (port ImageCache) over an ImagePool.
 *
 * - One download per digest: concurrent acquire() calls for an uncached digest share one
 *   in-flight promise; a failed download rejects them all and leaves nothing behind.
 * - Verified: sha256 and length are computed while the bytes stream from HTTP into the libvirt
 *   volume; a mismatch deletes the volume (ImageDigestMismatchError / ImageSizeMismatchError).
 *   See image-pool.ts for the crash-safety scheme (verified marker volume).
 * - LRU under `maxBytes`: before a download and whenever an image is released, the least
 *   recently acquired images with no holder are evicted until the total fits; an image with a
 *   holder (or being downloaded) is never evicted, so the cap is soft when everything is in use.
 * - Holders are per digest and survive independently of the entries, so adopt() may be called
 *   before the pool was scanned (NC restart) and still protects the image.
 *
 * `start()` opens the pool (idempotent; acquire() calls it too). Wiring in the NC:
 *
 *   const reconnector = new LibvirtReconnector({ uri: config.libvirtUri, socketPath: config.libvirtSocket });
 *   const cache = LibvirtImageCache.fromConfig(config, () => reconnector.get(), logger);
 *   { provide: IMAGE_CACHE, useValue: cache }
 *   // at start: cache.adopt(sha256, instanceId) for each adopted domain's image, then await cache.start()
 *
 * or `new LibvirtImageCache({ pool, fetcher, maxBytes, logger? })` with any ImagePool/BlobFetcher.
 * On `test:///default` the volumes are created (right name, path and capacity) but hold no
 * bytes: stats().simulated counts them; the download is still verified.
 */
export class LibvirtImageCache implements ImageCache {
  private readonly entries = new Map<string, Entry>();
  private readonly holders = new Map<string, Set<string>>();
  /** LRU clock: a counter, not wall time (deterministic, no clock needed). */
  private readonly lastUsed = new Map<string, number>();
  private tick = 0;
  private readonly inflight = new Map<string, { sizeBytes: number; promise?: Promise<Entry> }>();
  private readonly evicting = new Map<string, Promise<void>>();
  private starting?: Promise<void>;
  private readonly counters = { downloads: 0, verified: 0, failures: 0, downloadedBytes: 0, hits: 0, evictions: 0, evictedBytes: 0, simulated: 0 };

  constructor(private readonly opts: LibvirtImageCacheOptions) {}

  /**
   * The production wiring: a LibvirtImagePool named KOALA_IMAGE_CACHE_POOL in
   * KOALA_IMAGE_CACHE_DIR (default `$KOALA_HOME/cache/images`), an HttpBlobFetcher with
   * KOALA_IMAGE_DOWNLOAD_STALL_MS, capped at KOALA_IMAGE_CACHE_MAX_BYTES.
   */
  static fromConfig(
    config: Pick<KoalaConfig, 'home' | 'imageCachePool' | 'imageCacheDir' | 'imageCacheMaxBytes' | 'imageDownloadStallMs'>,
    libvirt: () => Promise<Libvirt>,
    logger?: LibvirtImageCacheOptions['logger'],
  ): LibvirtImageCache {
    const pool = new LibvirtImagePool({
      libvirt,
      poolName: config.imageCachePool,
      targetPath: config.imageCacheDir ?? join(config.home, 'cache', 'images'),
      onLeftoverRemoved: (name) => logger?.info({ pool: config.imageCachePool, volume: name }, 'removed leftover image cache volume'),
    });
    return new LibvirtImageCache({
      pool,
      fetcher: new HttpBlobFetcher({ stallTimeoutMs: config.imageDownloadStallMs }),
      maxBytes: config.imageCacheMaxBytes,
      logger,
    });
  }

  /** Opens the pool: sweeps leftovers of interrupted downloads and loads the verified images. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      const images = await this.opts.pool.open();
      for (const img of images) {
        this.entries.set(img.sha256, { sha256: img.sha256, volume: img.volume, path: img.path, sizeBytes: img.sizeBytes, simulated: false });
      }
      this.opts.logger?.info({ pool: this.opts.pool.name, images: images.length, bytes: this.cachedBytes() }, 'image cache opened');
      await this.evict(0);
    })().catch((err) => {
      this.starting = undefined; // let the next call retry (e.g. libvirtd was restarting)
      throw err;
    });
    return this.starting;
  }

  async acquire(blob: ImageBlob, holder: string): Promise<CachedImage> {
    // Hold first: from here on no eviction can take this digest away.
    const held = this.hold(blob.sha256, holder);
    try {
      await this.start();
      let waited = false;
      for (;;) {
        const e = this.entries.get(blob.sha256);
        if (e) {
          // The same bytes under another claimed format are refused too (the message decides nothing).
          const format = e.format ?? (e.format = await this.formatOnDisk(e));
          if (format && format !== blob.format) throw new ImageFormatError(blob.imageId, `the image is ${format}, not ${blob.format} as the launch says`);
          if (!waited) this.counters.hits++;
          this.touch(blob.sha256);
          return { sha256: e.sha256, pool: this.opts.pool.name, volume: e.volume, path: e.path, format: blob.format, sizeBytes: e.sizeBytes, virtualSizeBytes: e.virtualSize ?? e.sizeBytes };
        }
        waited = true;
        const evicting = this.evicting.get(blob.sha256);
        if (evicting) {
          await evicting.catch(() => undefined);
          continue;
        }
        await this.download(blob);
      }
    } catch (err) {
      if (held) this.unhold(blob.sha256, holder);
      throw err;
    }
  }

  release(sha256: string, holder: string): void {
    if (this.unhold(sha256, holder)) void this.evict(0).catch((err) => this.opts.logger?.warn({ err }, 'image cache eviction failed'));
  }

  adopt(sha256: string, holder: string): void {
    this.hold(sha256, holder);
    this.touch(sha256);
  }

  /** Counters and current content. */
  stats(): ImageCacheStats {
    return { ...this.counters, entries: this.entries.size, cachedBytes: this.cachedBytes(), maxBytes: this.opts.maxBytes };
  }

  /** Digests currently cached, least recently used first (for tests and status). */
  lruOrder(): string[] {
    return [...this.entries.keys()].sort((a, b) => (this.lastUsed.get(a) ?? 0) - (this.lastUsed.get(b) ?? 0) || a.localeCompare(b));
  }

  /** Holders of a digest (instance ids). */
  holdersOf(sha256: string): string[] {
    return [...(this.holders.get(sha256) ?? [])];
  }

  // --- internals --------------------------------------------------------------------------------

  /** Single flight per digest. */
  private download(blob: ImageBlob): Promise<Entry> {
    let f = this.inflight.get(blob.sha256);
    if (!f) {
      // Registered before fetchAndStore runs, so its size counts as reserved in evict().
      const slot: { sizeBytes: number; promise?: Promise<Entry> } = { sizeBytes: blob.sizeBytes };
      this.inflight.set(blob.sha256, slot);
      slot.promise = this.fetchAndStore(blob).finally(() => this.inflight.delete(blob.sha256));
      return slot.promise;
    }
    return f.promise!;
  }

  private async fetchAndStore(blob: ImageBlob): Promise<Entry> {
    if (blob.sizeBytes <= 0) throw new ImageVerificationError(`image ${blob.imageId}: size must be positive, got ${blob.sizeBytes}`);
    this.counters.downloads++;
    const { pool } = this.opts;
    const name = blob.sha256;
    let created = false;
    let dl: BlobDownload | undefined;
    try {
      await this.evict(0); // inflight already reserves this blob's size
      dl = await this.opts.fetcher.open(blob.url);
      if (dl.contentLength !== undefined && dl.contentLength !== blob.sizeBytes) {
        throw new ImageSizeMismatchError(blob.imageId, blob.sizeBytes, dl.contentLength);
      }
      const body = dl.body;
      const path = await pool.createVolume(name, blob.sizeBytes);
      created = true;
      const hash = createHash('sha256');
      let got = 0;
      let complete = false;
      const counters = this.counters;
      // The header is checked as soon as it has arrived: the bytes, not the message, say what the image is.
      const head = new Uint8Array(Math.min(IMAGE_HEADER_BYTES, blob.sizeBytes));
      let headChecked = false;
      const checkHead = (len: number) => {
        headChecked = true;
        const problem = imageHeaderProblem(head.subarray(0, len), blob.format);
        if (problem) throw new ImageFormatError(blob.imageId, problem);
      };
      const verifying = async function* (): AsyncGenerator<Uint8Array> {
        for await (const chunk of body) {
          if (got < head.length) head.set(chunk.subarray(0, head.length - got), got);
          got += chunk.length;
          counters.downloadedBytes += chunk.length;
          if (got > blob.sizeBytes) throw new ImageSizeMismatchError(blob.imageId, blob.sizeBytes, blob.sizeBytes, true);
          if (!headChecked && got >= head.length) checkHead(head.length);
          hash.update(chunk);
          yield chunk;
        }
        // Checked before the upload is finished, so a bad image never completes its stream.
        if (got !== blob.sizeBytes) throw new ImageSizeMismatchError(blob.imageId, blob.sizeBytes, got);
        if (!headChecked) checkHead(got);
        const actual = hash.digest('hex');
        if (actual !== blob.sha256) throw new ImageDigestMismatchError(blob.imageId, blob.sha256, actual);
        complete = true;
      };
      const source = verifying();
      const outcome = await pool.writeVolume(name, source);
      if (outcome === 'unsupported') {
        // test:///default: no stream upload. Still download and verify every byte.
        for await (const _ of source) void _;
        this.counters.simulated++;
      }
      if (!complete) throw new Error(`image ${blob.imageId}: download ended before verification`);
      await pool.markVerified(name);
      const found = inspectImageHeader(head);
      const entry: Entry = { sha256: name, volume: name, path, sizeBytes: blob.sizeBytes, simulated: outcome === 'unsupported', format: found.format, virtualSize: found.virtualSize };
      this.entries.set(name, entry);
      this.counters.verified++;
      this.opts.logger?.info({ imageId: blob.imageId, sha256: name, bytes: blob.sizeBytes, simulated: entry.simulated, url: redactUrl(blob.url) }, 'image cached');
      return entry;
    } catch (err) {
      this.counters.failures++;
      await dl?.cancel().catch(() => undefined);
      if (created) {
        await pool.deleteVolume(markerName(name)).catch(() => undefined);
        await pool.deleteVolume(name).catch((e) => this.opts.logger?.warn({ err: e, volume: name }, 'cannot delete a failed image volume'));
      }
      throw err;
    }
  }

  /**
   * Evicts least recently used images without holders until cached + in-flight bytes +
   * `reserve` fit under maxBytes. Victims are chosen synchronously (so a concurrent acquire
   * sees them as evicting and waits), then deleted: marker first, then data.
   */
  private async evict(reserve: number): Promise<void> {
    let total = this.cachedBytes() + reserve;
    for (const f of this.inflight.values()) total += f.sizeBytes;
    if (total <= this.opts.maxBytes) return;
    const victims: Entry[] = [];
    for (const sha of this.lruOrder()) {
      if (total <= this.opts.maxBytes) break;
      if (this.holders.get(sha)?.size) continue;
      const e = this.entries.get(sha)!;
      victims.push(e);
      total -= e.sizeBytes;
    }
    if (total > this.opts.maxBytes) {
      this.opts.logger?.warn({ cachedBytes: this.cachedBytes(), maxBytes: this.opts.maxBytes }, 'image cache over its cap: the rest is in use');
    }
    await Promise.all(victims.map((e) => this.remove(e).catch((err) => this.opts.logger?.warn({ err, sha256: e.sha256 }, 'cannot evict an image'))));
  }

  private remove(e: Entry): Promise<void> {
    this.entries.delete(e.sha256);
    const p = (async () => {
      try {
        await this.opts.pool.deleteVolume(markerName(e.sha256));
      } catch (err) {
        this.entries.set(e.sha256, e); // still complete: keep it
        throw err;
      }
      this.counters.evictions++;
      this.counters.evictedBytes += e.sizeBytes;
      this.opts.logger?.info({ sha256: e.sha256, bytes: e.sizeBytes }, 'image evicted');
      // Without its marker the data volume no longer counts; a failure here is swept at start.
      await this.opts.pool.deleteVolume(e.volume).catch((err) => this.opts.logger?.warn({ err, volume: e.volume }, 'cannot delete an evicted image volume'));
    })().finally(() => this.evicting.delete(e.sha256));
    this.evicting.set(e.sha256, p);
    return p;
  }

  /** The format of an image found at start, from its header; undefined when its file is absent (test driver: no bytes). */
  private async formatOnDisk(e: Entry): Promise<'raw' | 'qcow2' | undefined> {
    let fh;
    try {
      fh = await open(e.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const head = new Uint8Array(IMAGE_HEADER_BYTES);
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      const found = inspectImageHeader(head.subarray(0, bytesRead));
      if (found.problem) throw new ImageFormatError(e.sha256, found.problem);
      e.virtualSize = found.virtualSize;
      return found.format;
    } finally {
      await fh.close();
    }
  }

  private cachedBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.sizeBytes;
    return n;
  }

  private touch(sha256: string): void {
    this.lastUsed.set(sha256, ++this.tick);
  }

  /** Returns true when the holder was added (not already there). */
  private hold(sha256: string, holder: string): boolean {
    let s = this.holders.get(sha256);
    if (!s) this.holders.set(sha256, (s = new Set()));
    if (s.has(holder)) return false;
    s.add(holder);
    return true;
  }

  /** Returns true when the digest has no holder left. */
  private unhold(sha256: string, holder: string): boolean {
    const s = this.holders.get(sha256);
    if (!s?.delete(holder)) return false;
    if (s.size) return false;
    this.holders.delete(sha256);
    return true;
  }
}
