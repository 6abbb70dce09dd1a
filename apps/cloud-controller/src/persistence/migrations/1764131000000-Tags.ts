import type { MigrationInterface, QueryRunner } from 'typeorm';

/** One tags table for every taggable resource (key pairs, groups, addresses; instances etc. later). */
export class Tags1764131000000 implements MigrationInterface {
  name = 'Tags1764131000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tags (
        account_id     varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        resource_id    varchar(64)  NOT NULL,
        resource_type  varchar(64)  NOT NULL,
        key            varchar(128) NOT NULL,
        value          varchar(256) NOT NULL DEFAULT '',
        PRIMARY KEY (resource_id, key)
      )`);
    await q.query('CREATE INDEX tags_account_idx ON tags (account_id, resource_id)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE tags');
  }
}
