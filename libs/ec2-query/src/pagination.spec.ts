import { Ec2Error } from './errors.js';
import { keysetStart, keysetToken, paginate, capMaxResults } from './pagination.js';

const items = Array.from({ length: 12 }, (_, i) => `k${String(i).padStart(2, '0')}`);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof Ec2Error) return e.code;
    throw e;
  }
  return 'none';
}

describe('paginate', () => {
  it('returns everything without MaxResults and no token', () => {
    expect(paginate(items)).toEqual({ page: items });
  });

  it('walks pages by offset; nextToken only when more items exist', () => {
    const seen: string[] = [];
    const tokens = new Set<string>();
    let token: string | undefined;
    let pages = 0;
    do {
      const r = paginate(items, { maxResults: 5, nextToken: token });
      seen.push(...r.page);
      token = r.nextToken;
      if (token) {
        expect(tokens.has(token)).toBe(false);
        tokens.add(token);
      }
      pages++;
    } while (token);
    expect(seen).toEqual(items);
    expect(pages).toBe(3);
    expect(paginate(items.slice(0, 5), { maxResults: 5 }).nextToken).toBeUndefined();
    expect(paginate([], { maxResults: 5 })).toEqual({ page: [] });
  });

  it('walks pages by key and survives deletions', () => {
    const r1 = paginate(items, { maxResults: 5, keyOf: (s) => s });
    expect(r1.page).toEqual(items.slice(0, 5));
    const fewer = items.filter((s) => s !== 'k02' && s !== 'k05');
    const r2 = paginate(fewer, { maxResults: 5, keyOf: (s) => s, nextToken: r1.nextToken });
    expect(r2.page).toEqual(['k06', 'k07', 'k08', 'k09', 'k10']);
  });

  it('validates MaxResults', () => {
    expect(code(() => paginate(items, { maxResults: 4 }))).toBe('InvalidParameterValue');
    expect(code(() => paginate(items, { maxResults: 1001 }))).toBe('InvalidParameterValue');
    expect(paginate(items, { maxResults: 1, min: 1 }).page).toEqual(['k00']);
  });

  it('rejects garbage, tampered and foreign tokens', () => {
    const t = paginate(items, { maxResults: 5 }).nextToken!;
    expect(code(() => paginate(items, { maxResults: 5, nextToken: 'garbage!' }))).toBe('InvalidPaginationToken');
    expect(code(() => paginate(items, { maxResults: 5, nextToken: Buffer.from('o:3\nxxxx').toString('base64url') }))).toBe('InvalidPaginationToken');
    expect(code(() => paginate(items, { maxResults: 5, nextToken: t.slice(0, -2) }))).toBe('InvalidPaginationToken');
    expect(code(() => paginate(items, { maxResults: 5, nextToken: t, scope: 'DescribeVolumes' }))).toBe('InvalidPaginationToken');
    expect(code(() => paginate(items, { maxResults: 5, nextToken: t, keyOf: (s) => s }))).toBe('InvalidPaginationToken');
    expect(new Ec2Error('InvalidPaginationToken', 'x').httpStatus).toBe(400);
  });
});

describe('capMaxResults', () => {
  it('turns MaxResults above the limit into the limit and leaves the rest to the usual check', () => {
    expect(capMaxResults(1000, 500)).toBe(500);
    expect(capMaxResults(500, 500)).toBe(500);
    expect(capMaxResults(20, 500)).toBe(20);
    expect(capMaxResults(undefined, 500)).toBeUndefined();
    expect(capMaxResults(2, 500)).toBe(2); // still refused by paginate / keysetStart
    expect(capMaxResults(700.5, 500)).toBe(700.5); // not an integer: refused as before
  });
});

describe('keysetStart / keysetToken', () => {
  it('reads the keys of paginate() tokens and paginate() reads theirs', () => {
    const r1 = paginate(items, { maxResults: 5, keyOf: (s) => s, scope: 'DescribeInstances' });
    expect(keysetStart({ maxResults: 5, nextToken: r1.nextToken, scope: 'DescribeInstances' })).toEqual({ after: 'k04' });
    expect(keysetToken('DescribeInstances', 'k04')).toBe(r1.nextToken);
    const r2 = paginate(items, { maxResults: 5, keyOf: (s) => s, scope: 'DescribeInstances', nextToken: keysetToken('DescribeInstances', 'k09') });
    expect(r2).toEqual({ page: ['k10', 'k11'] });
    expect(keysetStart({})).toEqual({});
    expect(keysetStart({ nextToken: '' })).toEqual({});
  });

  it('checks MaxResults first, then the token, as paginate() does', () => {
    const t = keysetToken('DescribeInstances', 'k04');
    expect(code(() => keysetStart({ maxResults: 4, nextToken: 'garbage!', scope: 'DescribeInstances' }))).toBe('InvalidParameterValue');
    expect(code(() => keysetStart({ maxResults: 1001 }))).toBe('InvalidParameterValue');
    expect(code(() => keysetStart({ maxResults: 5.5 }))).toBe('InvalidParameterValue');
    expect(keysetStart({ maxResults: 1, min: 1 })).toEqual({});
    expect(code(() => keysetStart({ maxResults: 5, nextToken: 'garbage!', scope: 'DescribeInstances' }))).toBe('InvalidPaginationToken');
    expect(code(() => keysetStart({ maxResults: 5, nextToken: t, scope: 'DescribeInstanceStatus' }))).toBe('InvalidPaginationToken');
    expect(code(() => keysetStart({ maxResults: 5, nextToken: t.slice(0, -2), scope: 'DescribeInstances' }))).toBe('InvalidPaginationToken');
    const offset = paginate(items, { maxResults: 5, scope: 'DescribeInstances' }).nextToken!;
    expect(code(() => keysetStart({ maxResults: 5, nextToken: offset, scope: 'DescribeInstances' }))).toBe('InvalidPaginationToken');
  });
});
