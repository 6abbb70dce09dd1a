import { Ec2Error } from './errors.js';
import { applyFilters, compileFilterPattern, filterMatchSteps, filterPatternToSql } from './filters.js';
import { QUERY_LIMITS } from './limits.js';
import { readFilters } from './filters.js';
import { Params, readTags } from './params.js';

function err(fn: () => unknown): Ec2Error {
  try {
    fn();
  } catch (e) {
    if (e instanceof Ec2Error) return e;
    throw e;
  }
  throw new Error('expected an Ec2Error');
}

/** mulberry32, as test/support/prng.ts: the same random cases every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** The regular-expression matcher this library used before (exponential on hostile values): the reference on small inputs. */
function regexMatcher(pattern: string): (s: string) => boolean {
  const esc = (c: string) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const chars = [...pattern];
  let re = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '\\' && i + 1 < chars.length) re += esc(chars[++i]!);
    else if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else re += esc(c);
  }
  const rx = new RegExp(`^${re}$`, 'u');
  return (s) => rx.test(s);
}

/** A LIKE evaluator for `filterPatternToSql`'s output (`%`, `_` per code point, `\` escape), to check it against the matcher. */
function like(pattern: { equals: string } | { like: string }, s: string): boolean {
  if ('equals' in pattern) return s === pattern.equals;
  const chars = [...pattern.like];
  let re = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '\\') re += chars[++i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (c === '%') re += '[\\s\\S]*';
    else if (c === '_') re += '[\\s\\S]';
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'u').test(s);
}

