import type { ImageBlob } from '@koala/contracts';

/** An image present in the NC's cache pool, verified by sha256. */
export interface CachedImage {
  sha256: string;
  /** libvirt storage pool and volume name holding the bytes. */
  pool: string;
  volume: string;
  /** Absolute path of the volume (backing store of instance overlays, or kernel/initrd path). */
  path: string;
  format: 'raw' | 'qcow2';
  /** Bytes of the cached file (what was downloaded). */
  sizeBytes: number;
  /** The disk size a guest sees: a qcow2's from its header (a compact qcow2 is much smaller than its disk), else sizeBytes. */
  virtualSizeBytes: number;
}

/**
 * The NC's image cache (a libvirt `dir` pool): one download per digest even under concurrent
 * callers, sha256 verified before use, LRU eviction under a size cap, never evicting an image
 * in use. A crash mid-download never leaves a volume that later passes for a complete image.
 */
export interface ImageCache {
  /** Ensures the blob is cached and marks it in use by `holder` (an instance id) until released. */
  acquire(blob: ImageBlob, holder: string): Promise<CachedImage>;
  /** The holder no longer needs the image (instance terminated); it becomes evictable. */
  release(sha256: string, holder: string): void;
  /** Re-marks images in use after an NC restart (from the adopted domains' disks). */
  adopt(sha256: string, holder: string): void;
}
export const IMAGE_CACHE = Symbol('IMAGE_CACHE');
