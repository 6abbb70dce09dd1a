import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Security groups and their rules (one row per protocol/port range/peer). */
export class SecurityGroups1764131200000 implements MigrationInterface {
  name = 'SecurityGroups1764131200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE security_groups (
        id           varchar(32)  PRIMARY KEY,
        account_id   varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name         varchar(255) NOT NULL,
        description  varchar(255) NOT NULL,
        vpc_id       varchar(32),
        created_at   timestamptz  NOT NULL,
        CONSTRAINT security_groups_account_name_key UNIQUE (account_id, name)
      )`);
    await q.query(`
      CREATE TABLE security_group_rules (
        id                   varchar(32)  PRIMARY KEY,
        group_id             varchar(32)  NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
        is_egress            boolean      NOT NULL,
        ip_protocol          varchar(8)   NOT NULL,
        from_port            integer,
        to_port              integer,
        cidr_ipv4            varchar(18),
        cidr_ipv6            varchar(49),
        referenced_group_id  varchar(32)  REFERENCES security_groups(id),
        referenced_user_id   varchar(12),
        description          varchar(255),
        created_at           timestamptz  NOT NULL,
        seq                  bigint       GENERATED ALWAYS AS IDENTITY
      )`);
    await q.query(`
      CREATE UNIQUE INDEX security_group_rules_identity ON security_group_rules (
        group_id, is_egress, ip_protocol, coalesce(from_port, -2), coalesce(to_port, -2),
        coalesce(cidr_ipv4, ''), coalesce(cidr_ipv6, ''), coalesce(referenced_group_id, ''))`);
    await q.query('CREATE INDEX security_group_rules_referenced_idx ON security_group_rules (referenced_group_id)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE security_group_rules');
    await q.query('DROP TABLE security_groups');
  }
}
