import type { DataSource } from 'typeorm';

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
