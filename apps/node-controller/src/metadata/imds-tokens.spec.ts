import type { ZoneNetworkState } from '@koala/contracts';
import { answerImds, type ImdsContext, type ImdsRequest } from './imds-request.js';
import { ImdsTokens, parseTtl } from './imds-tokens.js';
import type { LaunchRecord } from './launch-spec-store.js';

class FakeClock {
  t = Date.parse('2026-12-07T00:00:00Z');
  now = () => new Date(this.t);
}

describe('parseTtl', () => {
  it.each([
    ['1', 1],
    ['21600', 21600],
    [' 60 ', 60],
    ['0', undefined],
    ['21601', undefined],
    ['-1', undefined],
    ['1.5', undefined],
    ['1e3', undefined],
    ['', undefined],
    ['abc', undefined],
    ['99999999999999999999', undefined],
    ['６０', undefined],
    [undefined, undefined],
  ])('%j → %j', (raw, want) => expect(parseTtl(raw as string | undefined)).toBe(want));

  it('refuses a repeated header', () => expect(parseTtl(['60', '60'])).toBeUndefined());
});

describe('ImdsTokens', () => {
  const clock = new FakeClock();
  const tokens = new ImdsTokens(clock);

  it('a token is valid for its instance until it expires', () => {
    const t = tokens.issue('i-0000000a', 60);
    expect(t).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(t).not.toContain('i-0000000a');
    expect(tokens.verify(t, 'i-0000000a')).toBe(60);
    clock.t += 59_500;
    expect(tokens.verify(t, 'i-0000000a')).toBe(1);
    clock.t += 500;
    expect(tokens.verify(t, 'i-0000000a')).toBeUndefined();
  });

  it('is bound to the instance, the key, and every byte', () => {
    const t = tokens.issue('i-0000000a', 600);
    expect(tokens.verify(t, 'i-0000000b')).toBeUndefined();
    expect(new ImdsTokens(clock).verify(t, 'i-0000000a')).toBeUndefined();
    const raw = Buffer.from(t, 'base64url');
    for (const at of [0, 9, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[at]! ^= 1;
      expect(tokens.verify(bad.toString('base64url'), 'i-0000000a')).toBeUndefined();
    }
    // A later expiry cannot be forged: the MAC covers it.
    const later = Buffer.from(raw);
    later.writeBigUInt64BE(later.readBigUInt64BE(0) + 10_000_000n);
    expect(tokens.verify(later.toString('base64url'), 'i-0000000a')).toBeUndefined();
  });

  it.each(['', 'x', 'a'.repeat(5000), 'abc def', 'ä', '\u0000', '====='])('garbage %j is invalid', (t) => expect(tokens.verify(t, 'i-0000000a')).toBeUndefined());
  it('a repeated header is invalid', () => expect(tokens.verify([tokens.issue('i-0000000a', 5)], 'i-0000000a')).toBeUndefined());
});

describe('answerImds', () => {
  const clock = new FakeClock();
  const record: LaunchRecord = {
    instanceId: 'i-0000000a',
    reservationId: 'r-1',
    accountId: '000000000042',
    instanceType: 't1.micro',
    virtualizationType: 'hvm',
    imageId: 'emi-00000001',
    hostname: 'i-0000000a',
    availabilityZone: 'koala-1a',
    launchIndex: 0,
    ephemeral: false,
    pendingTime: '2026-12-07T00:00:00Z',
  };
  const state = (opts?: Partial<{ httpTokens: 'optional' | 'required'; httpEndpoint: 'enabled' | 'disabled' }>): ZoneNetworkState => ({
    zone: 'koala-1a',
    version: 1,
    subnet: '10.9.0.0/24',
    dnsSuffix: 'koala-1.compute.internal',
    nodes: [{ node: 'n1', address: '10.9.0.2' }],
    interfaces: [
      {
        instanceId: 'i-0000000a',
        node: 'n1',
        mac: '02:00:00:00:00:0a',
        privateIp: '10.9.0.10',
        groupIds: [],
        ...(opts ? { metadataOptions: { httpTokens: 'optional', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled', ...opts } } : {}),
      },
      { instanceId: 'i-0000000b', node: 'n2', mac: '02:00:00:00:00:0b', privateIp: '10.9.0.11', groupIds: [] },
    ],
    groups: [],
    generatedAt: '',
  });
  const ctx = (s = state()): ImdsContext => ({
    node: 'n1',
    region: 'koala-1',
    state: s,
    record: async (id) => (id === record.instanceId ? record : id === 'i-0000000b' ? { ...record, instanceId: 'i-0000000b' } : undefined),
    tokens: new ImdsTokens(clock),
  });
  const req = (method: string, url: string, headers: ImdsRequest['headers'] = {}, sourceIp = '10.9.0.10'): ImdsRequest => ({ method, url, headers, sourceIp });
  const text = (r: { body: Buffer }) => r.body.toString();

  it('v1: a GET without a token when tokens are optional', async () => {
    const r = await answerImds(req('GET', '/latest/meta-data/instance-id'), ctx());
    expect([r.status, text(r), r.headers.server]).toEqual([200, 'i-0000000a', 'EC2ws']);
    expect(r.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBeUndefined();
  });

  it('v2: PUT a token, GET with it (remaining TTL echoed), 401 once expired', async () => {
    const c = ctx();
    const put = await answerImds(req('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '30' }), c);
    expect(put.status).toBe(200);
    expect(put.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe('30');
    const token = text(put);
    const get = await answerImds(req('GET', '/latest/meta-data/instance-id', { 'x-aws-ec2-metadata-token': token }), c);
    expect([get.status, text(get), get.headers['x-aws-ec2-metadata-token-ttl-seconds']]).toEqual([200, 'i-0000000a', '30']);
    clock.t += 31_000;
    const late = await answerImds(req('GET', '/latest/meta-data/instance-id', { 'x-aws-ec2-metadata-token': token }), c);
    expect(late.status).toBe(401);
    expect(text(late)).toContain('401 - Unauthorized');
  });

  it('PUT: TTL missing or out of bounds → 400; X-Forwarded-For → 403; GET on the token path → 405', async () => {
    const c = ctx();
    expect((await answerImds(req('PUT', '/latest/api/token'), c)).status).toBe(400);
    expect((await answerImds(req('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '0' }), c)).status).toBe(400);
    expect((await answerImds(req('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '21601' }), c)).status).toBe(400);
    expect((await answerImds(req('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' }), c)).status).toBe(200);
    const xff = await answerImds(req('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '10.9.0.10' }), c);
    expect(xff.status).toBe(403);
    expect((await answerImds(req('GET', '/latest/api/token'), c)).status).toBe(405);
    expect((await answerImds(req('POST', '/latest/meta-data/'), c)).status).toBe(405);
    expect((await answerImds(req('PUT', '/latest/meta-data/'), c)).status).toBe(405);
  });

  it('a token of another instance, or garbage, → 401', async () => {
    const c = ctx();
    const other = text(await answerImds(req('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, '10.9.0.11'), { ...c, node: 'n2' }));
    expect((await answerImds(req('GET', '/latest/meta-data/', { 'x-aws-ec2-metadata-token': other }), c)).status).toBe(401);
    expect((await answerImds(req('GET', '/latest/meta-data/', { 'x-aws-ec2-metadata-token': 'nope' }), c)).status).toBe(401);
  });

  it('httpTokens=required: a GET without a token → 401, with one → 200', async () => {
    const c = ctx(state({ httpTokens: 'required' }));
    expect((await answerImds(req('GET', '/latest/meta-data/instance-id'), c)).status).toBe(401);
    const token = text(await answerImds(req('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }), c));
    expect((await answerImds(req('GET', '/latest/meta-data/instance-id', { 'x-aws-ec2-metadata-token': token }), c)).status).toBe(200);
  });

  it('httpEndpoint=disabled → 404 for everything, tokens too', async () => {
    const c = ctx(state({ httpEndpoint: 'disabled' }));
    expect((await answerImds(req('GET', '/latest/meta-data/instance-id'), c)).status).toBe(404);
    expect((await answerImds(req('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }), c)).status).toBe(404);
  });

  it("unknown callers, other nodes' instances, no state yet, no launch record → 404", async () => {
    expect((await answerImds(req('GET', '/latest/meta-data/instance-id', {}, '10.9.0.99'), ctx())).status).toBe(404);
    expect((await answerImds(req('GET', '/latest/meta-data/instance-id', {}, '10.9.0.11'), ctx())).status).toBe(404);
    expect((await answerImds(req('GET', '/latest/meta-data/instance-id'), { ...ctx(), state: undefined })).status).toBe(404);
    expect((await answerImds(req('GET', '/latest/meta-data/instance-id'), { ...ctx(), record: async () => undefined })).status).toBe(404);
  });

  it("user-data absent, unknown paths → 404 with EC2's page; a query string is ignored", async () => {
    const u = await answerImds(req('GET', '/latest/user-data'), ctx());
    expect([u.status, u.headers['content-type']]).toEqual([404, 'text/html']);
    expect(text(u)).toContain('<title>404 - Not Found</title>');
    expect((await answerImds(req('GET', '/latest/meta-data/nope'), ctx())).status).toBe(404);
    expect(text(await answerImds(req('GET', '/latest/meta-data/ami-id?x=1'), ctx()))).toBe('emi-00000001');
  });
});
