import { Ec2Error } from './errors.js';
import { QUERY_LIMITS } from './limits.js';
import type { Filter, Tag } from './params.js';

/** A filterable value; arrays mean "any of these". `undefined`/`null` never match. */
export type FilterScalar = string | number | boolean | Date | null | undefined;
/** Filter name → value(s) of an item for that filter. */
export type FilterSpec<T> = Record<string, (item: T) => FilterScalar | readonly FilterScalar[]>;
/** Tags of an item, as a map or a list. */
export type TagsOf<T> = (item: T) => Readonly<Record<string, string>> | readonly Tag[] | undefined;

function toText(v: FilterScalar): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

/** A parsed filter value: code points (literal, escapes resolved), `STAR` (`*`) and `ANY` (`?`). */
type Token = string | typeof STAR | typeof ANY;
const STAR = 0;
const ANY = 1;

/**
 * Parse an EC2 filter value into tokens: `*` any run, `?` one code point, `\` escapes the next
 * code point (a trailing `\` is literal); everything else literal and case-sensitive. Past
 * `QUERY_LIMITS.maxFilterValueChars` tokens or `maxFilterWildcards` wildcards →
 * `InvalidParameterValue` naming `name`.
 */
function parsePattern(pattern: string, name: string): Token[] {
  const out: Token[] = [];
  let wild = 0;
  let escaped = false;
  const tooLong = () =>
    Ec2Error.invalidParameterValue(name, undefined, `(a filter value may be at most ${QUERY_LIMITS.maxFilterValueChars} characters long).`);
  for (const c of pattern) {
    if (escaped) {
      out.push(c);
      escaped = false;
    } else if (c === '\\') escaped = true;
    else if (c === '*' || c === '?') {
      if (++wild > QUERY_LIMITS.maxFilterWildcards) {
        throw Ec2Error.invalidParameterValue(name, undefined, `(a filter value may hold at most ${QUERY_LIMITS.maxFilterWildcards} wildcards).`);
      }
      out.push(c === '*' ? STAR : ANY);
    } else out.push(c);
    if (out.length > QUERY_LIMITS.maxFilterValueChars) throw tooLong();
  }
  if (escaped) out.push('\\');
  if (out.length > QUERY_LIMITS.maxFilterValueChars) throw tooLong();
  return out;
}

/** `InvalidParameterValue` (naming `name`) when a filter value is past the limits of `parsePattern`. */
export function checkFilterValue(value: string, name: string): void {
  parsePattern(value, name);
}

/**
 * Greedy glob match of `text` (code points) against `pat`, remembering only the last `*`: on a
 * mismatch the run of that `*` grows by one and matching resumes after it. Earlier stars never
 * need revisiting (the leftmost match of each star-free segment is the best one), so each text
 * position starts each pattern position at most once: O(n·m) steps in the worst case, never the
 * exponential backtracking of a regular expression. `steps` counts loop iterations (for tests).
 */
function globMatch(pat: readonly Token[], text: readonly string[], steps?: { n: number }): boolean {
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  let n = 0;
  try {
    while (j < text.length) {
      n++;
      const p = pat[i];
      if (i < pat.length && (p === ANY || p === text[j])) {
        i++;
        j++;
      } else if (p === STAR) {
        star = i++;
        mark = j;
      } else if (star >= 0) {
        i = star + 1;
        j = ++mark;
      } else return false;
    }
    while (pat[i] === STAR) i++;
    return i === pat.length;
  } finally {
    if (steps) steps.n += n;
  }
}

/** Match `text` against the EC2 filter value `pattern`, counting the matcher's steps (for tests). */
export function filterMatchSteps(pattern: string, text: string): { matched: boolean; steps: number } {
  const steps = { n: 0 };
  const matched = globMatch(parsePattern(pattern, 'Filter.Value'), [...text], steps);
  return { matched, steps: steps.n };
}

/**
 * Compile an EC2 filter value (see `parsePattern`): `*` any run, `?` one code point, `\` escapes
 * the next one; everything else literal and case-sensitive. Linear-time matching (no regular
 * expression); over-long values → `InvalidParameterValue`.
 */
