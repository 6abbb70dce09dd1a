import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Elastic IP addresses; `public_ip` unique so two allocations can never share an address. */
export class Addresses1764131300000 implements MigrationInterface {
  name = 'Addresses1764131300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE addresses (
        allocation_id       varchar(32)  PRIMARY KEY,
        account_id          varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        public_ip           varchar(15)  NOT NULL,
        domain              varchar(8)   NOT NULL,
        instance_id         varchar(32),
        association_id      varchar(32),
        private_ip_address  varchar(15),
        created_at          timestamptz  NOT NULL,
        CONSTRAINT addresses_public_ip_key UNIQUE (public_ip),
        CONSTRAINT addresses_association_id_key UNIQUE (association_id)
      )`);
    await q.query('CREATE INDEX addresses_account_idx ON addresses (account_id)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE addresses');
  }
}