describe('filter matching', () => {
  it('*, ? (one code point) and \\ escapes', () => {
    const m = (p: string, s: string) => compileFilterPattern(p)(s);
    expect(m('web-*', 'web-12')).toBe(true);
    expect(m('web-*', 'Web-12')).toBe(false); // case-sensitive
    expect(m('*', '')).toBe(true);
    expect(m('?', '')).toBe(false);
    expect(m('a?c', 'abc')).toBe(true);
    expect(m('a?c', 'ac')).toBe(false);
    expect(m('?', '\u{1F600}')).toBe(true); // an astral code point is one character
    expect(m('??', '\u{1F600}')).toBe(false);
    expect(m('a?', 'a\u{1F600}')).toBe(true);
    expect(m('*\u{1F600}?', 'x\u{1F600}\u{1F601}')).toBe(true);
    expect(m('a\\*b', 'a*b')).toBe(true);
    expect(m('a\\*b', 'axb')).toBe(false);
    expect(m('a\\?b', 'a?b')).toBe(true);
    expect(m('a\\?b', 'axb')).toBe(false);
    expect(m('a\\\\*', 'a\\xyz')).toBe(true);
    expect(m('a\\', 'a\\')).toBe(true); // a trailing backslash is literal
    expect(m('\\a', 'a')).toBe(true);
    expect(m('\\\u{1F600}', '\u{1F600}')).toBe(true);
    expect(m('line*', 'line\nbreak')).toBe(true);
    expect(m('*a*b*c*', 'xaybzc')).toBe(true);
    expect(m('*a*b*c*', 'xcybza')).toBe(false);
    expect(m('a*a*a', 'aa')).toBe(false);
    expect(m('*?', '')).toBe(false);
  });

  it('agrees with the old regular expression and with the LIKE translation on random small cases', () => {
    const r = prng(11);
    const pAlpha = ['a', 'b', '*', '?', '\\', '%', '_', '\u{1F600}', 'é', '\uD83D', '\uDE00'];
    const sAlpha = ['a', 'b', '*', '?', '\\', '%', '_', '\u{1F600}', 'é', '\uD83D', '\uDE00'];
    let checked = 0;
    const bad: string[] = [];
    for (let k = 0; k < 3000; k++) {
      const p = Array.from({ length: Math.floor(r() * 8) }, () => pick(r, pAlpha)).join('');
      const ref = regexMatcher(p);
      const ours = compileFilterPattern(p);
      const sql = filterPatternToSql(p);
      for (let t = 0; t < 8; t++) {
        const s = Array.from({ length: Math.floor(r() * 8) }, () => pick(r, sAlpha)).join('');
        const want = ref(s);
        if (ours(s) !== want || like(sql, s) !== want) bad.push(`${JSON.stringify(p)} vs ${JSON.stringify(s)}`);
        checked++;
      }
    }
    expect(bad).toEqual([]);
    expect(checked).toBe(24000);
  });

  it('takes O(n·m) steps on values that blow up a backtracking regex', () => {
    // '*a*a*a*a*a*b' against 96 a's blocked the old matcher 1.2 s; 32 wildcards far longer.
    const n = 20_000;
    const text = 'a'.repeat(n);
    const hostile = [
      '*a'.repeat(15) + '*b',
      '*a'.repeat(QUERY_LIMITS.maxFilterWildcards - 1) + '*b',
      '*' + 'a'.repeat(QUERY_LIMITS.maxFilterValueChars - 2) + 'b', // the greedy matcher's own worst case
      '?*'.repeat(QUERY_LIMITS.maxFilterWildcards / 2) + 'b',
      'a*'.repeat(QUERY_LIMITS.maxFilterWildcards) + 'b'.repeat(QUERY_LIMITS.maxFilterValueChars - 2 * QUERY_LIMITS.maxFilterWildcards),
    ];
    for (const p of hostile) {
      const m = [...p].length;
      const { matched, steps } = filterMatchSteps(p, text);
      expect(matched).toBe(false);
      expect(steps).toBeLessThanOrEqual((n + 1) * (m + 1));
    }
    // Star-separated short segments cost linear time, not n·m.
    expect(filterMatchSteps('*a'.repeat(31) + '*b', text).steps).toBeLessThanOrEqual(4 * n);
    // And a tag-sized value against the longest, most wildcarded filters, many times: milliseconds.
    const tag = 'a'.repeat(256);
    const t0 = performance.now();
    for (const p of hostile) {
      const f = compileFilterPattern(p);
      for (let k = 0; k < 200; k++) expect(f(tag)).toBe(false);
    }
    expect(performance.now() - t0).toBeLessThan(1500); // the old regex: one 128-char match with 8 stars ran > 300 s
  });

  it('refuses filter values past the limits (InvalidParameterValue)', () => {
    const { maxFilterValueChars: max, maxFilterWildcards: wild } = QUERY_LIMITS;
    expect(compileFilterPattern('x'.repeat(max))('x'.repeat(max))).toBe(true);
    expect(compileFilterPattern('\\*'.repeat(max))('*'.repeat(max))).toBe(true); // an escape counts once
    expect(compileFilterPattern('\u{1F600}'.repeat(max))('\u{1F600}'.repeat(max))).toBe(true); // code points, not UTF-16 units
    expect(err(() => compileFilterPattern('x'.repeat(max + 1))).code).toBe('InvalidParameterValue');
    expect(err(() => filterPatternToSql('x'.repeat(max) + '\\')).code).toBe('InvalidParameterValue');
    expect(err(() => filterPatternToSql('x'.repeat(1 << 20))).code).toBe('InvalidParameterValue');
    expect(compileFilterPattern('*'.repeat(wild))('abc')).toBe(true);
    expect(filterPatternToSql('?'.repeat(wild))).toEqual({ like: '_'.repeat(wild) });
    expect(err(() => compileFilterPattern('*'.repeat(wild + 1))).code).toBe('InvalidParameterValue');
    expect(err(() => filterPatternToSql('?*'.repeat(wild))).code).toBe('InvalidParameterValue');
    expect(compileFilterPattern('\\*'.repeat(wild + 1))('*'.repeat(wild + 1))).toBe(true); // escaped ones are literal
    expect(err(() => applyFilters([{ n: 'x' }], [{ name: 'n', values: ['*'.repeat(wild + 1)] }], { n: (i) => i.n })).code).toBe('InvalidParameterValue');
  });
});

