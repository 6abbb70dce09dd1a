import { createHash, createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import aws4 from 'aws4';
import { SignatureV4 } from '@smithy/signature-v4';
import { Ec2Error } from '@koala/ec2-query';
import { verifyRequest, type AccessKeyRecord, type SignedRequest } from './verify.js';

const run = promisify(execFile);

const AKID = 'AKIAKOALATEST0000001';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const INACTIVE = 'AKIAKOALAINACTIVE001';
const HOST = '127.0.0.1:8773';
const BODY = 'Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0&Filter.1.Name=tag%3AName&Filter.1.Value.1=a%20b*';

interface Key extends AccessKeyRecord {
  accountId: string;
}
const keys: Record<string, Key> = {
  [AKID]: { secret: SECRET, active: true, accountId: '000000000001' },
  [INACTIVE]: { secret: SECRET, active: false, accountId: '000000000002' },
};
const lookup = async (id: string) => keys[id];

async function code(p: Promise<unknown>): Promise<[string, number]> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Ec2Error) return [e.code, e.httpStatus];
    throw e;
  }
  return ['none', 0];
}

function lower(h: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = String(v);
  return out;
}

/** Build a SignedRequest from a URL + headers + body, as the HTTP layer will. */
function fromUrl(method: string, url: string, headers: Record<string, unknown>, body: string | Buffer = ''): SignedRequest {
  const u = new URL(url);
  const h = lower(headers);
  h.host ??= u.host;
  return { method, path: u.pathname, query: u.search.slice(1), headers: h, rawBody: Buffer.isBuffer(body) ? body : Buffer.from(body) };
}

// ------------------------------------------------------------------ signers

function signAws4(opts: { region?: string; service?: string; body?: string; secret?: string; akid?: string; path?: string; date?: Date } = {}): SignedRequest {
  const req: aws4.Request & { headers: Record<string, string> } = {
    host: HOST,
    method: 'POST',
    path: opts.path ?? '/',
    service: opts.service ?? 'ec2',
    region: opts.region ?? 'eucalyptus',
    body: opts.body ?? BODY,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' },
  };
  if (opts.date)
    req.headers['X-Amz-Date'] = opts.date
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
  aws4.sign(req, { accessKeyId: opts.akid ?? AKID, secretAccessKey: opts.secret ?? SECRET });
  return fromUrl('POST', `http://${HOST}${req.path}`, req.headers, opts.body ?? BODY);
}

