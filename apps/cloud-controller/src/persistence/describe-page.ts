import { capMaxResults, Ec2Error, keysetStart, keysetToken, paginate, type Filter } from '@koala/ec2-query';
import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { keysetPage, pushFilters, type FilterColumns } from './find-visible.js';

/** What a Describe* call asks for: named ids, or filters and a page. */
export interface DescribeQuery {
  ids: readonly string[];
  filters: readonly Filter[];
  maxResults?: number;
  nextToken?: string;
}

/** How one Describe* action reads its rows (alias `alias`) and builds and filters its views `V`. */
export interface DescribePaging<T extends ObjectLiteral & { id: string }, V> {
  /** The token family (the action's name): a token of one action is refused by another. */
  scope: string;
  /** Bounds of MaxResults (paginate()'s defaults: 5 and 1000). */
  min?: number;
  max?: number;
  /** MaxResults above `max` gives a page of `max` instead of an error (as EC2 for DescribeVolumes and DescribeSnapshots). */
  capAboveMax?: boolean;
  /** The parameter of the named ids, for the error when they come with MaxResults (`instancesSet`). */
  idsParameter: string;
  /** Named ids: the rows the caller may see, sorted by id; every id well-formed and visible, or the EC2 error. */
  named: (ids: readonly string[]) => Promise<T[]>;
  /** A fresh query (alias `alias`) of every row the caller may see, on each call. SQL may narrow it further. */
  query: () => SelectQueryBuilder<T>;
  alias: string;
  /** Checks the filter names (`InvalidParameterValue`); runs before MaxResults and the token are checked. */
  validate: () => void;
  /** The filters SQL can decide (see pushFilters), and the row's id expression for the tag filters (none: tags stay in memory). */
  columns: FilterColumns;
  tagsOf?: string;
  /** The views of some rows (given in id order), keeping in order those that match every filter: the in-memory check, always applied. */
  keep: (rows: T[]) => Promise<V[]> | V[];
  /** The id of a view's row: the key of the NextToken. */
  keyOf: (v: V) => string;
}

/**
 * One page of a Describe* action, in id order; shared by DescribeInstances, DescribeInstanceStatus,
 * DescribeVolumes, DescribeVolumeStatus and DescribeSnapshots.
 *
 * Named ids (with MaxResults: `InvalidParameterCombination`): `named` reads those few rows, `keep`
 * filters them, paginate() pages them (a NextToken is still honoured). Otherwise the filter names
 * are checked (`validate`), then MaxResults and the token (keysetStart), and a keyset walk in SQL
 * (`id >` the token's key, `ORDER BY id`) reads `query()`'s rows in chunks with the filters SQL can
 * decide pushed into the query as a pre-selection; each chunk goes through `keep`, so an answer
 * never depends on what SQL decided, only the number of chunks does. Tokens are paginate()'s.
 */
export async function describePage<T extends ObjectLiteral & { id: string }, V>(q: DescribeQuery, how: DescribePaging<T, V>): Promise<{ page: V[]; nextToken?: string }> {
  const bounds = { min: how.min ?? 5, max: how.max ?? 1000 };
  if (how.capAboveMax) q = { ...q, maxResults: capMaxResults(q.maxResults, bounds.max) };
  if (q.ids.length && q.maxResults !== undefined) throw Ec2Error.invalidParameterCombination(`The parameter ${how.idsParameter} cannot be used with the parameter maxResults`);
  if (q.ids.length) {
    const matching = await how.keep(await how.named(q.ids));
    return paginate(matching, { maxResults: q.maxResults, nextToken: q.nextToken, ...bounds, keyOf: how.keyOf, scope: how.scope });
  }
  how.validate();
  const { after } = keysetStart({ maxResults: q.maxResults, nextToken: q.nextToken, ...bounds, scope: how.scope });
  const query = () => {
    const qb = how.query();
    pushFilters(qb, q.filters, how.columns, how.tagsOf);
    return qb;
  };
  const { page, more } = await keysetPage(query, how.alias, { after, maxResults: q.maxResults, keep: how.keep });
  return { page, nextToken: more ? keysetToken(how.scope, how.keyOf(page[page.length - 1]!)) : undefined };
}
