/**
 * Transactions for in-memory fake repositories: a fake `Tx` collects undo steps, and
 * `fakeTransaction` runs them (newest first) when the work throws, so fakes of several folders
 * written in one unit of work roll back together, as PostgreSQL would.
 */
import type { EntityManager } from 'typeorm';

interface FakeTx {
  readonly fake: true;
  readonly undo: Array<() => void>;
}

export async function fakeTransaction<T>(work: (tx: EntityManager) => Promise<T>): Promise<T> {
  const tx: FakeTx = { fake: true, undo: [] };
  try {
    return await work(tx as unknown as EntityManager);
  } catch (e) {
    for (const step of tx.undo.reverse()) step();
    throw e;
  }
}

/** Records how to undo a write made in `tx` (nothing to record outside a transaction). */
export function onRollback(tx: EntityManager | undefined, undo: () => void): void {
  const t = tx as unknown as FakeTx | undefined;
  if (t?.fake) t.undo.push(undo);
}

/** Removes the elements matching `pick` from `rows` in place, undone on rollback of `tx`. */
export function removeWhere<T>(tx: EntityManager | undefined, rows: T[], pick: (r: T) => boolean): T[] {
  const removed = rows.filter(pick);
  if (!removed.length) return removed;
  const before = [...rows];
  rows.splice(0, rows.length, ...rows.filter((r) => !pick(r)));
  onRollback(tx, () => rows.splice(0, rows.length, ...before));
  return removed;
}
