import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An elastic IP address allocated from KOALA_PUBLIC_IP_RANGE. */
@Entity('addresses')
export class AddressEntity {
  /** `eipalloc-` + 17 hex. */
  @PrimaryColumn({ name: 'allocation_id', type: 'varchar', length: 32 })
  allocationId: string;

  @Column({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;

  @Column({ name: 'public_ip', type: 'varchar', length: 15 })
  publicIp: string;

  @Column({ type: 'varchar', length: 8 })
  domain: 'vpc' | 'standard';

  /** `elastic` (AllocateAddress) or `launch` (an instance's public address from its launch: not shown, released at terminate). */
  @Column({ type: 'varchar', length: 8, default: 'elastic' })
  kind: 'elastic' | 'launch';

  /** The instance it is associated with (AssociateAddress, or the launch). */
  @Column({ name: 'instance_id', type: 'varchar', length: 32, nullable: true })
  instanceId: string | null;

  @Column({ name: 'association_id', type: 'varchar', length: 32, nullable: true })
  associationId: string | null;

  @Column({ name: 'private_ip_address', type: 'varchar', length: 15, nullable: true })
  privateIpAddress: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