/** The linear-scan Params structural reads this library used before: the reference on small inputs. */
class ScanParams {
  constructor(
    readonly map: Record<string, string>,
    readonly prefix = '',
  ) {}
  hasAny(name: string): boolean {
    const full = this.prefix + name;
    return Object.keys(this.map).some((k) => k === full || k.startsWith(full + '.'));
  }
  indexes(prefix: string): number[] {
    const full = this.prefix + prefix + '.';
    const seen = new Set<number>();
    for (const k of Object.keys(this.map)) {
      if (!k.startsWith(full)) continue;
      const m = /^(\d{1,9})(?:\.|$)/.exec(k.slice(full.length));
      if (m) seen.add(Number(m[1]));
    }
    return [...seen].sort((a, b) => a - b);
  }
  list(prefix: string): string[] {
    return this.indexes(prefix)
      .map((n) => this.map[`${this.prefix}${prefix}.${n}`])
      .filter((v): v is string => v !== undefined);
  }
  private hasAnyChild(scope: string): boolean {
    return Object.keys(this.map).some((k) => k.startsWith(this.prefix + scope));
  }
  members(prefix: string): ScanParams[] {
    return this.indexes(prefix)
      .filter((n) => this.hasAnyChild(`${prefix}.${n}.`))
      .map((n) => new ScanParams(this.map, `${this.prefix}${prefix}.${n}.`));
  }
  child(name: string): ScanParams | undefined {
    return this.hasAnyChild(name + '.') ? new ScanParams(this.map, `${this.prefix}${name}.`) : undefined;
  }
  entries(): Array<[string, string]> {
    return Object.entries(this.map)
      .filter(([k]) => k.startsWith(this.prefix))
      .map(([k, v]) => [k.slice(this.prefix.length), v]);
  }
}

