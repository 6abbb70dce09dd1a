import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Key pairs: the public key only (private keys are returned once and never stored). */
export class KeyPairs1764131100000 implements MigrationInterface {
  name = 'KeyPairs1764131100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE key_pairs (
        id           varchar(32)  PRIMARY KEY,
        account_id   varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name         varchar(255) NOT NULL,
        key_type     varchar(16)  NOT NULL,
        fingerprint  varchar(128) NOT NULL,
        public_key   text         NOT NULL,
        created_at   timestamptz  NOT NULL,
        CONSTRAINT key_pairs_account_name_key UNIQUE (account_id, name)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE key_pairs');
  }
}
