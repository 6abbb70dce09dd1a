import { createHash } from 'node:crypto';
import { Ec2Error } from './errors.js';

/** Code used for malformed / foreign pagination tokens (EC2 answers `InvalidPaginationToken`). */
export const INVALID_TOKEN_CODE = 'InvalidPaginationToken';

export interface PaginateOptions<T> {
  /** `MaxResults`; undefined → everything in one page (as EC2 without MaxResults). */
  maxResults?: number;
  /** `NextToken` from the previous page. */
  nextToken?: string;
  /** Smallest MaxResults accepted (EC2 usually 5). */
  min?: number;
  /** Largest MaxResults accepted (EC2 usually 1000). */
  max?: number;
  /**
   * Optional stable key: when given, `items` MUST be sorted ascending by it (string order)
   * and the token records the last key seen, so deletions between pages do not skip items.
   * Without it the token records an offset.
   */
  keyOf?: (item: T) => string;
  /** Distinguishes token families (e.g. the action name) so a token of one list is refused by another. */
  scope?: string;
}

export interface Page<T> {
  page: T[];
  /** Present only when more items exist. */
  nextToken?: string;
}

function checksum(scope: string, payload: string): string {
  return createHash('sha256').update(`koala-page\0${scope}\0${payload}`).digest('base64url').slice(0, 12);
}

function encodeToken(scope: string, payload: string): string {
  return Buffer.from(`${payload}\n${checksum(scope, payload)}`, 'utf8').toString('base64url');
}

function decodeToken(scope: string, token: string): string {
  const bad = () => new Ec2Error(INVALID_TOKEN_CODE, `Invalid pagination token: ${token.slice(0, 64)}`);
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(token)) throw bad();
  const s = Buffer.from(token, 'base64url').toString('utf8');
  const nl = s.lastIndexOf('\n');
  if (nl < 0) throw bad();
  const payload = s.slice(0, nl);
  if (s.slice(nl + 1) !== checksum(scope, payload)) throw bad();
  return payload;
}

function checkMaxResults(maxResults: number | undefined, min: number, max: number): void {
  if (maxResults === undefined) return;
  if (!Number.isInteger(maxResults) || maxResults < min || maxResults > max) {
    throw new Ec2Error('InvalidParameterValue', `Value ( ${maxResults} ) for parameter maxResults is invalid. Parameter must be between ${min} and ${max}.`);
  }
}

/**
 * MaxResults above `max` as `max`. Some actions answer a larger MaxResults with a full page rather
 * than an error (DescribeVolumes: "if MaxResults is given a value larger than 500, only 500 items
 * are returned"), and aws-cli relies on it: `aws ec2 describe-volumes` and `describe-snapshots`
 * send MaxResults=1000 by default. Values below the minimum or not integers are left for the
 * usual check.
 */
export function capMaxResults(maxResults: number | undefined, max: number): number | undefined {
  return maxResults !== undefined && Number.isInteger(maxResults) && maxResults > max ? max : maxResults;
}

/** The payload of a token we issued for `scope`, or undefined when there is none. */
function tokenPayload(scope: string, nextToken: string | undefined): string | undefined {
  return nextToken === undefined || nextToken === '' ? undefined : decodeToken(scope, nextToken);
}

/**
 * Slice a fully filtered, stably ordered list into an EC2 page. `MaxResults` outside
 * [min, max] → `InvalidParameterValue`; a token that we did not issue → `InvalidPaginationToken`.
 * `nextToken` is returned only when more items follow (botocore's paginator stops on its absence).
 */
export function paginate<T>(items: readonly T[], opts: PaginateOptions<T> = {}): Page<T> {
  const scope = opts.scope ?? '';
  const { maxResults } = opts;
  checkMaxResults(maxResults, opts.min ?? 5, opts.max ?? 1000);
  let start = 0;
  const payload = tokenPayload(scope, opts.nextToken);
  if (payload !== undefined) {
    if (payload.startsWith('o:')) {
      if (opts.keyOf) throw new Ec2Error(INVALID_TOKEN_CODE, 'Invalid pagination token');
      const n = Number(payload.slice(2));
      if (!Number.isSafeInteger(n) || n < 0) throw new Ec2Error(INVALID_TOKEN_CODE, 'Invalid pagination token');
      start = Math.min(n, items.length);
    } else if (payload.startsWith('k:')) {
      if (!opts.keyOf) throw new Ec2Error(INVALID_TOKEN_CODE, 'Invalid pagination token');
      const last = payload.slice(2);
      const keyOf = opts.keyOf;
      start = items.findIndex((it) => keyOf(it) > last);
      if (start < 0) start = items.length;
    } else throw new Ec2Error(INVALID_TOKEN_CODE, 'Invalid pagination token');
  }
  if (maxResults === undefined) return { page: items.slice(start) };
  const end = start + maxResults;
  const page = items.slice(start, end);
  if (end >= items.length) return { page };
  const nextPayload = opts.keyOf ? `k:${opts.keyOf(items[end - 1]!)}` : `o:${end}`;
  return { page, nextToken: encodeToken(scope, nextPayload) };
}

/** Where a keyset page starts: after `after` (the last key of the previous page), or at the beginning. */
export interface KeysetStart {
  after?: string;
}

/**
 * The start of a keyset page read straight from storage (ordered by key, e.g. `WHERE id > :after
 * ORDER BY id`), with exactly paginate()'s checks for a keyed list (`keyOf`): MaxResults outside
 * [min, max] → `InvalidParameterValue`, then a token we did not issue for `scope` (or an offset
 * token) → `InvalidPaginationToken`. Tokens are interchangeable with paginate()'s.
 */
export function keysetStart(opts: { maxResults?: number; nextToken?: string; min?: number; max?: number; scope?: string }): KeysetStart {
  checkMaxResults(opts.maxResults, opts.min ?? 5, opts.max ?? 1000);
  const payload = tokenPayload(opts.scope ?? '', opts.nextToken);
  if (payload === undefined) return {};
  if (!payload.startsWith('k:')) throw new Ec2Error(INVALID_TOKEN_CODE, 'Invalid pagination token');
  return { after: payload.slice(2) };
}

/** The NextToken of a keyset page whose last item has key `lastKey` (give it only when more items follow). */
export function keysetToken(scope: string, lastKey: string): string {
  return encodeToken(scope, `k:${lastKey}`);
}