describe('Params name tree', () => {
  it('answers as the linear scan did, on random maps and names (scoped readers too)', () => {
    const r = prng(7);
    const segs = ['A', 'B', 'Value', '1', '2', '3', '10', '01', '0', '', 'x.y'];
    const name = () => Array.from({ length: 1 + Math.floor(r() * 4) }, () => pick(r, segs)).join('.');
    let compared = 0;
    const bad: string[] = [];
    const compare = (ours: Params, ref: ScanParams, depth: number) => {
      if (ours.prefix !== ref.prefix || JSON.stringify(ours.entries()) !== JSON.stringify(ref.entries())) bad.push(`entries of ${ref.prefix}`);
      for (let q = 0; q < 12; q++) {
        const n = name();
        const at = `${ref.prefix}|${n}`;
        const got = [ours.hasAny(n), ours.indexes(n), ours.list(n), ours.members(n).map((m) => m.prefix), ours.child(n)?.prefix];
        const want = [ref.hasAny(n), ref.indexes(n), ref.list(n), ref.members(n).map((m) => m.prefix), ref.child(n)?.prefix];
        if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(`${at}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
        compared++;
        if (depth < 2) {
          const oc = ours.child(n);
          const rc = ref.child(n);
          if (oc && rc) compare(oc, rc, depth + 1);
          const om = ours.members(n);
          const rm = ref.members(n);
          om.forEach((m, k) => compare(m, rm[k]!, depth + 1));
        }
      }
    };
    for (let k = 0; k < 150; k++) {
      const map: Record<string, string> = Object.create(null);
      for (let e = Math.floor(r() * 30); e > 0; e--) map[name()] = String(e);
      compare(new Params(map), new ScanParams(map), 0);
    }
    expect(bad).toEqual([]);
    expect(compared).toBeGreaterThan(5000);
  });

  it('keeps readers over the same map consistent, and the endpoint form (body + query merged) works', () => {
    const map = { 'Tag.1.Key': 'a', 'Tag.1.Value': 'b', 'Tag.2.Key': 'c', Action: 'CreateTags' };
    expect(readTags(new Params(map))).toEqual([
      { key: 'a', value: 'b' },
      { key: 'c', value: '' },
    ]);
    expect(readTags(new Params(map))).toEqual(readTags(Params.from(map)));
    expect(new Params(map, 'Tag.1.').entries()).toEqual([
      ['Key', 'a'],
      ['Value', 'b'],
    ]);
    expect(new Params(map, 'Tag.').entries()).toEqual([
      ['1.Key', 'a'],
      ['1.Value', 'b'],
      ['2.Key', 'c'],
    ]);
  });

  const filterBody = (filters: number, values: number) => {
    const parts: string[] = ['Action=DescribeInstances'];
    for (let i = 1; i <= filters; i++) {
      parts.push(`Filter.${i}.Name=tag%3AName`);
      for (let v = 1; v <= values; v++) parts.push(`Filter.${i}.Value.${v}=web-${i}-${v}`);
    }
    return parts.join('&');
  };

  it('parses 20,000 filters worth of keys in linear time', () => {
    // 20,000 filters fit under the 1 MiB body limit; the key rescans made them take minutes.
    const body = filterBody(20_000, 1);
    const t0 = performance.now();
    const e = err(() => readFilters(Params.from(body)));
    expect(e.code).toBe('FilterLimitExceeded');
    expect(e.httpStatus).toBe(400);
    // Past the caps too: every filter and value read, still a linear pass.
    const p = Params.from(body);
    const all = p.members('Filter', { max: Infinity }).map((m) => ({ name: m.str('Name'), values: m.list('Value', { max: Infinity }), has: m.hasAny('Value'), v: m.child('Value') }));
    expect(all).toHaveLength(20_000);
    expect(all[19_999]).toMatchObject({ name: 'tag:Name', values: ['web-20000-1'], has: true });
    expect(performance.now() - t0).toBeLessThan(8000); // the old rescans: > 300 s (killed)
  });

  it('caps filters (50), values per filter (200) with FilterLimitExceeded, as EC2', () => {
    const { maxFilters, maxFilterValues } = QUERY_LIMITS;
    expect(readFilters(Params.from(filterBody(maxFilters, 1)))).toHaveLength(maxFilters);
    const e = err(() => readFilters(Params.from(filterBody(maxFilters + 1, 1))));
    expect([e.code, e.message]).toEqual(['FilterLimitExceeded', 'The maximum number of filters specified on a single call is 50']);
    expect(readFilters(Params.from(filterBody(1, maxFilterValues)))[0]!.values).toHaveLength(maxFilterValues);
    const v = err(() => readFilters(Params.from(filterBody(2, maxFilterValues + 1))));
    expect([v.code, v.message]).toEqual(['FilterLimitExceeded', 'The maximum number of filter values specified on a single call is 200']);
    // A value too long or too wild names its parameter.
    const long = err(() => readFilters(Params.from(`Filter.3.Name=tag:a&Filter.3.Value.7=${'x'.repeat(300)}`)));
    expect([long.code, long.message]).toEqual(['InvalidParameterValue', expect.stringContaining('Filter.3.Value.7')]);
    expect(err(() => readFilters(Params.from(`Filter.1.Name=tag:a&Filter.1.Value.1=${'*'.repeat(40)}`))).code).toBe('InvalidParameterValue');
  });

  it('caps other lists at 1,000 members and refuses absurd indexes (InvalidParameterValue)', () => {
    const ids = (n: number, from = 1) => Array.from({ length: n }, (_, k) => `InstanceId.${k + from}=i-${k}`).join('&');
    expect(Params.from(ids(QUERY_LIMITS.maxListMembers)).list('InstanceId')).toHaveLength(1000);
    const e = err(() => Params.from(ids(QUERY_LIMITS.maxListMembers + 1)).list('InstanceId'));
    expect([e.code, e.message]).toEqual(['InvalidParameterValue', 'The list InstanceId.N has 1001 members; at most 1000 are allowed.']);
    expect(err(() => readTags(Params.from(Array.from({ length: 1001 }, (_, k) => `Tag.${k + 1}.Key=k${k}`).join('&')))).code).toBe('InvalidParameterValue');
    expect(Params.from(`InstanceId.${QUERY_LIMITS.maxMemberIndex}=i-1`).list('InstanceId')).toEqual(['i-1']);
    expect(err(() => Params.from(`InstanceId.${QUERY_LIMITS.maxMemberIndex + 1}=i-1`).list('InstanceId')).code).toBe('InvalidParameterValue');
    expect(err(() => Params.from(`Filter.${'9'.repeat(5000)}.Name=x`).members('Filter')).message).toContain('Filter.99999999999999999999 ');
    // Unknown parameters elsewhere are still ignored.
    expect(Params.from(`Junk.${'9'.repeat(20)}=x&InstanceId.1=i-1`).list('InstanceId')).toEqual(['i-1']);
    // 300,000 one-letter names (a 1 MiB body of `a=&`): no call-stack limits hit.
    const wide = Params.from(Array.from({ length: 300_000 }, (_, k) => `${k.toString(36)}=`).join('&') + '&InstanceId.1=i-1');
    expect(wide.list('InstanceId')).toEqual(['i-1']);
    expect(wide.entries()).toHaveLength(300_001);
    // A hostile deep name costs only its own length.
    const deep = Params.from(`${'a.'.repeat(200_000)}b=1&InstanceId.1=i-1`);
    expect(deep.list('InstanceId')).toEqual(['i-1']);
    expect(deep.hasAny('a.a.a')).toBe(true);
  });
});
