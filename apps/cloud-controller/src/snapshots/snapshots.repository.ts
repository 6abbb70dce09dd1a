/**
 * Every query of snapshots (the `snapshots` table and its createVolumePermission grants,
 * `snapshot_volume_permissions`), in TypeORM query builders over SnapshotEntity (the describe paging
 * of persistence/describe-page.ts is built on them). Visibility is the one access rule
 * (persistence/access-scope.ts, SNAPSHOT_SHARING: public or a create-volume permission).
 */
import { In, type DataSource, type EntityManager, type SelectQueryBuilder } from 'typeorm';
import { scopeSql, SNAPSHOT_SHARING, type Caller } from '../persistence/access-scope.js';
import { describePage, type DescribePaging, type DescribeQuery } from '../persistence/describe-page.js';
import type { FilterColumns } from '../persistence/find-visible.js';
import { Ec2Error } from '@koala/ec2-query';
import { SnapshotEntity, SnapshotVolumePermissionEntity } from './snapshot.entity.js';

/** A transaction (or the pool's manager). Services only pass it through. */
export type Tx = EntityManager;

/** A snapshot row (the columns of SnapshotEntity). */
export type SnapshotRow = SnapshotEntity;

/** A snapshot row as one caller reads it: with whether it holds a createVolumePermission on it. */
export type CallerSnapshot = SnapshotRow & { grantedToCaller: boolean };

export interface DescribeSnapshotsQuery extends DescribeQuery {
  ownerIds: readonly string[];
  restorableBy: readonly string[];
}

/** What DescribeSnapshots decides itself; the repository brings the rows (see describePage). */
export type SnapshotPaging<V> = Omit<DescribePaging<SnapshotRow, V>, 'named' | 'query' | 'alias' | 'columns' | 'tagsOf'>;

/**
 * The filters of DescribeSnapshots that SQL can decide (snapshots aliased `s`): each expression is
 * the text of exactly the value the filter reads in SNAPSHOT_FILTERS (snapshots.service.ts; NULL
 * where it reads null). DescribeSnapshots pushes these (and the tag filters) into its query as a
 * pre-selection and still applies every filter in memory. start-time stays in memory only.
 */
export const SNAPSHOT_FILTER_COLUMNS: FilterColumns = {
  'snapshot-id': 's.id',
  'volume-id': 's.volume_id',
  status: 's.state',
  'owner-id': 's.account_id',
  progress: "CAST(s.progress AS text) || '%'",
  'volume-size': 'CAST(s.volume_size_gib AS text)',
  description: 's.description',
  encrypted: "CAST('false' AS text)",
  'owner-alias': 'CAST(NULL AS text)',
};

/** DescribeSnapshots' selections (Owner / RestorableBy) in SQL: past this many values, in memory only (query parameter limit). */
const MAX_PUSHED_ACCOUNTS = 1000;
/** PostgreSQL text never holds NUL (and refuses it as a parameter); no account id holds one. */
const sqlSafe = (a: string) => !a.includes('\0');

/** The shape SnapshotsService depends on (SnapshotsRepository; an in-memory fake in the unit spec). */
export interface SnapshotsStore {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Owner account of each of `ids` that exists (tags). */
  owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>>;
  /** The snapshot as `callerId` reads it (none: grantedToCaller false), or undefined. */
  find(id: string, callerId?: string): Promise<CallerSnapshot | undefined>;
  /** The same, locked for a change until the transaction ends. */
  lock(tx: Tx, id: string, callerId?: string): Promise<CallerSnapshot | undefined>;
  /** The createVolumePermission accounts of each snapshot, sorted. */
  permissions(ids: readonly string[], tx?: Tx): Promise<Map<string, string[]>>;
  insert(tx: Tx, s: SnapshotRow): Promise<void>;
  remove(tx: Tx, id: string): Promise<void>;
  /** Applies `patch` to the row `match` selects; how many rows changed. */
  update(match: { id: string; state?: SnapshotRow['state'] }, patch: Partial<SnapshotRow>, tx?: Tx): Promise<number>;
  grant(tx: Tx, id: string, accounts: readonly string[]): Promise<void>;
  revoke(tx: Tx, id: string, accounts: readonly string[]): Promise<void>;
  revokeAll(tx: Tx, id: string): Promise<void>;
  /**
   * A page of DescribeSnapshots over the snapshots the caller may see that Owner and RestorableBy
   * select (in SQL as a pre-selection; the service still decides): describePage. Named ids must
   * all be visible (else InvalidSnapshot.NotFound naming the missing ones).
   */
  describe<V>(caller: Caller, q: DescribeSnapshotsQuery, how: SnapshotPaging<V>): Promise<{ page: V[]; nextToken?: string }>;
}

