import type { MigrationInterface, QueryRunner } from 'typeorm';

export class AccessKeys1764130000000 implements MigrationInterface {
  name = 'AccessKeys1764130000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE access_keys (
        id                varchar(128) PRIMARY KEY,
        account_id        varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        secret_encrypted  text         NOT NULL,
        status            varchar(8)   NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Inactive')),
        created_at        timestamptz  NOT NULL DEFAULT now()
      )`);
    await q.query('CREATE INDEX access_keys_account_id ON access_keys (account_id)');
    await q.query(`ALTER TABLE accounts ADD CONSTRAINT accounts_id_12_digits CHECK (id ~ '^[0-9]{12}$')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE accounts DROP CONSTRAINT accounts_id_12_digits');
    await q.query('DROP TABLE access_keys');
  }
}
