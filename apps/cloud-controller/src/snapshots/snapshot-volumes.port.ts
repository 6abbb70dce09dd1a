/**
 * Ports of snapshots to what the volumes folder owns: the volume a snapshot is taken of, and the
 * zone's storage controller. Bound in the volumes module (to VolumesRepository and the zone
 * storage gateway); the snapshots folder never imports volumes, which imports it.
 */

/** A volume as CreateSnapshot reads it. */
export interface SnapshotVolume {
  id: string;
  accountId: string;
  state: string;
  sizeGiB: number;
  zone: string;
}

export interface SnapshotVolumes {
  /** The volume (any account's, deleted ones too), or undefined. */
  find(id: string): Promise<SnapshotVolume | undefined>;
}
export const SNAPSHOT_VOLUMES = Symbol('SNAPSHOT_VOLUMES');

/**
 * What snapshots ask of the SC of a zone. Errors are the bus's: `BusRemoteError` (the SC refused
 * with an EC2 code) or `BusUnavailableError` (nobody answered in time).
 */
export interface SnapshotStorage {
  createSnapshot(zone: string, r: { snapshotId: string; volumeId: string }): Promise<void>;
  copySnapshot(zone: string, r: { sourceSnapshotId: string; snapshotId: string }): Promise<void>;
  deleteSnapshot(zone: string, snapshotId: string): Promise<void>;
}
export const SNAPSHOT_STORAGE = Symbol('SNAPSHOT_STORAGE');
