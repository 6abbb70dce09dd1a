import { DataSource } from 'typeorm';
import { ENTITIES } from './entities.js';
import { MIGRATIONS } from './migrations/index.js';

/** The CLC's DataSource. Schema changes only through migrations, never `synchronize`. */
export function createDataSource(databaseUrl: string): DataSource {
  return new DataSource({
    type: 'postgres',
    url: databaseUrl,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'koala_migrations',
    synchronize: false,
    migrationsRun: false,
    extra: { max: 20 },
  });
}

/** Brings the schema up to date; returns the names of the migrations applied. */
export async function migrateUp(ds: DataSource): Promise<string[]> {
  const applied = await ds.runMigrations({ transaction: 'each' });
  return applied.map((m) => m.name);
}

/** Reverts the most recent migration (operators: `koala migrate down`). */
export async function migrateDown(ds: DataSource): Promise<void> {
  await ds.undoLastMigration({ transaction: 'each' });
}

/** Names of migrations not yet applied. */
export async function pendingMigrations(ds: DataSource): Promise<string[]> {
  const rows: { name: string }[] = await ds.query('SELECT name FROM koala_migrations').catch(() => []);
  const done = new Set(rows.map((r) => r.name));
  return ds.migrations.map((m) => m.name ?? m.constructor.name).filter((n) => !done.has(n));
}
