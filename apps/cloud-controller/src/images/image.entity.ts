import { Column, Entity, PrimaryColumn } from 'typeorm';

export type ImageType = 'machine' | 'kernel' | 'ramdisk';
export type ImageState = 'pending' | 'available' | 'failed';
export type Architecture = 'x86_64' | 'i386' | 'arm64';
export type VirtualizationType = 'hvm' | 'paravirtual';

const bigintAsNumber = { to: (v?: number | null) => v, from: (v?: string | null) => (v === null || v === undefined ? v : Number(v)) };

/**
 * A registered image (`emi-` machine, `eki-` kernel, `eri-` ramdisk). Its bytes are one blob of
 * the image store (by sha256), known once the image is `available`. Deregistered rows stay
 * (instances keep naming their image) but are invisible to the API.
 */
@Entity('images')
export class ImageEntity {
  @PrimaryColumn({ type: 'varchar', length: 32 })
  id: string;

  @Column({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;

  @Column({ type: 'varchar', length: 128 })
  name: string;

  @Column({ type: 'varchar', length: 255, nullable: true })
  description: string | null;

  @Column({ type: 'varchar', length: 16 })
  state: ImageState;

  @Column({ name: 'state_reason_code', type: 'varchar', length: 64, nullable: true })
  stateReasonCode: string | null;

  @Column({ name: 'state_reason_message', type: 'text', nullable: true })
  stateReasonMessage: string | null;

  @Column({ name: 'image_type', type: 'varchar', length: 16 })
  imageType: ImageType;

  @Column({ type: 'varchar', length: 16 })
  architecture: Architecture;

  @Column({ name: 'virtualization_type', type: 'varchar', length: 16 })
  virtualizationType: VirtualizationType;

  @Column({ name: 'root_device_name', type: 'varchar', length: 64 })
  rootDeviceName: string;

  @Column({ name: 'root_device_type', type: 'varchar', length: 32 })
  rootDeviceType: 'instance-store';

  @Column({ name: 'kernel_id', type: 'varchar', length: 32, nullable: true })
  kernelId: string | null;

  @Column({ name: 'ramdisk_id', type: 'varchar', length: 32, nullable: true })
  ramdiskId: string | null;

  /** Extra kernel command line for paravirtual machine images (Koala-specific). */
  @Column({ name: 'kernel_args', type: 'text', nullable: true })
  kernelArgs: string | null;

  @Column({ name: 'blob_sha256', type: 'varchar', length: 64, nullable: true })
  blobSha256: string | null;

  @Column({ name: 'size_bytes', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  sizeBytes: number | null;

  @Column({ type: 'varchar', length: 8, nullable: true })
  format: 'raw' | 'qcow2' | null;

  @Column({ name: 'is_public', type: 'boolean', default: false })
  isPublic: boolean;

  /** The URL it was fetched from (RegisterImage) or `import:<file name>` (operator import). */
  @Column({ name: 'image_location', type: 'text' })
  imageLocation: string;

  /** While a RegisterImage fetch runs, the full URL sealed with the master key when it differs from imageLocation (credentials, query). */
  @Column({ name: 'fetch_location', type: 'text', nullable: true })
  fetchLocation: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'deregistered_at', type: 'timestamptz', nullable: true })
  deregisteredAt: Date | null;
}

/** An account allowed to launch a (private) image: ModifyImageAttribute LaunchPermission UserId. */
@Entity('image_launch_permissions')
export class ImageLaunchPermissionEntity {
  @PrimaryColumn({ name: 'image_id', type: 'varchar', length: 32 })
  imageId: string;

  /** Any 12-digit account id (as AWS, not necessarily an account of this cloud). */
  @PrimaryColumn({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;
}
