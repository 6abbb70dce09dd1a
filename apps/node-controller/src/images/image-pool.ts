/**
 * The storage side of the NC image cache: a pool of volumes named by digest. The cache logic
 * (LibvirtImageCache) talks to it only through this port, so it is unit-tested with a fake;
 * LibvirtImagePool is the real one (a libvirt `dir` pool).
 *
 * Crash-safety scheme (libvirt cannot rename a volume, so no "write then rename"):
 *   - the bytes of image D are streamed into the volume `D` (raw, exactly sizeBytes long);
 *   - only after the stream finished AND sha256 + length matched is the empty marker volume
 *     `D.verified` created;
 *   - an image counts as cached only when both `D` and `D.verified` exist. Eviction deletes the
 *     marker first, then the data volume.
 * A crash at any point therefore leaves at worst a `D` without marker (or a marker without
 * data), which `open()` sweeps away at the next start, together with any `*.partial`/`*.tmp`
 * leftovers of our naming. Volumes whose names do not start with a 64-hex digest are never
 * touched (the pool may be shared with other volumes).
 */

/** A verified image found in the pool when it is opened. */
export interface PoolImage {
  sha256: string;
  /** Data volume name (= sha256). */
  volume: string;
  path: string;
  sizeBytes: number;
}

/** How writeVolume stored the bytes. */
export type WriteOutcome =
  /** Bytes written through a libvirt stream upload. */
  | 'written'
  /**
   * The driver cannot upload (libvirt's test driver): `source` was NOT consumed; the volume
   * exists with the right capacity but its content is simulated.
   */
  | 'unsupported';

export interface ImagePool {
  /** libvirt pool name. */
  readonly name: string;
  /**
   * Ensures the pool exists and is active (defines/builds/starts/autostarts it if missing),
   * refreshes it, removes leftovers of interrupted downloads, and lists the verified images.
   */
  open(): Promise<PoolImage[]>;
  /** Creates an empty data volume (replacing a stale one of that name); returns its path. */
  createVolume(name: string, sizeBytes: number): Promise<string>;
  /** Streams `source` into the volume; see WriteOutcome. */
  writeVolume(name: string, source: AsyncIterable<Uint8Array>): Promise<WriteOutcome>;
  /** Creates the (empty) verified marker of a data volume. */
  markVerified(sha256: string): Promise<void>;
  /** Deletes a volume; a missing volume is not an error. */
  deleteVolume(name: string): Promise<void>;
}

export const SHA256_RE = /^[0-9a-f]{64}$/;
export const VERIFIED_SUFFIX = '.verified';
export const markerName = (sha256: string): string => `${sha256}${VERIFIED_SUFFIX}`;

/** Classifies a volume name of the cache pool. */
export function classifyVolume(name: string): { kind: 'data' | 'marker' | 'leftover'; sha256: string } | { kind: 'foreign' } {
  const sha256 = name.slice(0, 64);
  if (!SHA256_RE.test(sha256)) return { kind: 'foreign' };
  if (name.length === 64) return { kind: 'data', sha256 };
  if (name === markerName(sha256)) return { kind: 'marker', sha256 };
  if (name[64] === '.') return { kind: 'leftover', sha256 }; // <sha>.partial, <sha>.tmp, ...
  return { kind: 'foreign' };
}

/**
 * Decides, from the names in the pool, which volumes form complete images and which are
 * leftovers to delete (data without marker, marker without data, `<sha>.*` staging names).
 */
export function planSweep(names: string[]): { complete: string[]; remove: string[] } {
  const data = new Set<string>();
  const markers = new Set<string>();
  const remove: string[] = [];
  for (const n of names) {
    const c = classifyVolume(n);
    if (c.kind === 'data') data.add(c.sha256);
    else if (c.kind === 'marker') markers.add(c.sha256);
    else if (c.kind === 'leftover') remove.push(n);
  }
  const complete = [...data].filter((d) => markers.has(d)).sort();
  for (const d of data) if (!markers.has(d)) remove.push(d);
  for (const m of markers) if (!data.has(m)) remove.push(markerName(m));
  return { complete, remove: remove.sort() };
}
