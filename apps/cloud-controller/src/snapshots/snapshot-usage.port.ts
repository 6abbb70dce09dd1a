import { Injectable } from '@nestjs/common';
import type { Tx } from './snapshots.repository.js';

/**
 * Port: which registered images use a snapshot (DeleteSnapshot → InvalidSnapshot.InUse). Images
 * are registered from image files, not from snapshots, yet (the images table has no snapshot
 * column); when EBS-backed images arrive, the images module binds `SNAPSHOT_USAGE` to its own
 * implementation.
 */
export interface SnapshotUsage {
  /** Ids of the registered (not deregistered) images that use `snapshotId`. */
  imagesUsing(snapshotId: string, tx: Tx): Promise<string[]>;
}
export const SNAPSHOT_USAGE = Symbol('SNAPSHOT_USAGE');

/** The honest default while images cannot reference snapshots: no image uses any snapshot. */
@Injectable()
export class NoImagesSnapshotUsage implements SnapshotUsage {
  async imagesUsing(): Promise<string[]> {
    return [];
  }
}
