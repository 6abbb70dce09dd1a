import { Ec2Error, filterPatternToSql, isValidId, type Filter, type IdPrefix, type MalformedCode, type NotFoundCode } from '@koala/ec2-query';
import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { Caller } from './access-scope.js';

/** Narrows `qb` (alias `alias`) to the rows a caller may see: its own (the admin: every account's). */
export function ownedBy<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, alias: string, caller: Caller): SelectQueryBuilder<T> {
  if (!caller.isAdmin) qb.andWhere(`${alias}.account_id = :account`, { account: caller.id });
  return qb;
}

/**
 * The rows of one resource table a caller may see, sorted by id: its own (the admin: every
 * account's). Explicitly named ids must all be well-formed (`malformed`) and visible
 * (`notFound`, naming every missing one), as EC2 answers. `qb` (alias `alias`) may already
 * narrow the rows, e.g. to keep deleted ones only for a retention period.
 */
export async function findVisible<T extends ObjectLiteral & { id: string }>(
  qb: SelectQueryBuilder<T>,
  alias: string,
  caller: Caller,
  ids: readonly string[],
  codes: { prefix: IdPrefix; malformed: MalformedCode; notFound: NotFoundCode },
): Promise<T[]> {
  for (const id of ids) if (!isValidId(codes.prefix, id)) throw Ec2Error.malformed(codes.malformed, id);
  qb.orderBy(`${alias}.id`, 'ASC');
  ownedBy(qb, alias, caller);
  const wanted = [...new Set(ids)];
  if (wanted.length) qb.andWhere(`${alias}.id IN (:...ids)`, { ids: wanted });
  const rows = await qb.getMany();
  const found = new Set(rows.map((r) => r.id));
  const missing = wanted.filter((id) => !found.has(id));
  if (missing.length) throw Ec2Error.notFound(codes.notFound, missing);
  return rows;
}

/**
 * Filters that map onto columns: filter name → a SQL expression of the row's text value for that
 * filter (e.g. `i.state`, `CAST(i.state_code AS text)`), which must be exactly the value the
 * in-memory FilterSpec reads (NULL where it reads null/undefined).
 */
export type FilterColumns = Readonly<Record<string, string>>;

/**
 * Adds to `qb` the EC2 filters that can be decided in SQL: those named in `columns`, and with
 * `tagsOf` (the row's id expression, e.g. `i.id`) `tag:KEY`, `tag-key` and `tag-value` over the
 * `tags` table. Same semantics as applyFilters (values OR'ed, filters AND'ed, `*`/`?` wildcards,
 * case-sensitive, no values = no match). Other filters are ignored here, so the rows are a
 * pre-selection: apply every filter in memory afterwards as well. Filters past `maxValues` values
 * in all stay in memory only (a query has at most 65,535 parameters). Returns how many were pushed.
 */
export function pushFilters<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, filters: readonly Filter[], columns: FilterColumns, tagsOf?: string, maxValues = 1000): number {
  let pushed = 0;
  let values = 0;
  let n = 0;
  const param = () => `pf${n++}`;
  /** `expr` matches any of `values` (a WHERE condition), or `FALSE` when none can match. */
  const matches = (expr: string, values: readonly string[], params: Record<string, unknown>): string => {
    const equals: string[] = [];
    const likes: string[] = [];
    // PostgreSQL text never holds NUL (and refuses it as a parameter): such a value matches nothing.
    for (const v of values) {
      if (v.includes('\0')) continue;
      const s = filterPatternToSql(v);
      if ('equals' in s) equals.push(s.equals);
      else likes.push(s.like);
    }
    const terms: string[] = [];
    if (equals.length) {
      const p = param();
      params[p] = [...new Set(equals)];
      terms.push(`${expr} IN (:...${p})`);
    }
    for (const like of new Set(likes)) {
      const p = param();
      params[p] = like;
      terms.push(`${expr} LIKE :${p}`); // backslash is PostgreSQL's default LIKE escape
    }
    return terms.length ? `(${terms.join(' OR ')})` : 'FALSE';
  };
  for (const f of filters) {
    if (values + f.values.length > maxValues) continue;
    const params: Record<string, unknown> = {};
    let where: string | undefined;
    if (Object.prototype.hasOwnProperty.call(columns, f.name)) {
      where = matches(columns[f.name]!, f.values, params);
    } else if (tagsOf !== undefined && (f.name === 'tag-key' || f.name === 'tag-value' || (f.name.startsWith('tag:') && f.name.length > 4))) {
      const t = `pft${n++}`;
      let cond: string;
      if (f.name === 'tag-key') cond = matches(`${t}.key`, f.values, params);
      else if (f.name === 'tag-value') cond = matches(`${t}.value`, f.values, params);
      else {
        const key = f.name.slice(4);
        if (key.includes('\0')) cond = 'FALSE';
        else {
          const p = param();
          params[p] = key;
          cond = `${t}.key = :${p} AND ${matches(`${t}.value`, f.values, params)}`;
        }
      }
      where = `EXISTS (SELECT 1 FROM tags ${t} WHERE ${t}.resource_id = ${tagsOf} AND ${cond})`;
    }
    if (where === undefined) continue;
    qb.andWhere(where, params);
    values += f.values.length;
    pushed++;
  }
  return pushed;
}

/**
 * One page of a keyset walk over `query()`'s rows in id order (`alias.id > after`), read in
 * chunks: each chunk's rows go through `keep` (build the views, apply the in-memory filters), until
 * `maxResults` kept items are found with one more behind them, or the rows run out. Without
 * `maxResults`, every row after `after`. `more`: kept items follow the page (give a NextToken).
 * `query` must return a fresh query builder each time (visibility and pushed filters applied).
 */
export async function keysetPage<T extends ObjectLiteral & { id: string }, V>(
  query: () => SelectQueryBuilder<T>,
  alias: string,
  opts: { after?: string; maxResults?: number; keep: (rows: T[]) => Promise<V[]> | V[]; chunk?: number; maxChunk?: number },
): Promise<{ page: V[]; more: boolean }> {
  const want = opts.maxResults === undefined ? Infinity : opts.maxResults + 1;
  const maxChunk = opts.maxChunk ?? 1000;
  // The first chunk is exactly enough when SQL decided every filter; later ones grow.
  let chunk = opts.chunk ?? (opts.maxResults === undefined ? maxChunk : Math.min(opts.maxResults + 1, maxChunk));
  const kept: V[] = [];
  // A (forged) key with a NUL, which PostgreSQL refuses: no stored id holds one, so the ids after
  // `abc\0…` are exactly those after `abc`.
  let after = opts.after?.split('\0')[0];
  for (;;) {
    const qb = query();
    if (after !== undefined) qb.andWhere(`${alias}.id > :keysetAfter`, { keysetAfter: after });
    const rows = await qb.orderBy(`${alias}.id`, 'ASC').limit(chunk).getMany();
    if (rows.length) kept.push(...(await opts.keep(rows)));
    if (kept.length >= want || rows.length < chunk) break;
    after = rows[rows.length - 1]!.id;
    chunk = Math.min(chunk * 2, Math.max(maxChunk, chunk));
  }
  if (opts.maxResults === undefined) return { page: kept, more: false };
  return { page: kept.slice(0, opts.maxResults), more: kept.length > opts.maxResults };
}
