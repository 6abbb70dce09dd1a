/**
 * The one access rule of the cloud controller: which rows of a tenant resource a caller may see
 * and which it may change. Every repository narrows its queries with `scopeSql` and every
 * in-memory check (fakes, rows already read) uses `accessOf`; both come from the same table of
 * cases below and are tested against each other exhaustively (access-scope.spec.ts and the
 * real-PostgreSQL test in test/persistence/access-scope.e2e-spec.ts).
 *
 * - The admin account sees and changes every row.
 * - The owner sees and changes its rows.
 * - A shared resource (images: public or a launch permission; snapshots: public or a
 *   create-volume permission) is *seen* by everyone it is shared with, never changed.
 * - Nobody else sees the row at all: EC2 answers NotFound, as if it did not exist.
 */

/** Who is calling: `ctx.account` of the Ec2Context. */
export interface Caller {
  id: string;
  isAdmin: boolean;
}

/** What the caller has of one row: `owner` (may change it), `shared` (may only see it), `none`. */
export type Access = 'owner' | 'shared' | 'none';

/** How a kind of resource may be shared. Unshared kinds (instances, volumes, …) omit it. */
export interface Sharing {
  /** The row's own column saying it is public to every account (e.g. `is_public`). */
  publicColumn: string;
  /** The table of grants (`image_launch_permissions`) with the resource and account columns. */
  grants: { table: string; resourceColumn: string; accountColumn: string };
}

export const IMAGE_SHARING: Sharing = {
  publicColumn: 'is_public',
  grants: { table: 'image_launch_permissions', resourceColumn: 'image_id', accountColumn: 'account_id' },
};

export const SNAPSHOT_SHARING: Sharing = {
  publicColumn: 'is_public',
  grants: { table: 'snapshot_volume_permissions', resourceColumn: 'snapshot_id', accountColumn: 'account_id' },
};

/** A row as the rule reads it: its owner, and for shared kinds whether it is public / granted. */
export interface ScopedRow {
  accountId: string;
  isPublic?: boolean;
  /** Whether the caller holds a grant on it (launch / create-volume permission). */
  grantedToCaller?: boolean;
}

/** The rule, on a row already read. */
export function accessOf(caller: Caller, row: ScopedRow): Access {
  if (caller.isAdmin || row.accountId === caller.id) return 'owner';
  if (row.isPublic || row.grantedToCaller) return 'shared';
  return 'none';
}

/** Whether `access` is enough to see (`see`) or to change (`change`) a row. */
export function allows(access: Access, want: 'see' | 'change'): boolean {
  return want === 'see' ? access !== 'none' : access === 'owner';
}

/**
 * The rule as a SQL condition over the row aliased `alias`, with named parameters
 * (TypeORM's `:name` style, prefixed with `prefix` so several scopes can share a query).
 * `want: 'see'` admits shared rows, `'change'` the owner's only. The admin gets `TRUE`.
 */
export function scopeSql(caller: Caller, alias: string, want: 'see' | 'change', sharing?: Sharing, prefix = 'scope'): { where: string; params: Record<string, string> } {
  if (caller.isAdmin) return { where: 'TRUE', params: {} };
  const p = `${prefix}Account`;
  const own = `${alias}.account_id = :${p}`;
  if (want === 'change' || !sharing) return { where: own, params: { [p]: caller.id } };
  const g = sharing.grants;
  const granted = `EXISTS (SELECT 1 FROM ${g.table} ${prefix}_g WHERE ${prefix}_g.${g.resourceColumn} = ${alias}.id AND ${prefix}_g.${g.accountColumn} = :${p})`;
  return { where: `(${own} OR ${alias}.${sharing.publicColumn} OR ${granted})`, params: { [p]: caller.id } };
}

/**
 * The rule as positional SQL (`$n`) for repositories written in plain `query()` calls: the
 * condition and the parameters to append, numbered from `firstParam`.
 */
export function scopeSqlPositional(caller: Caller, alias: string, want: 'see' | 'change', firstParam: number, sharing?: Sharing): { where: string; params: string[] } {
  const named = scopeSql(caller, alias, want, sharing, 'scope');
  const values = Object.values(named.params);
  return { where: named.where.replaceAll(':scopeAccount', `$${firstParam}`), params: values };
}
