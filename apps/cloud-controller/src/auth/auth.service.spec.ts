// AuthService on a fake AccessKeyResolver: requests signed as the clients sign them (SigV4
// header, SigV4 presigned, SigV2) become the Caller of the key's account; unknown and inactive
// keys, wrong secrets, stale requests and presigned URLs living longer than
// KOALA_PRESIGN_MAX_SECONDS are refused with EC2's codes. Every signature form is
// libs/aws-auth's verify.spec.ts; the real key table is test/api/auth.e2e-spec.ts.
import { createHmac } from 'node:crypto';
import aws4 from 'aws4';
import type { SignedRequest } from '@koala/aws-auth';
import { Ec2Error } from '@koala/ec2-query';
import type { ResolvedAccessKey } from '../accounts/accounts.service.js';
import { AuthService, type AccessKeyResolver } from './auth.service.js';

const HOST = '127.0.0.1:8773';
const ALICE_KEY = 'AKIAKOALAALICE000001';
const ADMIN_KEY = 'AKIAKOALAADMIN000001';
const OLD_KEY = 'AKIAKOALAINACTIVE001';
const SECRET = 'alice-secret-0123456789abcdefghijklmnopq';
const ADMIN_SECRET = 'admin-secret-0123456789abcdefghijklmnopq';
const BODY = 'Action=DescribeInstances&Version=2016-11-15';
const PRESIGN_MAX = 600;

class FakeKeys implements AccessKeyResolver {
  readonly asked: string[] = [];
  readonly keys = new Map<string, ResolvedAccessKey>([
    [ALICE_KEY, { secret: SECRET, active: true, account: { id: '111111111111', name: 'alice', isAdmin: false } }],
    [ADMIN_KEY, { secret: ADMIN_SECRET, active: true, account: { id: '000000000001', name: 'admin', isAdmin: true } }],
    [OLD_KEY, { secret: SECRET, active: false, account: { id: '111111111111', name: 'alice', isAdmin: false } }],
  ]);
  async resolveAccessKey(id: string) {
    this.asked.push(id);
    return this.keys.get(id);
  }
}

function request(method: string, path: string, headers: Record<string, unknown>, body = ''): SignedRequest {
  const u = new URL(`http://${HOST}${path}`);
  const h: Record<string, string> = { host: HOST };
  for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = String(v);
  return { method, path: u.pathname, query: u.search.slice(1), headers: h, rawBody: Buffer.from(body) };
}

/** SigV4 in the Authorization header, as the SDKs send a POST. */
function signedV4(akid = ALICE_KEY, secret = SECRET): SignedRequest {
  const r = {
    host: HOST,
    method: 'POST',
    path: '/',
    service: 'ec2',
    region: 'eucalyptus',
    body: BODY,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' } as Record<string, string>,
  };
  aws4.sign(r, { accessKeyId: akid, secretAccessKey: secret });
  return request('POST', '/', r.headers, BODY);
}

/** A presigned GET URL living `expires` seconds. */
function presigned(expires: number): SignedRequest {
  const r = { host: HOST, method: 'GET', path: `/?${BODY}&X-Amz-Expires=${expires}`, service: 'ec2', region: 'eucalyptus', signQuery: true, headers: {} as Record<string, string> };
  aws4.sign(r, { accessKeyId: ALICE_KEY, secretAccessKey: SECRET });
  return request('GET', r.path, {});
}

/** SigV2 (HmacSHA256) in the query string, as boto 2 and euca2ools send it. */
function signedV2(akid = ALICE_KEY, secret = SECRET): SignedRequest {
  const p: Record<string, string> = {
    Action: 'DescribeInstances',
    Version: '2016-11-15',
    AWSAccessKeyId: akid,
    SignatureVersion: '2',
    SignatureMethod: 'HmacSHA256',
    Timestamp: new Date().toISOString(),
  };
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const canonical = Object.keys(p)
    .sort()
    .map((k) => `${enc(k)}=${enc(p[k]!)}`)
    .join('&');
  const signature = createHmac('sha256', secret).update(`GET\n${HOST}\n/\n${canonical}`).digest('base64');
  return request('GET', `/?${canonical}&Signature=${enc(signature)}`, {});
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Ec2Error) return e.code;
    throw e;
  }
  return 'none';
}

let keys: FakeKeys;
let auth: AuthService;

beforeEach(() => {
  keys = new FakeKeys();
  auth = new AuthService(keys, { presignMaxSeconds: PRESIGN_MAX });
});

describe('AuthService.authenticate', () => {
  it('a SigV4-signed request is its key’s account, with the key and the signature version', async () => {
    expect(await auth.authenticate(signedV4(), new Date())).toEqual({ accessKeyId: ALICE_KEY, account: { id: '111111111111', name: 'alice', isAdmin: false }, signatureVersion: 4 });
    expect(keys.asked).toEqual([ALICE_KEY]);
    expect((await auth.authenticate(signedV4(ADMIN_KEY, ADMIN_SECRET), new Date())).account).toEqual({ id: '000000000001', name: 'admin', isAdmin: true });
  });

  it('a SigV2-signed request says version 2', async () => {
    expect(await auth.authenticate(signedV2(), new Date())).toMatchObject({ accessKeyId: ALICE_KEY, account: { name: 'alice' }, signatureVersion: 2 });
  });

  it('unknown and inactive keys are AuthFailure; a wrong secret is SignatureDoesNotMatch', async () => {
    expect(await codeOf(auth.authenticate(signedV4('AKIAKOALANOSUCHKEY01'), new Date()))).toBe('AuthFailure');
    expect(await codeOf(auth.authenticate(signedV4(OLD_KEY), new Date()))).toBe('AuthFailure');
    expect(await codeOf(auth.authenticate(signedV2(OLD_KEY), new Date()))).toBe('AuthFailure');
    expect(await codeOf(auth.authenticate(signedV4(ALICE_KEY, ADMIN_SECRET), new Date()))).toBe('SignatureDoesNotMatch');
  });

  it('judges the request’s time against the `now` it is given', async () => {
    const req = signedV4();
    expect(await codeOf(auth.authenticate(req, new Date(Date.now() + 20 * 60_000)))).toBe('RequestExpired');
    expect(await codeOf(auth.authenticate(req, new Date(Date.now() + 60_000)))).toBe('none');
  });

  it('presigned URLs may live at most KOALA_PRESIGN_MAX_SECONDS', async () => {
    expect(await auth.authenticate(presigned(PRESIGN_MAX), new Date())).toMatchObject({ accessKeyId: ALICE_KEY, signatureVersion: 4 });
    expect(await codeOf(auth.authenticate(presigned(PRESIGN_MAX + 1), new Date()))).toBe('InvalidParameterValue');
    // within its life, then expired
    expect(await codeOf(auth.authenticate(presigned(60), new Date(Date.now() + 30_000)))).toBe('none');
    expect(await codeOf(auth.authenticate(presigned(60), new Date(Date.now() + 120_000)))).toBe('RequestExpired');
  });
});
