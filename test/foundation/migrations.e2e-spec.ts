import pg from 'pg';
import { ensureDatabase } from '../../apps/cloud-controller/src/persistence/ensure-database.js';
import { createDataSource } from '../../apps/cloud-controller/src/database.js';
import { migrateDown, migrateUp, pendingMigrations } from '../../apps/cloud-controller/src/persistence/schema.js';
import { MIGRATIONS } from '../../apps/cloud-controller/src/persistence/migrations/index.js';

const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

async function tables(url: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename");
  await c.end();
  return rows.map((r) => r.tablename);
}

describe('migrations on a real PostgreSQL', () => {
  const name = `koala_test_mig_${process.pid}_${Date.now()}`;
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;

  afterAll(async () => {
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await c.end();
  });

  it('creates the database on first start, once', async () => {
    expect(await ensureDatabase(url)).toBe(true);
    expect(await ensureDatabase(url)).toBe(false);
  });

  it('applies every migration up, then reverts them all down, then up again', async () => {
    const ds = await createDataSource(url).initialize();
    try {
      expect(await pendingMigrations(ds)).toHaveLength(MIGRATIONS.length);
      const applied = await migrateUp(ds);
      expect(applied).toHaveLength(MIGRATIONS.length);
      expect(await pendingMigrations(ds)).toEqual([]);
      const up = await tables(url);
      expect(up).toEqual(expect.arrayContaining(['accounts', 'koala_migrations']));
      expect(await migrateUp(ds)).toEqual([]); // idempotent

      for (let i = 0; i < MIGRATIONS.length; i++) await migrateDown(ds);
      expect(await pendingMigrations(ds)).toHaveLength(MIGRATIONS.length);
      // Every down() really dropped what its up() created.
      expect(await tables(url)).toEqual(['koala_migrations']);

      expect(await migrateUp(ds)).toHaveLength(MIGRATIONS.length);
      expect(await tables(url)).toEqual(up);
    } finally {
      await ds.destroy();
    }
  });

  it('never synchronizes the schema from entities', () => {
    expect(createDataSource(url).options.synchronize).toBe(false);
  });
});
