import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Accounts1764129600000 implements MigrationInterface {
  name = 'Accounts1764129600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE accounts (
        id          varchar(12)  PRIMARY KEY,
        name        varchar(64)  NOT NULL UNIQUE,
        is_admin    boolean      NOT NULL DEFAULT false,
        created_at  timestamptz  NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE accounts');
  }
}
