import type { MigrationInterface, QueryRunner } from 'typeorm';

/** RegisterImage shows ImageLocation without credentials/query; the full URL is kept sealed until the fetch ends. */
export class ImageFetchLocation1764136000000 implements MigrationInterface {
  name = 'ImageFetchLocation1764136000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE images ADD COLUMN fetch_location text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE images DROP COLUMN fetch_location`);
  }
}
