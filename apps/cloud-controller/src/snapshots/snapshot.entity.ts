import { Column, Entity, PrimaryColumn } from 'typeorm';

export type SnapshotState = 'pending' | 'completed' | 'error';

/** A snapshot, kept by the SC of `zone` (where its volume was). */
@Entity('snapshots')
export class SnapshotEntity {
  /** `snap-` + 17 hex. */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  id: string;

  /** The owner. */
  @Column({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;

  @Column({ name: 'volume_id', type: 'varchar', length: 32 })
  volumeId: string;

  @Column({ name: 'volume_size_gib', type: 'integer' })
  volumeSizeGiB: number;

  /** The zone whose SC stores the snapshot. */
  @Column({ type: 'varchar', length: 63 })
  zone: string;

  @Column({ type: 'varchar', length: 16 })
  state: SnapshotState;

  /** 0..100 (EC2 shows `NN%`). */
  @Column({ type: 'integer', default: 0 })
  progress: number;

  @Column({ name: 'state_reason_code', type: 'varchar', length: 64, nullable: true })
  stateReasonCode: string | null;

  @Column({ name: 'state_reason_message', type: 'varchar', length: 512, nullable: true })
  stateReasonMessage: string | null;

  @Column({ name: 'start_time', type: 'timestamptz' })
  startTime: Date;

  @Column({ type: 'varchar', length: 255, default: '' })
  description: string;

  /** Anyone may create volumes from it (createVolumePermission group `all`). */
  @Column({ name: 'is_public', type: 'boolean', default: false })
  isPublic: boolean;

  /** CopySnapshot: the snapshot this one was copied from. */
  @Column({ name: 'source_snapshot_id', type: 'varchar', length: 32, nullable: true })
  sourceSnapshotId: string | null;
}

/** createVolumePermission: an account allowed to restore (create volumes from) a snapshot. */
@Entity('snapshot_volume_permissions')
export class SnapshotVolumePermissionEntity {
  @PrimaryColumn({ name: 'snapshot_id', type: 'varchar', length: 32 })
  snapshotId: string;

  @PrimaryColumn({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;
}
