/**
 * Every query of tags: the `tags` table (one row per resource and key, with the resource's owner
 * and EC2 resource type), and `entityOwners`, the owner lookup resource kinds register for
 * CreateTags/DeleteTags.
 */
import { In, type DataSource, type EntityManager, type EntityTarget, type FindOptionsWhere, type ObjectLiteral } from 'typeorm';
import type { Tag } from '@koala/ec2-query';
import { scopeSqlPositional, type Caller } from '../persistence/access-scope.js';

/** A transaction (or the pool's manager). Services only pass it through to repositories. */
export type Tx = EntityManager;

export interface TagRow {
  resourceId: string;
  key: string;
  value: string;
  accountId: string;
  resourceType: string;
}

/** What TagsService needs from storage (the real one: TagsRepository; tests: a fake). `tx` omitted: the pool. */
export interface TagsStore {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Adds or overwrites `tags` on the resource; answers how many tags it has afterwards. */
  upsert(tx: Tx | undefined, row: { accountId: string; resourceType: string; resourceId: string }, tags: readonly Tag[]): Promise<number>;
  /** Deletes the resources' tags: every tag, those with `key`, or those with `key` and `value`. */
  delete(tx: Tx | undefined, resourceIds: readonly string[], match?: { key: string; value?: string }): Promise<void>;
  /** Every tag the caller may see (the one access rule on the tag's owner). */
  visible(caller: Caller): Promise<TagRow[]>;
  /** The tags of `resourceIds`, by key. */
  of(tx: Tx | undefined, resourceIds: readonly string[]): Promise<TagRow[]>;
}

const COLUMNS = `t.resource_id AS "resourceId", t.key, t.value, t.account_id AS "accountId", t.resource_type AS "resourceType"`;

export class TagsRepository implements TagsStore {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.ds.transaction((em) => work(em));
  }

  async upsert(tx: Tx | undefined, row: { accountId: string; resourceType: string; resourceId: string }, tags: readonly Tag[]): Promise<number> {
    const q = tx ?? this.ds.manager;
    const params: string[] = [row.accountId, row.resourceType, row.resourceId];
    const values = tags.map((t) => `($1, $2, $3, $${params.push(t.key)}, $${params.push(t.value)})`);
    await q.query(
      `INSERT INTO tags (account_id, resource_type, resource_id, key, value) VALUES ${values.join(', ')}
       ON CONFLICT (resource_id, key) DO UPDATE SET value = EXCLUDED.value`,
      params,
    );
    const rows: Array<{ n: number }> = await q.query('SELECT count(*)::int AS n FROM tags WHERE resource_id = $1', [row.resourceId]);
    return rows[0]!.n;
  }

  async delete(tx: Tx | undefined, resourceIds: readonly string[], match?: { key: string; value?: string }): Promise<void> {
    const q = tx ?? this.ds.manager;
    if (!match) await q.query('DELETE FROM tags WHERE resource_id = ANY($1)', [[...resourceIds]]);
    else if (match.value === undefined) await q.query('DELETE FROM tags WHERE resource_id = ANY($1) AND key = $2', [[...resourceIds], match.key]);
    else await q.query('DELETE FROM tags WHERE resource_id = ANY($1) AND key = $2 AND value = $3', [[...resourceIds], match.key, match.value]);
  }

  visible(caller: Caller): Promise<TagRow[]> {
    const scope = scopeSqlPositional(caller, 't', 'see', 1);
    return this.ds.query(`SELECT ${COLUMNS} FROM tags t WHERE ${scope.where}`, scope.params);
  }

  of(tx: Tx | undefined, resourceIds: readonly string[]): Promise<TagRow[]> {
    return (tx ?? this.ds.manager).query(`SELECT ${COLUMNS} FROM tags t WHERE t.resource_id = ANY($1) ORDER BY t.key ASC`, [[...resourceIds]]);
  }
}

/**
 * An owner lookup (`TaggableKind.owners`) for a resource table with an `accountId` column (every
 * Koala resource): the owner of each id that exists, keyed by `idColumn` (default `id`); `where`
 * excludes rows that no longer count (deleted volumes, deregistered images).
 */
export function entityOwners<T extends ObjectLiteral & { accountId: string }>(
  entity: EntityTarget<T>,
  opts: { idColumn?: keyof T & string; where?: FindOptionsWhere<T> } = {},
): (tx: Tx, ids: readonly string[]) => Promise<Map<string, string>> {
  const idColumn = opts.idColumn ?? 'id';
  return async (tx, ids) => {
    const where = { ...opts.where, [idColumn]: In([...ids]) } as FindOptionsWhere<T>;
    const rows = await tx.getRepository(entity).find({ where, select: { [idColumn]: true, accountId: true } as never });
    return new Map(rows.map((r) => [r[idColumn] as string, r.accountId]));
  };
}
