import { Ec2Error } from './errors.js';
import { applyFilters, compileFilterPattern, filterPatternToSql, type FilterSpec } from './filters.js';

interface Inst {
  id: string;
  state: string;
  type: string;
  ips: string[];
  ebs: boolean;
  cores: number;
  tags: Record<string, string>;
}
const items: Inst[] = [
  { id: 'i-1', state: 'running', type: 'm1.small', ips: ['10.0.0.1'], ebs: true, cores: 1, tags: { Name: 'web-1', env: 'prod' } },
  { id: 'i-2', state: 'stopped', type: 'm1.large', ips: [], ebs: false, cores: 2, tags: { Name: 'db', env: 'dev' } },
  { id: 'i-3', state: 'running', type: 'c1.medium', ips: ['10.0.0.3', '192.168.1.3'], ebs: false, cores: 4, tags: {} },
];
const spec: FilterSpec<Inst> = {
  'instance-id': (i) => i.id,
  'instance-state-name': (i) => i.state,
  'instance-type': (i) => i.type,
  'private-ip-address': (i) => i.ips,
  'ebs-optimized': (i) => i.ebs,
  'cpu-cores': (i) => i.cores,
  never: () => undefined,
};
const ids = (f: Parameters<typeof applyFilters<Inst>>[1], withTags = true) => applyFilters(items, f, spec, withTags ? (i) => i.tags : undefined).map((i) => i.id);

describe('applyFilters', () => {
  it('returns everything without filters', () => {
    expect(ids([])).toEqual(['i-1', 'i-2', 'i-3']);
  });

  it('ANDs filters and ORs values', () => {
    expect(ids([{ name: 'instance-state-name', values: ['running'] }])).toEqual(['i-1', 'i-3']);
    expect(ids([{ name: 'instance-state-name', values: ['running', 'stopped'] }])).toEqual(['i-1', 'i-2', 'i-3']);
    expect(
      ids([
        { name: 'instance-state-name', values: ['running'] },
        { name: 'instance-type', values: ['m1.*'] },
      ]),
    ).toEqual(['i-1']);
  });

  it('supports * and ? wildcards, literal otherwise, case-sensitive', () => {
    expect(ids([{ name: 'instance-type', values: ['m1.l????', 'c1.?'] }])).toEqual(['i-2']);
    expect(ids([{ name: 'instance-type', values: ['*medium'] }])).toEqual(['i-3']);
    expect(ids([{ name: 'instance-type', values: ['M1.SMALL'] }])).toEqual([]);
    expect(ids([{ name: 'instance-type', values: ['m1.smal.'] }])).toEqual([]); // '.' is literal
    expect(ids([{ name: 'instance-type', values: ['m1(small'] }])).toEqual([]);
    expect(compileFilterPattern('a\\*b')('a*b')).toBe(true);
    expect(compileFilterPattern('a\\*b')('axb')).toBe(false);
    expect(compileFilterPattern('a[b]')('a[b]')).toBe(true);
  });

  it('matches any element of multi-valued attributes; stringifies booleans and numbers', () => {
    expect(ids([{ name: 'private-ip-address', values: ['192.168.*'] }])).toEqual(['i-3']);
    expect(ids([{ name: 'ebs-optimized', values: ['true'] }])).toEqual(['i-1']);
    expect(ids([{ name: 'cpu-cores', values: ['2', '4'] }])).toEqual(['i-2', 'i-3']);
    expect(ids([{ name: 'never', values: ['*'] }])).toEqual([]);
    expect(ids([{ name: 'instance-id', values: [] }])).toEqual([]);
  });

  it('has tag:KEY, tag-key and tag-value', () => {
    expect(ids([{ name: 'tag:Name', values: ['web-*'] }])).toEqual(['i-1']);
    expect(ids([{ name: 'tag:env', values: ['prod', 'dev'] }])).toEqual(['i-1', 'i-2']);
    expect(ids([{ name: 'tag:name', values: ['web-1'] }])).toEqual([]);
    expect(ids([{ name: 'tag-key', values: ['env'] }])).toEqual(['i-1', 'i-2']);
    expect(ids([{ name: 'tag-value', values: ['d*'] }])).toEqual(['i-2']);
    const list = applyFilters(items, [{ name: 'tag:Name', values: ['db'] }], spec, (i) => Object.entries(i.tags).map(([key, value]) => ({ key, value })));
    expect(list.map((i) => i.id)).toEqual(['i-2']);
  });

  it('rejects unknown filter names, even with no items, never matching all', () => {
    for (const f of [
      { name: 'instance-stat', values: ['x'] },
      { name: 'tag:Name', values: ['x'] },
    ]) {
      let e: unknown;
      try {
        applyFilters([], [f], spec); // no tagsOf → tag filters unknown
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(Ec2Error);
      expect((e as Ec2Error).code).toBe('InvalidParameterValue');
      expect((e as Ec2Error).message).toBe(`The filter '${f.name}' is invalid`);
    }
    expect(() => ids([{ name: 'tag:', values: ['x'] }])).toThrow("The filter 'tag:' is invalid");
  });
});

describe('filterPatternToSql', () => {
  it('keeps plain values as equality', () => {
    expect(filterPatternToSql('running')).toEqual({ equals: 'running' });
    expect(filterPatternToSql('')).toEqual({ equals: '' });
    expect(filterPatternToSql('100%_done')).toEqual({ equals: '100%_done' }); // % and _ are literal in EC2
  });

  it('turns * and ? into % and _, escaping LIKE metacharacters', () => {
    expect(filterPatternToSql('web-*')).toEqual({ like: 'web-%' });
    expect(filterPatternToSql('m1.?ma*')).toEqual({ like: 'm1._ma%' });
    expect(filterPatternToSql('50%*')).toEqual({ like: '50\\%%' });
    expect(filterPatternToSql('a_b?')).toEqual({ like: 'a\\_b_' });
  });

  it('resolves EC2 escapes: an escaped wildcard is literal, a trailing backslash is itself', () => {
    expect(filterPatternToSql('a\\*b')).toEqual({ equals: 'a*b' });
    expect(filterPatternToSql('a\\?*')).toEqual({ like: 'a?%' });
    expect(filterPatternToSql('a\\\\*')).toEqual({ like: 'a\\\\%' }); // escaped backslash, then *
    expect(filterPatternToSql('a\\')).toEqual({ equals: 'a\\' });
    expect(filterPatternToSql('*\\')).toEqual({ like: '%\\\\' });
    expect(filterPatternToSql('?\u{1F600}')).toEqual({ like: '_\u{1F600}' });
  });
});