export function compileFilterPattern(pattern: string, name = 'Filter.Value'): (s: string) => boolean {
  const pat = parsePattern(pattern, name);
  if (!/[*?\\]/.test(pattern)) return (s) => s === pattern;
  if (!pat.some((t) => t === STAR || t === ANY)) {
    const literal = pat.join('');
    return (s) => s === literal;
  }
  return (s) => globMatch(pat, [...s]);
}

/**
 * An EC2 filter value for SQL, matching exactly the strings `compileFilterPattern` matches:
 * `{ equals }` when it has no wildcard left (escapes resolved), else `{ like }`, a LIKE pattern
 * (`*` → `%`, `?` → `_`, literal `%`, `_`, `\` escaped with `\`, PostgreSQL's default LIKE escape).
 * LIKE and `=` are case-sensitive, as EC2 filters are. Assumes a UTF-8 database (`_` = one
 * character, as `?` is one code point). Same limits as `compileFilterPattern`.
 */
export function filterPatternToSql(pattern: string, name = 'Filter.Value'): { equals: string } | { like: string } {
  const pat = parsePattern(pattern, name);
  if (!/[*?\\]/.test(pattern)) return { equals: pattern };
  let like = '';
  let literal = '';
  let wild = false;
  for (const t of pat) {
    if (t === STAR || t === ANY) {
      like += t === STAR ? '%' : '_';
      wild = true;
    } else {
      literal += t;
      like += t === '%' || t === '_' || t === '\\' ? `\\${t}` : t;
    }
  }
  return wild ? { like } : { equals: literal };
}

function tagList<T>(tagsOf: TagsOf<T>, item: T): Array<[string, string]> {
  const t = tagsOf(item);
  if (!t) return [];
  if (Array.isArray(t)) return (t as readonly Tag[]).map((x) => [x.key, x.value ?? '']);
  return Object.entries(t as Record<string, string>);
}

/** Throw `InvalidParameterValue` for filter names not in `spec` (nor tag filters when `tagsOf` is given). */
export function validateFilters<T>(filters: readonly Filter[], spec: FilterSpec<T>, tagsOf?: TagsOf<T>): void {
  for (const f of filters) {
    const known =
      Object.prototype.hasOwnProperty.call(spec, f.name) ||
      (tagsOf !== undefined && (f.name === 'tag-key' || f.name === 'tag-value' || (f.name.startsWith('tag:') && f.name.length > 4)));
    if (!known) throw new Ec2Error('InvalidParameterValue', `The filter '${f.name}' is invalid`);
  }
}

/**
 * EC2 filtering: AND across filters, OR across a filter's values, wildcards per
 * `compileFilterPattern`; `tag:KEY`, `tag-key`, `tag-value` built in when `tagsOf` is given.
 * Unknown filter names → `InvalidParameterValue` ("The filter 'x' is invalid"), checked
 * even when `items` is empty. A filter with no values matches nothing.
 */
export function applyFilters<T>(items: readonly T[], filters: readonly Filter[], spec: FilterSpec<T>, tagsOf?: TagsOf<T>): T[] {
  validateFilters(filters, spec, tagsOf);
  if (filters.length === 0) return [...items];
  const compiled = filters.map((f) => {
    const pats = f.values.map((v) => compileFilterPattern(v));
    const any = (s: string | undefined) => s !== undefined && pats.some((p) => p(s));
    if (Object.prototype.hasOwnProperty.call(spec, f.name)) {
      const get = spec[f.name]!;
      return (item: T) => {
        const v = get(item);
        const vs = Array.isArray(v) ? (v as readonly FilterScalar[]) : [v as FilterScalar];
        return vs.some((x) => any(toText(x)));
      };
    }
    const tags = tagsOf!;
    if (f.name === 'tag-key') return (item: T) => tagList(tags, item).some(([k]) => any(k));
    if (f.name === 'tag-value') return (item: T) => tagList(tags, item).some(([, v]) => any(v));
    const key = f.name.slice(4);
    return (item: T) => tagList(tags, item).some(([k, v]) => k === key && any(v));
  });
  return items.filter((item) => compiled.every((m) => m(item)));
}
