import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { InstanceState } from '@koala/contracts';

export type ShutdownBehavior = 'stop' | 'terminate';

/** One RunInstances call: the instances it launched share it. */
@Entity('reservations')
export class ReservationEntity {
  /** `r-` + 17 hex. */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  id: string;

  @Column({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;

  @Column({ name: 'requester_id', type: 'varchar', length: 12 })
  requesterId: string;

  /** ClientToken: unique per account (idempotent RunInstances). */
  @Column({ name: 'client_token', type: 'varchar', length: 64, nullable: true })
  clientToken: string | null;

  /** Digest of the request's parameters: the same token with other parameters is a mismatch. */
  @Column({ name: 'params_hash', type: 'varchar', length: 64 })
  paramsHash: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}

/** An instance, as the CLC (the source of truth) knows it. */
@Entity('instances')
export class InstanceEntity {
  /** `i-` + 17 hex. */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  id: string;

  @Column({ name: 'reservation_id', type: 'varchar', length: 32 })
  reservationId: string;

  @Column({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;

  @Column({ name: 'image_id', type: 'varchar', length: 32 })
  imageId: string;

  @Column({ name: 'kernel_id', type: 'varchar', length: 32, nullable: true })
  kernelId: string | null;

  @Column({ name: 'ramdisk_id', type: 'varchar', length: 32, nullable: true })
  ramdiskId: string | null;

  @Column({ name: 'instance_type', type: 'varchar', length: 32 })
  instanceType: string;

  @Column({ type: 'varchar', length: 16 })
  state: InstanceState;

  @Column({ name: 'state_code', type: 'integer' })
  stateCode: number;

  @Column({ name: 'state_reason_code', type: 'varchar', length: 64, nullable: true })
  stateReasonCode: string | null;

  @Column({ name: 'state_reason_message', type: 'varchar', length: 255, nullable: true })
  stateReasonMessage: string | null;

  /** EC2's `reason`, e.g. `User initiated (2026-11-26 03:24:00 GMT)`; '' when none. */
  @Column({ name: 'state_transition_reason', type: 'varchar', length: 255, default: '' })
  stateTransitionReason: string;

  /** When the state last changed (CLC clock, or the event's time): older events are stale. */
  @Column({ name: 'state_changed_at', type: 'timestamptz' })
  stateChangedAt: Date;

  @Column({ type: 'varchar', length: 63 })
  zone: string;

  /** The node running it; null until the CC placed it. */
  @Column({ type: 'varchar', length: 63, nullable: true })
  node: string | null;

  @Column({ name: 'key_name', type: 'varchar', length: 255, nullable: true })
  keyName: string | null;

  /** base64, as given (≤ 16 KiB decoded). */
  @Column({ name: 'user_data', type: 'text', nullable: true })
  userData: string | null;

  @Column({ name: 'launch_index', type: 'integer' })
  launchIndex: number;

  @Column({ name: 'launch_time', type: 'timestamptz' })
  launchTime: Date;

  @Column({ name: 'client_token', type: 'varchar', length: 64, nullable: true })
  clientToken: string | null;

  @Column({ name: 'disable_api_termination', type: 'boolean', default: false })
  disableApiTermination: boolean;

  @Column({ name: 'shutdown_behavior', type: 'varchar', length: 16, default: 'stop' })
  shutdownBehavior: ShutdownBehavior;

  @Column({ type: 'varchar', length: 16 })
  architecture: string;

  @Column({ name: 'root_device_name', type: 'varchar', length: 64 })
  rootDeviceName: string;

  @Column({ name: 'root_device_type', type: 'varchar', length: 16 })
  rootDeviceType: string;

  @Column({ name: 'virtualization_type', type: 'varchar', length: 16 })
  virtualizationType: string;

  @Column({ type: 'varchar', length: 16, nullable: true })
  platform: string | null;

  /** `ip-a-b-c-d.<KOALA_DNS_SUFFIX>` from the private IP given at launch. */
  @Column({ name: 'private_dns_name', type: 'varchar', length: 255 })
  privateDnsName: string;

  @Column({ name: 'monitoring_state', type: 'varchar', length: 16, default: 'disabled' })
  monitoringState: string;

  @Column({ name: 'terminated_at', type: 'timestamptz', nullable: true })
  terminatedAt: Date | null;

  /** Last time a node reported the instance's domain. */
  @Column({ name: 'last_seen_at', type: 'timestamptz', nullable: true })
  lastSeenAt: Date | null;

  /** The instance's node is down (DescribeInstanceStatus: impaired). */
  @Column({ type: 'boolean', default: false })
  impaired: boolean;

  @Column({ name: 'impaired_since', type: 'timestamptz', nullable: true })
  impairedSince: Date | null;

  /** EC2 MetadataOptions (RunInstances, ModifyInstanceMetadataOptions). */
  @Column({ name: 'metadata_http_tokens', type: 'varchar', length: 8, default: 'optional' })
  metadataHttpTokens: 'optional' | 'required';

  @Column({ name: 'metadata_hop_limit', type: 'integer', default: 1 })
  metadataHopLimit: number;

  @Column({ name: 'metadata_http_endpoint', type: 'varchar', length: 8, default: 'enabled' })
  metadataHttpEndpoint: 'enabled' | 'disabled';

  /** Launched with a public address: it gets a new one whenever an elastic address leaves it (EC2). */
  @Column({ name: 'associate_public_ip', type: 'boolean', default: false })
  associatePublicIp: boolean;
}

/** The security groups of an instance, in the order given. */
@Entity('instance_security_groups')
export class InstanceSecurityGroupEntity {
  @PrimaryColumn({ name: 'instance_id', type: 'varchar', length: 32 })
  instanceId: string;

  @PrimaryColumn({ name: 'group_id', type: 'varchar', length: 32 })
  groupId: string;

  @Column({ type: 'integer' })
  position: number;
}
