import type { Caller } from '../persistence/access-scope.js';

/** What CreateVolume needs to know of the snapshot it restores. */
export interface RestorableSnapshot {
  id: string;
  state: string;
  zone: string;
  volumeSizeGiB: number;
}

/**
 * Port: the snapshots a caller may create volumes from (CreateVolume with SnapshotId). Bound to
 * SnapshotsService in the volumes module; the snapshots folder never imports volumes back.
 */
export interface RestorableSnapshots {
  /** The snapshot, if the caller may restore it; else InvalidSnapshotID.Malformed / InvalidSnapshot.NotFound. */
  restorable(caller: Caller, id: string): Promise<RestorableSnapshot>;
}
export const RESTORABLE_SNAPSHOTS = Symbol('RESTORABLE_SNAPSHOTS');
