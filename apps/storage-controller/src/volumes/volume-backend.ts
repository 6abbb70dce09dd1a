/**
 * Where volume (and snapshot) bytes live. Two implementations behind one interface, chosen by
 * KOALA_STORAGE_BACKEND: a libvirt `dir` pool of sparse raw files (default) and a libvirt
 * `logical` (LVM) pool for real hosts. Snapshots always live in a second `dir` pool.
 */

/** An error with an EC2-style code that survives the NATS hop (see NatsBus.handle). */
export class StorageError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}

/**
 * The backend (or the libvirt driver beneath it) cannot stream a volume sparsely; callers fall
 * back to `read`/`write`. Thrown before anything was read or written.
 */
export class SparseUnsupportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SparseUnsupportedError';
  }
}

/** A piece of a volume: bytes at `offset`, or a hole of `length` bytes that read as zeros. */
export type VolumeSegment = { kind: 'data'; offset: number; data: Buffer } | { kind: 'hole'; offset: number; length: number };

export interface BackendVolume {
  id: string;
  /** Backing store path (a file for `dir`, a block device for `logical`): what tgt exports. */
  path: string;
  capacityBytes: number;
  /** Bytes really allocated (0 for a fresh sparse file). */
  allocationBytes: number;
}

export interface PoolCapacity {
  /** Size of the pool's storage (file system or volume group). */
  capacityBytes: number;
  /** Free bytes in it. */
  availableBytes: number;
}

export interface VolumeBackend {
  /** `dir` | `logical` (reported in the heartbeat). */
  readonly kind: string;
  /**
   * Thin: a new volume takes no space and reads as zeros (sparse files), so copies may skip
   * zero ranges and the pool may be overcommitted. Thick (LVM): space is taken at create and a
   * new volume's content is undefined, so copies write every byte.
   */
  readonly thin: boolean;
  /** Defines/builds/starts the pool if needed and refreshes it. */
  open(): Promise<void>;
  /** Every volume of the pool (ids only for names this backend made). */
  list(): Promise<BackendVolume[]>;
  get(id: string): Promise<BackendVolume | undefined>;
  exists(id: string): Promise<boolean>;
  /** Creates an empty volume of `sizeBytes`; fails with `VolumeExists` if there is one. */
  create(id: string, sizeBytes: number): Promise<BackendVolume>;
  /** Deletes a volume; a missing one is not an error. */
  delete(id: string): Promise<void>;
  /** Backing store path of an existing volume (for tgt). */
  path(id: string): Promise<string>;
  capacity(): Promise<PoolCapacity>;
  read(id: string, offset: number, length: number): Promise<Buffer>;
  write(id: string, offset: number, data: Uint8Array): Promise<void>;
  /**
   * Optional sparse read: [offset, offset + length) as data segments and holes, in order and
   * without gaps (it may end early at the end of the volume). Breaking out of the iteration stops
   * the read. Throws SparseUnsupportedError, before the first segment, where the pool cannot.
   */
  readSegments?(id: string, offset: number, length: number): AsyncIterable<VolumeSegment>;
  /**
   * Optional one-pass write of [0, length) of a *new* volume from in-order segments without gaps;
   * returns the bytes written. Thin: holes are not written (a new volume reads zeros there).
   * Thick: holes are written as zeros. Throws SparseUnsupportedError, before anything was written,
   * where the pool cannot.
   */
  writeSegments?(id: string, segments: AsyncIterable<VolumeSegment>, length: number): Promise<number>;
}