export class SnapshotsRepository implements SnapshotsStore {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.ds.transaction((em) => work(em));
  }

  async owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>> {
    if (!ids.length) return new Map();
    const rows = await tx.getRepository(SnapshotEntity).find({ where: { id: In([...ids]) }, select: { id: true, accountId: true } });
    return new Map(rows.map((r) => [r.id, r.accountId]));
  }

  async find(id: string, callerId?: string): Promise<CallerSnapshot | undefined> {
    const s = await this.ds.getRepository(SnapshotEntity).findOne({ where: { id } });
    return s ? this.asCaller(this.ds.manager, s, callerId) : undefined;
  }

  async lock(tx: Tx, id: string, callerId?: string): Promise<CallerSnapshot | undefined> {
    const s = await tx.getRepository(SnapshotEntity).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
    return s ? this.asCaller(tx, s, callerId) : undefined;
  }

  private async asCaller(tx: Tx, s: SnapshotEntity, callerId: string | undefined): Promise<CallerSnapshot> {
    if (callerId === undefined || callerId === s.accountId) return Object.assign(s, { grantedToCaller: false });
    const granted = await tx.getRepository(SnapshotVolumePermissionEntity).count({ where: { snapshotId: s.id, accountId: callerId } });
    return Object.assign(s, { grantedToCaller: granted > 0 });
  }

  async permissions(ids: readonly string[], tx: Tx = this.ds.manager): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(ids.map((id) => [id, []]));
    if (!ids.length) return out;
    const rows = await tx.getRepository(SnapshotVolumePermissionEntity).find({ where: { snapshotId: In([...ids]) }, order: { accountId: 'ASC' } });
    for (const r of rows) out.get(r.snapshotId)?.push(r.accountId);
    return out;
  }

  async insert(tx: Tx, s: SnapshotRow): Promise<void> {
    await tx.getRepository(SnapshotEntity).insert(s);
  }

  async remove(tx: Tx, id: string): Promise<void> {
    await tx.getRepository(SnapshotEntity).delete({ id });
  }

  async update(match: { id: string; state?: SnapshotRow['state'] }, patch: Partial<SnapshotRow>, tx: Tx = this.ds.manager): Promise<number> {
    return (await tx.getRepository(SnapshotEntity).update(match, patch)).affected ?? 0;
  }

  async grant(tx: Tx, id: string, accounts: readonly string[]): Promise<void> {
    for (const a of accounts) await tx.getRepository(SnapshotVolumePermissionEntity).upsert({ snapshotId: id, accountId: a }, ['snapshotId', 'accountId']);
  }

  async revoke(tx: Tx, id: string, accounts: readonly string[]): Promise<void> {
    if (accounts.length) await tx.getRepository(SnapshotVolumePermissionEntity).delete({ snapshotId: id, accountId: In([...accounts]) });
  }

  async revokeAll(tx: Tx, id: string): Promise<void> {
    await tx.getRepository(SnapshotVolumePermissionEntity).delete({ snapshotId: id });
  }

  async describe<V>(caller: Caller, q: DescribeSnapshotsQuery, how: SnapshotPaging<V>): Promise<{ page: V[]; nextToken?: string }> {
    return describePage(q, {
      ...how,
      named: async (ids) => {
        const wanted = [...new Set(ids)];
        const rows = await this.visible(caller).andWhere('s.id IN (:...ids)', { ids: wanted }).orderBy('s.id', 'ASC').getMany();
        const found = new Set(rows.map((r) => r.id));
        const missing = wanted.filter((id) => !found.has(id));
        if (missing.length) throw Ec2Error.notFound('InvalidSnapshot.NotFound', missing);
        return rows;
      },
      query: () => this.selected(caller, q),
      alias: 's',
      columns: SNAPSHOT_FILTER_COLUMNS,
      tagsOf: 's.id',
    });
  }

  /** The snapshots (alias `s`) the caller may see (the access rule). */
  private visible(caller: Caller): SelectQueryBuilder<SnapshotEntity> {
    const scope = scopeSql(caller, 's', 'see', SNAPSHOT_SHARING, 'snapViewer');
    return this.ds.getRepository(SnapshotEntity).createQueryBuilder('s').where(scope.where, scope.params);
  }

  /**
   * The snapshots the caller may see and Owner / RestorableBy select, in SQL (a pre-selection:
   * the service still decides). A snapshot restorable by an account is one it owns, a public one,
   * or one with a createVolumePermission for it.
   */
  private selected(caller: Caller, q: DescribeSnapshotsQuery): SelectQueryBuilder<SnapshotEntity> {
    const qb = this.visible(caller);
    const account = (a: string) => (a === 'self' ? caller.id : a);
    if (q.ownerIds.length && q.ownerIds.length <= MAX_PUSHED_ACCOUNTS) {
      const owners = [...new Set(q.ownerIds.map(account))].filter(sqlSafe);
      if (owners.length) qb.andWhere('s.account_id IN (:...snapOwners)', { snapOwners: owners });
      else qb.andWhere('FALSE');
    }
    if (q.restorableBy.length && q.restorableBy.length <= MAX_PUSHED_ACCOUNTS) {
      // `all`: public ones; an account: public ones too, its own and those shared with it.
      const accounts = [...new Set(q.restorableBy.filter((r) => r !== 'all').map(account))].filter(sqlSafe);
      const granted = 'EXISTS (SELECT 1 FROM snapshot_volume_permissions svp WHERE svp.snapshot_id = s.id AND svp.account_id IN (:...snapRestorers))';
      if (accounts.length) qb.andWhere(`(s.is_public OR s.account_id IN (:...snapRestorers) OR ${granted})`, { snapRestorers: accounts });
      else qb.andWhere('s.is_public');
    }
    return qb;
  }
}
