import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { VolumeState } from '@koala/contracts';

export type AttachState = 'attaching' | 'attached' | 'detaching';

/**
 * An EBS-style volume. A volume has at most one attachment at a time, so the attachment lives in
 * the `attach_*` columns (null when detached); a partial unique index keeps one volume per
 * (instance, device). The CHAP secret of the current attachment is stored encrypted with the
 * master key (`encryptSecret`) and never leaves the CLC except in exportVolume/listExports.
 */
@Entity('volumes')
export class VolumeEntity {
  /** `vol-` + 17 hex. */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  id: string;

  @Column({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;

  @Column({ type: 'varchar', length: 63 })
  zone: string;

  @Column({ name: 'size_gib', type: 'integer' })
  sizeGiB: number;

  @Column({ name: 'snapshot_id', type: 'varchar', length: 32, nullable: true })
  snapshotId: string | null;

  /** Metadata only (standard, gp2, gp3, io1, ...): every Koala volume is the same kind of disk. */
  @Column({ name: 'volume_type', type: 'varchar', length: 16 })
  volumeType: string;

  @Column({ type: 'integer', nullable: true })
  iops: number | null;

  @Column({ type: 'varchar', length: 16 })
  state: VolumeState;

  @Column({ name: 'state_reason_code', type: 'varchar', length: 64, nullable: true })
  stateReasonCode: string | null;

  @Column({ name: 'state_reason_message', type: 'varchar', length: 512, nullable: true })
  stateReasonMessage: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'deleted_at', type: 'timestamptz', nullable: true })
  deletedAt: Date | null;

  @Column({ name: 'client_token', type: 'varchar', length: 64, nullable: true })
  clientToken: string | null;

  /** Digest of the CreateVolume parameters (same ClientToken, other parameters → mismatch). */
  @Column({ name: 'params_hash', type: 'varchar', length: 64, nullable: true })
  paramsHash: string | null;

  @Column({ name: 'attach_instance_id', type: 'varchar', length: 32, nullable: true })
  attachInstanceId: string | null;

  /** The device name the user asked for (`/dev/sdf`). */
  @Column({ name: 'attach_device', type: 'varchar', length: 32, nullable: true })
  attachDevice: string | null;

  @Column({ name: 'attach_node', type: 'varchar', length: 63, nullable: true })
  attachNode: string | null;

  @Column({ name: 'attach_state', type: 'varchar', length: 16, nullable: true })
  attachState: AttachState | null;

  @Column({ name: 'attach_time', type: 'timestamptz', nullable: true })
  attachTime: Date | null;

  @Column({ name: 'delete_on_termination', type: 'boolean', default: false })
  deleteOnTermination: boolean;

  /** The device libvirt gave the guest (`vdb`). */
  @Column({ name: 'guest_device', type: 'varchar', length: 32, nullable: true })
  guestDevice: string | null;

  @Column({ name: 'chap_user', type: 'varchar', length: 64, nullable: true })
  chapUser: string | null;

  /** `encryptSecret(secret, masterKey)`; never logged, never in a response. */
  @Column({ name: 'chap_secret_enc', type: 'text', nullable: true })
  chapSecretEnc: string | null;
}
