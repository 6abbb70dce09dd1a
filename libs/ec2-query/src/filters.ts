import { Ec2Error } from './errors.js';
import { QUERY_LIMITS } from './limits.js';
import type { Filter, Params, Tag } from './params.js';

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

/** A parsed filter value: literal code points (escapes resolved), `STAR` (`*`) and `ANY` (`?`). */
type Token = number;
const STAR = -1;
const ANY = -2;
/** Past the end of the pattern. */
const NONE = -3;

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
  const tooLong = () => Ec2Error.invalidParameterValue(name, undefined, `(a filter value may be at most ${QUERY_LIMITS.maxFilterValueChars} characters long).`);
  const literal = (cp: number) => {
    // A lone high surrogate then an escaped lone low one: one code point, as the string (and so
    // the LIKE pattern) holds them.
    const prev = out.length ? out[out.length - 1]! : -1;
    if (cp >= 0xdc00 && cp <= 0xdfff && prev >= 0xd800 && prev <= 0xdbff) out[out.length - 1] = (prev - 0xd800) * 0x400 + (cp - 0xdc00) + 0x10000;
    else out.push(cp);
  };
  for (const c of pattern) {
    if (escaped) {
      literal(c.codePointAt(0)!);
      escaped = false;
    } else if (c === '\\') escaped = true;
    else if (c === '*' || c === '?') {
      if (++wild > QUERY_LIMITS.maxFilterWildcards) {
        throw Ec2Error.invalidParameterValue(name, undefined, `(a filter value may hold at most ${QUERY_LIMITS.maxFilterWildcards} wildcards).`);
      }
      out.push(c === '*' ? STAR : ANY);
    } else literal(c.codePointAt(0)!);
    if (out.length > QUERY_LIMITS.maxFilterValueChars) throw tooLong();
  }
  if (escaped) out.push(0x5c); // `\\`
  if (out.length > QUERY_LIMITS.maxFilterValueChars) throw tooLong();
  return out;
}

/** `InvalidParameterValue` (naming `name`) when a filter value is past the limits of `parsePattern`. */
export function checkFilterValue(value: string, name: string): void {
  parsePattern(value, name);
}

/**
 * Greedy glob match of `text` (by code points) against `pat`, remembering only the last `*`: on
 * a mismatch the run of that `*` grows by one code point and matching resumes after it. Earlier
 * stars never need revisiting (the leftmost match of each star-free segment is the best one), so
 * each text position starts each pattern position at most once: O(n·m) steps in the worst case,
 * never the exponential backtracking of a regular expression. `steps` counts loop iterations.
 */
function globMatch(pat: readonly Token[], text: string, steps?: { n: number }): boolean {
  const len = text.length;
  const m = pat.length;
  /** The code point at `j` and its width in UTF-16 units (a lone surrogate is one code point). */
  let cp = 0;
  const at = (j: number): number => {
    cp = text.charCodeAt(j);
    if (cp >= 0xd800 && cp <= 0xdbff && j + 1 < len) {
      const lo = text.charCodeAt(j + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = (cp - 0xd800) * 0x400 + (lo - 0xdc00) + 0x10000;
        return 2;
      }
    }
    return 1;
  };
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  let n = 0;
  let failed = false;
  while (j < len) {
    n++;
    const p = i < m ? pat[i]! : NONE;
    if (p === STAR) {
      star = i++;
      mark = j;
      continue;
    }
    const w = at(j);
    if (p === ANY || p === cp) {
      i++;
      j += w;
    } else if (star >= 0) {
      i = star + 1;
      mark += at(mark);
      j = mark;
    } else {
      failed = true;
      break;
    }
  }
  if (steps) steps.n += n;
  if (failed) return false;
  while (pat[i] === STAR) i++;
  return i === m;
}

/** Match `text` against the EC2 filter value `pattern`, counting the matcher's steps (for tests). */
export function filterMatchSteps(pattern: string, text: string): { matched: boolean; steps: number } {
  const steps = { n: 0 };
  const matched = globMatch(parsePattern(pattern, 'Filter.Value'), text, steps);
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
    const literal = String.fromCodePoint(...pat);
    return (s) => s === literal;
  }
  // The common one-star forms (`web-*`, `*-prod`, `a*z`): string compares, as fast as can be.
  const stars = pat.filter((t) => t === STAR).length;
  if (stars === 1 && !pat.includes(ANY) && !pat.some((t) => t >= 0xd800 && t <= 0xdfff)) {
    const k = pat.indexOf(STAR);
    const head = String.fromCodePoint(...pat.slice(0, k));
    const tail = String.fromCodePoint(...pat.slice(k + 1));
    return (s) => s.length >= head.length + tail.length && s.startsWith(head) && s.endsWith(tail);
  }
  return (s) => globMatch(pat, s);
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
      const c = String.fromCodePoint(t);
      literal += c;
      like += c === '%' || c === '_' || c === '\\' ? `\\${c}` : c;
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
    const known = Object.prototype.hasOwnProperty.call(spec, f.name) || (tagsOf !== undefined && (f.name === 'tag-key' || f.name === 'tag-value' || (f.name.startsWith('tag:') && f.name.length > 4)));
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

/**
 * `Filter.N.Name` + `Filter.N.Value.M` (the prefix can be changed, e.g. for `Filters`). As EC2:
 * more than 50 filters, or 200 values in one, → `FilterLimitExceeded`; a value past the limits
 * of `checkFilterValue` → `InvalidParameterValue` (see `QUERY_LIMITS`).
 */
export function readFilters(params: Params, prefix = 'Filter'): Filter[] {
  const { maxFilters, maxFilterValues } = QUERY_LIMITS;
  const filters = params.members(prefix, {
    max: maxFilters,
    tooMany: () => new Ec2Error('FilterLimitExceeded', `The maximum number of filters specified on a single call is ${maxFilters}`),
  });
  return filters.map((m) => {
    const name = m.str('Name', { required: true });
    const values: string[] = [];
    const ns = m.indexes('Value', {
      max: maxFilterValues,
      tooMany: () => new Ec2Error('FilterLimitExceeded', `The maximum number of filter values specified on a single call is ${maxFilterValues}`),
    });
    for (const n of ns) {
      const v = m.raw(`Value.${n}`);
      if (v === undefined) continue;
      checkFilterValue(v, m.fullName(`Value.${n}`));
      values.push(v);
    }
    return { name, values };
  });
}
