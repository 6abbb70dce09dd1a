import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Per-account quota overrides (`koala quota set`); quotas without a row use the KOALA_QUOTA_* defaults. */
export class AccountQuotas1764138000000 implements MigrationInterface {
  name = 'AccountQuotas1764138000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE account_quotas (
        account_id  varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name        varchar(32)  NOT NULL,
        value       bigint       NOT NULL CHECK (value >= 0),
        updated_at  timestamptz  NOT NULL,
        PRIMARY KEY (account_id, name)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE account_quotas');
  }
}
