import { Ec2Error } from './errors.js';
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

/**
 * Compile an EC2 filter value: `*` any run, `?` one character, `\` escapes the next character;
 * everything else literal and case-sensitive.
 */
export function compileFilterPattern(pattern: string): (s: string) => boolean {
  if (!/[*?\\]/.test(pattern)) return (s) => s === pattern;
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) {
      re += escapeRe(pattern[++i]!);
    } else if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else re += escapeRe(c);
  }
  const rx = new RegExp(`^${re}$`, 'u');
  return (s) => rx.test(s);
}
/**
 * An EC2 filter value for SQL, matching exactly the strings `compileFilterPattern` matches:
 * `{ equals }` when it has no wildcard left (escapes resolved), else `{ like }`, a LIKE pattern
 * (`*` → `%`, `?` → `_`, literal `%`, `_`, `\` escaped with `\`, PostgreSQL's default LIKE escape).
 * LIKE and `=` are case-sensitive, as EC2 filters are. Assumes a UTF-8 database (`_` = one
 * character, as `?` is one code point).
 */
export function filterPatternToSql(pattern: string): { equals: string } | { like: string } {
  if (!/[*?\\]/.test(pattern)) return { equals: pattern };
  let like = '';
  let literal = '';
  let wild = false;
  const lit = (c: string) => {
    literal += c;
    like += c === '%' || c === '_' || c === '\\' ? `\\${c}` : c;
  };
  const chars = [...pattern]; // code points, as the `u` regex of compileFilterPattern sees them
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '\\' && i + 1 < chars.length) {
      lit(chars[++i]!);
    } else if (c === '*' || c === '?') {
      like += c === '*' ? '%' : '_';
      wild = true;
    } else lit(c);
  }
  return wild ? { like } : { equals: literal };
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
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
    const pats = f.values.map(compileFilterPattern);
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
