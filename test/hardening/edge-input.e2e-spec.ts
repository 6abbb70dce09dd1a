// Hostile input at the EC2 endpoint's edge: NUL bytes, control characters and over-long values
// get InvalidParameterValue (never a 500 from PostgreSQL), malformed access key ids are
// AuthFailure before any lookup, SigV2 and dispatch read the same parameters, SigV2 Expires and
// presigned lifetimes are bounded.
import { createHmac } from 'node:crypto';
import { startCloud, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { errorOf, presignedPath, send, sigv4, type RawResponse } from '../api/signed-http.js';

let cloud: TestCloud;
let alice: TestCredentials;
const V = '2016-11-15';

beforeAll(async () => {
  cloud = await startCloud({ env: { KOALA_PRESIGN_MAX_SECONDS: '3600' } });
  alice = await cloud.createAccount('alice');
}, 30_000);
afterAll(async () => cloud?.close());

const NUL = '\u0000';
const LONG = 'x'.repeat(5000);

async function expectInvalid(r: RawResponse, code = 'InvalidParameterValue') {
  expect({ status: r.status, body: r.body }).toMatchObject({ status: 400 });
  const e = await errorOf(r);
  expect(e.code).toBe(code);
  expect(e.requestId).toBe(r.headers['x-amzn-requestid']);
  expect(r.body).not.toMatch(/\u0000|INSERT|SELECT/);
}

const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

/** A SigV2 POST with `params` and an optional Content-Type / extra query string. */
function sigv2(creds: TestCredentials, params: Record<string, string>, opts: { contentType?: string; time?: Record<string, string> } = {}) {
  const u = new URL(cloud.endpoint);
  const all: Record<string, string> = {
    ...params,
    AWSAccessKeyId: creds.accessKeyId,
    SignatureVersion: '2',
    SignatureMethod: 'HmacSHA256',
    ...(opts.time ?? { Timestamp: new Date().toISOString() }),
  };
  const canonical = Object.keys(all)
    .sort()
    .map((k) => `${rfc3986(k)}=${rfc3986(all[k]!)}`)
    .join('&');
  const signature = createHmac('sha256', creds.secretAccessKey).update(`POST\n${u.host}\n/\n${canonical}`).digest('base64');
  const body = `${canonical}&Signature=${rfc3986(signature)}`;
  return send(cloud.endpoint, { method: 'POST', path: '/', headers: { 'Content-Type': opts.contentType ?? 'application/x-www-form-urlencoded', Host: u.host }, body });
}

describe('NUL, control characters and over-long values', () => {
  const shapes: Array<[string, Record<string, string>]> = [
    ['CreateKeyPair KeyName NUL', { Action: 'CreateKeyPair', KeyName: `k${NUL}` }],
    ['CreateKeyPair KeyName long', { Action: 'CreateKeyPair', KeyName: LONG }],
    ['DeleteKeyPair KeyName NUL', { Action: 'DeleteKeyPair', KeyName: `k${NUL}` }],
    ['DescribeKeyPairs KeyName.1 NUL', { Action: 'DescribeKeyPairs', 'KeyName.1': `k${NUL}` }],
    ['DescribeKeyPairs Filter value NUL', { Action: 'DescribeKeyPairs', 'Filter.1.Name': 'key-name', 'Filter.1.Value.1': `a${NUL}` }],
    ['CreateSecurityGroup description NUL', { Action: 'CreateSecurityGroup', GroupName: 'g1', GroupDescription: `d${NUL}` }],
    ['CreateSecurityGroup name control char', { Action: 'CreateSecurityGroup', GroupName: 'g\u0001', GroupDescription: 'd' }],
    ['DescribeSecurityGroups GroupName.1 NUL', { Action: 'DescribeSecurityGroups', 'GroupName.1': `g${NUL}` }],
    ['DeleteSecurityGroup GroupName NUL', { Action: 'DeleteSecurityGroup', GroupName: `g${NUL}` }],
    ['CreateTags Value NUL', { Action: 'CreateTags', 'ResourceId.1': 'sg-12345678', 'Tag.1.Key': 'k', 'Tag.1.Value': `v${NUL}` }],
    ['DescribeTags Filter NUL', { Action: 'DescribeTags', 'Filter.1.Name': 'key', 'Filter.1.Value.1': `k${NUL}` }],
    ['DescribeInstances Filter NUL', { Action: 'DescribeInstances', 'Filter.1.Name': 'tag:Name', 'Filter.1.Value.1': `n${NUL}` }],
    ['DescribeVolumes Filter NUL', { Action: 'DescribeVolumes', 'Filter.1.Name': 'status', 'Filter.1.Value.1': `a${NUL}` }],
    ['DescribeImages Owner NUL', { Action: 'DescribeImages', 'Owner.1': `o${NUL}` }],
    ['DescribeAvailabilityZones ZoneName NUL', { Action: 'DescribeAvailabilityZones', 'ZoneName.1': `z${NUL}` }],
    ['NextToken NUL', { Action: 'DescribeVolumes', NextToken: `t${NUL}` }],
    ['parameter name with NUL', { Action: 'DescribeRegions', [`Region${NUL}Name.1`]: 'x' }],
    ['Filter value long', { Action: 'DescribeInstances', 'Filter.1.Name': 'tag:Name', 'Filter.1.Value.1': LONG }],
    // stored unchecked into varchar(32): a 500 before; refused at the edge, and by the database-error mapping without it
    ['CreateSecurityGroup VpcId longer than its column', { Action: 'CreateSecurityGroup', GroupName: 'g2', GroupDescription: 'd', VpcId: `vpc-${'0'.repeat(40)}` }],
  ];
  it.each(shapes)('%s → InvalidParameterValue', async (_name, params) => {
    await expectInvalid(await sigv4(cloud.endpoint, alice, { ...params, Version: V }));
  });

  it('lets tabs and newlines through to the handler (descriptions, PEM text)', async () => {
    const r = await sigv4(cloud.endpoint, alice, { Action: 'DescribeKeyPairs', 'KeyName.1': 'line one\tand\nline two', Version: V });
    expect(r.status).toBe(400);
    expect((await errorOf(r)).code).toBe('InvalidKeyPair.NotFound');
  });
});

describe('access key ids that cannot be ours', () => {
  it('presigned URL with %00 in the access key id → AuthFailure (401)', async () => {
    const path = presignedPath(cloud.endpoint, { ...alice, accessKeyId: `AKIA${NUL}XXXXXXXXXXXXXXX` }, { Action: 'DescribeRegions', Version: V }, 60);
    const r = await send(cloud.endpoint, { method: 'GET', path });
    expect(r.status).toBe(401);
    expect((await errorOf(r)).code).toBe('AuthFailure');
  });

  it('SigV2 with %00 in AWSAccessKeyId → AuthFailure (401)', async () => {
    const r = await sigv2({ ...alice, accessKeyId: `${NUL}` }, { Action: 'DescribeRegions', Version: V });
    expect(r.status).toBe(401);
    expect((await errorOf(r)).code).toBe('AuthFailure');
  });

  it('SigV4 header with a 5000-character access key id → AuthFailure (401)', async () => {
    const r = await sigv4(cloud.endpoint, { ...alice, accessKeyId: 'A'.repeat(5000) }, { Action: 'DescribeRegions', Version: V });
    expect([400, 401]).toContain(r.status);
  });
});

describe('one reading of the parameters for SigV2 and dispatch', () => {
  it('refuses a signed SigV2 body replayed with a Content-Type that merely contains the form type', async () => {
    const r = await sigv2(alice, { Action: 'DescribeKeyPairs', 'KeyName.1': 'nope', Version: V }, { contentType: 'text/plain; x=application/x-www-form-urlencoded' });
    await expectInvalid(r);
  });

  it('refuses a POST body that is not form data (SigV4)', async () => {
    const u = new URL(cloud.endpoint);
    const r = await send(cloud.endpoint, { method: 'POST', path: '/', headers: { 'Content-Type': 'application/json', Host: u.host }, body: '{"Action":"DescribeRegions"}' });
    await expectInvalid(r);
  });

  it('still accepts form data with a charset', async () => {
    const r = await sigv2(alice, { Action: 'DescribeRegions', Version: V }, { contentType: 'application/x-www-form-urlencoded; charset=utf-8' });
    expect(r.status).toBe(200);
  });
});

describe('signature lifetimes', () => {
  it('SigV2 Expires far in the future is refused', async () => {
    const r = await sigv2(alice, { Action: 'DescribeRegions', Version: V }, { time: { Expires: '2099-01-01T00:00:00Z' } });
    await expectInvalid(r);
  });

  it('SigV2 Expires within 15 minutes is accepted', async () => {
    const r = await sigv2(alice, { Action: 'DescribeRegions', Version: V }, { time: { Expires: new Date(Date.now() + 5 * 60_000).toISOString() } });
    expect(r.status).toBe(200);
  });

  it('presigned URLs live at most KOALA_PRESIGN_MAX_SECONDS', async () => {
    const ok = await send(cloud.endpoint, { method: 'GET', path: presignedPath(cloud.endpoint, alice, { Action: 'DescribeRegions', Version: V }, 3600) });
    expect(ok.status).toBe(200);
    const tooLong = await send(cloud.endpoint, { method: 'GET', path: presignedPath(cloud.endpoint, alice, { Action: 'DescribeRegions', Version: V }, 3601) });
    await expectInvalid(tooLong);
  });
});
