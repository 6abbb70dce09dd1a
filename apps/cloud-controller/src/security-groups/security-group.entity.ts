import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A security group of one account; (account, name) is unique. */
@Entity('security_groups')
export class SecurityGroupEntity {
  /** `sg-` + 17 hex. */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  id: string;

  @Column({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;

  @Column({ type: 'varchar', length: 255 })
  name: string;

  @Column({ type: 'varchar', length: 255 })
  description: string;

  /** Accepted and echoed; Koala has one flat network per account, no VPC objects. */
  @Column({ name: 'vpc_id', type: 'varchar', length: 32, nullable: true })
  vpcId: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}

/**
 * One rule: protocol + port range + exactly one peer (IPv4 CIDR, IPv6 CIDR or group).
 * Ports are null for protocol -1 and for protocols without ports.
 */
@Entity('security_group_rules')
export class SecurityGroupRuleEntity {
  /** `sgr-` + 17 hex. */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  id: string;

  @Column({ name: 'group_id', type: 'varchar', length: 32 })
  groupId: string;

  @Column({ name: 'is_egress', type: 'boolean' })
  isEgress: boolean;

  /** `tcp`, `udp`, `icmp`, `icmpv6`, `-1` or a protocol number. */
  @Column({ name: 'ip_protocol', type: 'varchar', length: 8 })
  ipProtocol: string;

  @Column({ name: 'from_port', type: 'integer', nullable: true })
  fromPort: number | null;

  @Column({ name: 'to_port', type: 'integer', nullable: true })
  toPort: number | null;

  @Column({ name: 'cidr_ipv4', type: 'varchar', length: 18, nullable: true })
  cidrIpv4: string | null;

  @Column({ name: 'cidr_ipv6', type: 'varchar', length: 49, nullable: true })
  cidrIpv6: string | null;

  @Column({ name: 'referenced_group_id', type: 'varchar', length: 32, nullable: true })
  referencedGroupId: string | null;

  @Column({ name: 'referenced_user_id', type: 'varchar', length: 12, nullable: true })
  referencedUserId: string | null;

  @Column({ type: 'varchar', length: 255, nullable: true })
  description: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  /** Insertion order (database identity); rules are listed in the order they were authorized. */
  @Column({ type: 'bigint', insert: false, update: false, select: false })
  seq?: string;
}