class NodeSha256 {
  private readonly h;
  constructor(secret?: unknown) {
    this.h = secret ? createHmac('sha256', Buffer.from(secret as Uint8Array | string)) : createHash('sha256');
  }
  update(d: Uint8Array | string): void {
    this.h.update(typeof d === 'string' ? Buffer.from(d) : d);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

function smithySigner(region = 'us-east-1') {
  return new SignatureV4({
    credentials: { accessKeyId: AKID, secretAccessKey: SECRET },
    region,
    service: 'ec2',
    sha256: NodeSha256 as never,
  });
}

function queryString(q: Record<string, unknown>): string {
  return Object.entries(q)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
}

const BOTO_SIGN = `
import sys, json, datetime
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.auth import SigV4Auth, SigV4QueryAuth, SigV2Auth
kind, region, url, method, body = sys.argv[1:6]
creds = Credentials(sys.argv[6], sys.argv[7])
req = AWSRequest(method=method, url=url, data=body or None,
                 headers={'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'} if body else {})
if True:
    if kind == 'v4': SigV4Auth(creds, 'ec2', region).add_auth(req)
    elif kind == 'v4q': SigV4QueryAuth(creds, 'ec2', region, expires=300).add_auth(req)
    else:
        from urllib.parse import parse_qsl
        if body:
            req.data = dict(parse_qsl(body, keep_blank_values=True))
        SigV2Auth(creds).add_auth(req)
p = req.prepare()
b = p.body or b''
if isinstance(b, str): b = b.encode()
print(json.dumps({'url': p.url, 'headers': dict(p.headers), 'body': b.decode()}))
`;

async function botoSign(
  kind: 'v4' | 'v4q' | 'v2',
  opts: { region?: string; url?: string; method?: string; body?: string; secret?: string } = {},
): Promise<{ req: SignedRequest; body: string; url: string }> {
  const url = opts.url ?? `http://${HOST}/`;
  const method = opts.method ?? 'POST';
  const body = opts.body ?? (method === 'POST' ? BODY : '');
  const { stdout } = await run('python3', ['-c', BOTO_SIGN, kind, opts.region ?? 'us-east-1', url, method, body, AKID, opts.secret ?? SECRET]);
  const r = JSON.parse(stdout) as { url: string; headers: Record<string, string>; body: string };
  return { req: fromUrl(method, r.url, r.headers, r.body), body: r.body, url: r.url };
}

// ------------------------------------------------------------------ tests

describe('verifyRequest — SigV4 Authorization header', () => {
  it('accepts aws4 signatures, returning the key record and scope', async () => {
    const r = await verifyRequest(signAws4(), lookup, new Date());
    expect(r).toMatchObject({ accessKeyId: AKID, signatureVersion: 4, kind: 'v4', region: 'eucalyptus', service: 'ec2' });
    expect(r.key.accountId).toBe('000000000001');
  });

  it('accepts any region name, including euca2ools undefined-<pid>', async () => {
    const r = await verifyRequest(signAws4({ region: 'undefined-31337' }), lookup, new Date());
    expect(r.region).toBe('undefined-31337');
  });

  it('accepts Eucalyptus service paths', async () => {
    await verifyRequest(signAws4({ path: '/services/compute' }), lookup, new Date());
    await verifyRequest(signAws4({ path: '/services/Eucalyptus/' }), lookup, new Date());
  });

  it('accepts @smithy/signature-v4 (AWS SDK v3) header signatures with x-amz-content-sha256', async () => {
    const signed = await smithySigner('undefined-42').sign(
      {
        method: 'POST',
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: 8773,
        path: '/',
        query: {},
        headers: {
          host: HOST,
          'content-type': 'application/x-www-form-urlencoded',
          'x-amz-content-sha256': createHash('sha256').update(BODY).digest('hex'),
        },
        body: BODY,
      },
      { signingDate: new Date() },
    );
    const r = await verifyRequest(fromUrl('POST', `http://${HOST}/`, signed.headers, BODY), lookup, new Date());
    expect(r.region).toBe('undefined-42');
  });

  it('accepts botocore SigV4Auth (POST and GET)', async () => {
    const post = await botoSign('v4', { region: 'eu-west-9' });
    expect((await verifyRequest(post.req, lookup, new Date())).region).toBe('eu-west-9');
    const get = await botoSign('v4', { method: 'GET', url: `http://${HOST}/?${BODY}` });
    expect((await verifyRequest(get.req, lookup, new Date())).kind).toBe('v4');
  });

  it('rejects a tampered body with SignatureDoesNotMatch 403', async () => {
    const r = signAws4();
    const tampered = { ...r, rawBody: Buffer.from(BODY.replace('i-0123456789abcdef0', 'i-0123456789abcdef1')) };
    expect(await code(verifyRequest(tampered, lookup, new Date()))).toEqual(['SignatureDoesNotMatch', 403]);
    const declared = { ...tampered, headers: { ...r.headers, 'x-amz-content-sha256': createHash('sha256').update(BODY).digest('hex') } };
    expect(await code(verifyRequest(declared, lookup, new Date()))).toEqual(['SignatureDoesNotMatch', 403]);
  });

  it('rejects a tampered signed header and a wrong secret', async () => {
    const r = signAws4();
    const h = { ...r.headers, host: 'evil.example:8773' };
    expect(await code(verifyRequest({ ...r, headers: h }, lookup, new Date()))).toEqual(['SignatureDoesNotMatch', 403]);
    expect(await code(verifyRequest(signAws4({ secret: SECRET.replace('w', 'W') }), lookup, new Date()))).toEqual(['SignatureDoesNotMatch', 403]);
  });

  it('rejects unknown and inactive keys with AuthFailure 401', async () => {
    expect(await code(verifyRequest(signAws4({ akid: 'AKIANOSUCHKEY0000000' }), lookup, new Date()))).toEqual(['AuthFailure', 401]);
    expect(await code(verifyRequest(signAws4({ akid: INACTIVE }), lookup, new Date()))).toEqual(['AuthFailure', 401]);
  });

  it('rejects requests more than 15 minutes from the server clock with RequestExpired 400', async () => {
    const now = new Date();
    const old = signAws4({ date: new Date(now.getTime() - 16 * 60_000) });
    expect(await code(verifyRequest(old, lookup, now))).toEqual(['RequestExpired', 400]);
    const future = signAws4({ date: new Date(now.getTime() + 16 * 60_000) });
    expect(await code(verifyRequest(future, lookup, now))).toEqual(['RequestExpired', 400]);
    const fine = signAws4({ date: new Date(now.getTime() - 14 * 60_000) });
    await expect(verifyRequest(fine, lookup, now)).resolves.toMatchObject({ accessKeyId: AKID });
    const boto = await botoSign('v4');
    expect(await code(verifyRequest(boto.req, lookup, new Date(Date.now() + 16 * 60_000)))).toEqual(['RequestExpired', 400]);
  });

  it('accepts any service and region in the scope the request is signed with (boto 2: 0/127, koala/compute)', async () => {
    const ip = await verifyRequest(signAws4({ region: '0', service: '127' }), lookup, new Date());
    expect(ip).toMatchObject({ region: '0', service: '127', kind: 'v4' });
    const named = await verifyRequest(signAws4({ region: 'koala', service: 'compute' }), lookup, new Date());
    expect(named).toMatchObject({ region: 'koala', service: 'compute' });
    expect(await code(verifyRequest(signAws4({ service: 'sts' }), lookup, new Date(), { services: ['ec2'] }))).toEqual(['SignatureDoesNotMatch', 403]);
    // the scope is signed: a request signed for one service and claimed for another is refused
    const r = signAws4({ service: 'compute' });
    const auth = r.headers.authorization as string;
    const claimed = { ...r, headers: { ...r.headers, authorization: auth.replace('/compute/', '/ec2/') } };
    expect(await code(verifyRequest(claimed, lookup, new Date()))).toEqual(['SignatureDoesNotMatch', 403]);
    const old = signAws4({ region: '0', service: '127', date: new Date(Date.now() - 16 * 60_000) });
    expect(await code(verifyRequest(old, lookup, new Date()))).toEqual(['RequestExpired', 400]);
  });

  it('rejects a wrong service and malformed headers', async () => {
    const r = signAws4();
    const auth = r.headers.authorization as string;
    const wrongService = { ...r, headers: { ...r.headers, authorization: auth.replace('/ec2/', '/s3/') } };
    expect(await code(verifyRequest(wrongService, lookup, new Date()))).toEqual(['SignatureDoesNotMatch', 403]);
    const noSig = { ...r, headers: { ...r.headers, authorization: auth.replace(/Signature=.*/, '') } };
    expect(await code(verifyRequest(noSig, lookup, new Date()))).toEqual(['IncompleteSignature', 400]);
    const other = { ...r, headers: { ...r.headers, authorization: 'AWS AKID:abc' } };
    expect(await code(verifyRequest(other, lookup, new Date()))).toEqual(['IncompleteSignature', 400]);
  });

  it('rejects requests without credentials with MissingAuthenticationToken 401', async () => {
    const r = fromUrl('POST', `http://${HOST}/`, {}, BODY);
    expect(await code(verifyRequest(r, lookup, new Date()))).toEqual(['MissingAuthenticationToken', 401]);
  });
});

describe('verifyRequest — presigned SigV4', () => {
  it('accepts botocore SigV4QueryAuth', async () => {
    const { req } = await botoSign('v4q', { method: 'GET', url: `http://${HOST}/?${BODY}`, region: 'undefined-7' });
    const r = await verifyRequest(req, lookup, new Date());
    expect(r).toMatchObject({ kind: 'v4-presigned', region: 'undefined-7', signatureVersion: 4 });
  });

  it('accepts @smithy/signature-v4 presign', async () => {
    const p = await smithySigner().presign(
      { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 8773, path: '/', query: Object.fromEntries(new URLSearchParams(BODY)), headers: { host: HOST } },
      { expiresIn: 300, signingDate: new Date() },
    );
    const req = fromUrl('GET', `http://${HOST}/?${queryString(p.query as Record<string, unknown>)}`, p.headers);
    await expect(verifyRequest(req, lookup, new Date())).resolves.toMatchObject({ kind: 'v4-presigned', accessKeyId: AKID });
  });

  it('rejects expired URLs with RequestExpired and tampered queries with SignatureDoesNotMatch', async () => {
    const now = new Date();
    const { req } = await botoSign('v4q', { method: 'GET', url: `http://${HOST}/?${BODY}` });
    expect(await code(verifyRequest(req, lookup, new Date(Date.now() + 302_000)))).toEqual(['RequestExpired', 400]);
    await expect(verifyRequest(req, lookup, new Date(Date.now() + 240_000))).resolves.toMatchObject({ kind: 'v4-presigned' });
    const fresh = (await botoSign('v4q', { method: 'GET', url: `http://${HOST}/?${BODY}` })).req;
    const tampered = { ...fresh, query: fresh.query.replace('DescribeInstances', 'TerminateInstances') };
    expect(await code(verifyRequest(tampered, lookup, now))).toEqual(['SignatureDoesNotMatch', 403]);
    const inactive = { ...fresh, query: fresh.query.replace(AKID, INACTIVE) };
    expect(await code(verifyRequest(inactive, lookup, now))).toEqual(['AuthFailure', 401]);
  });
});

function signV2(method: 'HmacSHA1' | 'HmacSHA256', params: Record<string, string>, secret = SECRET, httpMethod = 'GET', path = '/'): Record<string, string> {
  const p: Record<string, string> = { ...params, AWSAccessKeyId: params.AWSAccessKeyId ?? AKID, SignatureVersion: '2', SignatureMethod: method };
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  const qs = Object.keys(p)
    .sort()
    .map((k) => `${enc(k)}=${enc(p[k]!)}`)
    .join('&');
  const sts = `${httpMethod}\n${HOST}\n${path}\n${qs}`;
  p.Signature = createHmac(method === 'HmacSHA1' ? 'sha1' : 'sha256', secret)
    .update(sts)
    .digest('base64');
  return p;
}

describe('verifyRequest — SigV2', () => {
  const base = { Action: 'DescribeInstances', Version: '2016-11-15', 'InstanceId.1': 'i-1', 'Filter.1.Value.1': 'a b*~' };

  it('accepts hand-built HmacSHA1 and HmacSHA256 in the query string', async () => {
    for (const m of ['HmacSHA1', 'HmacSHA256'] as const) {
      const p = signV2(m, { ...base, Timestamp: new Date().toISOString() });
      const r = await verifyRequest(fromUrl('GET', `http://${HOST}/?${queryString(p)}`, {}), lookup, new Date());
      expect(r).toMatchObject({ kind: 'v2', signatureVersion: 2, accessKeyId: AKID });
    }
  });

  it('accepts Expires instead of Timestamp, and a POST form body on a Eucalyptus path', async () => {
    const p = signV2('HmacSHA256', { ...base, Expires: new Date(Date.now() + 60_000).toISOString() }, SECRET, 'POST', '/services/compute');
    const r = fromUrl('POST', `http://${HOST}/services/compute`, { 'content-type': 'application/x-www-form-urlencoded' }, queryString(p));
    await expect(verifyRequest(r, lookup, new Date())).resolves.toMatchObject({ kind: 'v2' });
    const gone = signV2('HmacSHA256', { ...base, Expires: new Date(Date.now() - 1000).toISOString() });
    expect(await code(verifyRequest(fromUrl('GET', `http://${HOST}/?${queryString(gone)}`, {}), lookup, new Date()))).toEqual(['RequestExpired', 400]);
  });

  it('accepts botocore SigV2Auth', async () => {
    const { req } = await botoSign('v2');
    await expect(verifyRequest(req, lookup, new Date())).resolves.toMatchObject({ kind: 'v2' });
  });

  it('rejects wrong secret, tampering, old timestamps, unknown and inactive keys', async () => {
    const now = new Date();
    const url = (p: Record<string, string>) => fromUrl('GET', `http://${HOST}/?${queryString(p)}`, {});
    const wrong = signV2('HmacSHA1', { ...base, Timestamp: now.toISOString() }, 'x'.repeat(40));
    expect(await code(verifyRequest(url(wrong), lookup, now))).toEqual(['SignatureDoesNotMatch', 403]);
    const ok = signV2('HmacSHA256', { ...base, Timestamp: now.toISOString() });
    expect(await code(verifyRequest(url({ ...ok, 'InstanceId.1': 'i-2' }), lookup, now))).toEqual(['SignatureDoesNotMatch', 403]);
    const old = signV2('HmacSHA256', { ...base, Timestamp: new Date(now.getTime() - 16 * 60_000).toISOString() });
    expect(await code(verifyRequest(url(old), lookup, now))).toEqual(['RequestExpired', 400]);
    const unknown = signV2('HmacSHA256', { ...base, Timestamp: now.toISOString(), AWSAccessKeyId: 'AKIANOSUCHKEY0000000' });
    expect(await code(verifyRequest(url(unknown), lookup, now))).toEqual(['AuthFailure', 401]);
    const inactive = signV2('HmacSHA256', { ...base, Timestamp: now.toISOString(), AWSAccessKeyId: INACTIVE });
    expect(await code(verifyRequest(url(inactive), lookup, now))).toEqual(['AuthFailure', 401]);
    const v1 = { ...ok, SignatureVersion: '1' };
    expect((await code(verifyRequest(url(v1), lookup, now)))[0]).toBe('InvalidParameterValue');
    const md5 = { ...ok, SignatureMethod: 'HmacMD5' };
    expect((await code(verifyRequest(url(md5), lookup, now)))[0]).toBe('InvalidParameterValue');
  });
});

describe('verifyRequest — hostile shapes (edge hardening)', () => {
  const base = { Action: 'DescribeInstances', Version: '2016-11-15' };
  const counting = () => {
    const seen: string[] = [];
    return { seen, lookup: async (id: string) => (seen.push(id), keys[id]) };
  };

  it('refuses an access key id that cannot be one (NUL, lower case, too long) with AuthFailure, without a lookup', async () => {
    const now = new Date();
    for (const bad of [`AKIA${'\u0000'}0000000000000000`, 'akiakoalatest0000001', 'A'.repeat(200)]) {
      const c = counting();
      const p = signV2('HmacSHA256', { ...base, Timestamp: now.toISOString(), AWSAccessKeyId: bad });
      expect(await code(verifyRequest(fromUrl('GET', `http://${HOST}/?${queryString(p)}`, {}), c.lookup, now))).toEqual(['AuthFailure', 401]);
      const presigned = fromUrl(
        'GET',
        `http://${HOST}/?${queryString({ ...base, 'X-Amz-Algorithm': 'AWS4-HMAC-SHA256', 'X-Amz-Credential': `${bad}/20260101/r/ec2/aws4_request`, 'X-Amz-Date': '20260101T000000Z', 'X-Amz-Expires': '60', 'X-Amz-SignedHeaders': 'host', 'X-Amz-Signature': 'a'.repeat(64) })}`,
        {},
      );
      expect(await code(verifyRequest(presigned, c.lookup, new Date('2026-01-01T00:00:10Z')))).toEqual(['AuthFailure', 401]);
      expect(c.seen).toEqual([]);
    }
  });

  it('caps SigV2 Expires at 15 minutes after the request time', async () => {
    const now = new Date();
    const far = signV2('HmacSHA256', { ...base, Expires: '2099-01-01T00:00:00Z' });
    expect(await code(verifyRequest(fromUrl('GET', `http://${HOST}/?${queryString(far)}`, {}), lookup, now))).toEqual(['InvalidParameterValue', 400]);
    const near = signV2('HmacSHA256', { ...base, Expires: new Date(now.getTime() + 14 * 60_000).toISOString() });
    await expect(verifyRequest(fromUrl('GET', `http://${HOST}/?${queryString(near)}`, {}), lookup, now)).resolves.toMatchObject({ kind: 'v2' });
  });

  it('caps presigned X-Amz-Expires at maxPresignSeconds', async () => {
    const { req } = await botoSign('v4q', { method: 'GET', url: `http://${HOST}/?${BODY}` }); // expires=300
    await expect(verifyRequest(req, lookup, new Date(), { maxPresignSeconds: 300 })).resolves.toMatchObject({ kind: 'v4-presigned' });
    expect(await code(verifyRequest(req, lookup, new Date(), { maxPresignSeconds: 299 }))).toEqual(['InvalidParameterValue', 400]);
  });

  it('reads a SigV2 body only when the media type is form data (not merely containing it)', async () => {
    const p = signV2('HmacSHA256', { ...base, Timestamp: new Date().toISOString() }, SECRET, 'POST');
    const req = fromUrl('POST', `http://${HOST}/`, { 'content-type': 'text/plain; x=application/x-www-form-urlencoded' }, queryString(p));
    expect(await code(verifyRequest(req, lookup, new Date()))).toEqual(['InvalidParameterValue', 400]);
  });
});
