import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Ec2Error, parsePairs, readRequestParams, type RequestParams } from '@koala/ec2-query';
import { isAccessKeyId } from './secrets.js';

/** What the HTTP layer hands to `verifyRequest`. */
export interface SignedRequest {
  /** HTTP method, e.g. `POST`. */
  method: string;
  /** Request path as received on the wire (percent-encoded, without the query), e.g. `/` or `/services/compute`. */
  path: string;
  /** Raw query string without `?` ('' when none). */
  query: string;
  /** Headers with lower-cased names (Node's `req.headers`). */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The exact body bytes received. */
  rawBody: Buffer;
  /**
   * The request's parameters as the endpoint dispatches them (`readRequestParams`); SigV2 is
   * verified over exactly these. Read from the request when absent.
   */
  params?: RequestParams;
}

/** Minimal shape of what the secret lookup returns; extra fields (account id, user…) are passed through. */
export interface AccessKeyRecord {
  /** Plain-text secret access key. */
  secret: string;
  /** Inactive keys are refused with `AuthFailure`. */
  active: boolean;
}

/** Looks up the key; undefined when unknown. Must not log the secret. */
export type SecretLookup<K extends AccessKeyRecord = AccessKeyRecord> = (accessKeyId: string) => Promise<K | undefined>;

export type SignatureKind = 'v4' | 'v4-presigned' | 'v2';

/** Result of a successful verification. */
export interface VerifiedRequest<K extends AccessKeyRecord = AccessKeyRecord> {
  accessKeyId: string;
  /** 4 for SigV4 (header or presigned), 2 for SigV2. */
  signatureVersion: 2 | 4;
  kind: SignatureKind;
  /** Region from the SigV4 credential scope (any name accepted); undefined for SigV2. */
  region?: string;
  /** Service from the SigV4 credential scope; undefined for SigV2. */
  service?: string;
  /** The record returned by the lookup (e.g. to find the account). */
  key: K;
}

export interface VerifyOptions {
  /** Allowed clock skew / request age, default 15 minutes. */
  maxSkewMs?: number;
  /**
   * Services accepted in the SigV4 scope; default (empty): any. The scope is part of what is
   * signed, so any region/service is safe to accept once the signature verifies with it (boto 2
   * derives both from the host name: `127/0` for 127.0.0.1).
   */
  services?: readonly string[];
  /** Longest accepted X-Amz-Expires of a presigned URL, default (and at most) 604800 s (7 days, as AWS). */
  maxPresignSeconds?: number;
}

const DEFAULT_SKEW_MS = 15 * 60 * 1000;
const MAX_PRESIGN_SECONDS = 604800;
const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

const authFailure = () => new Ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials');
const signatureMismatch = () =>
  new Ec2Error(
    'SignatureDoesNotMatch',
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
  );
const incomplete = (why: string) => new Ec2Error('IncompleteSignature', why);
const expired = (what: string) => new Ec2Error('RequestExpired', `Request has expired. ${what}`.trim());

/** RFC 3986 encoding (unreserved A-Z a-z 0-9 - _ . ~ kept). */
export function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function header(req: SignedRequest, name: string): string | undefined {
  const v = req.headers[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

function sha256hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** Constant-time comparison of two ASCII signatures (false on length mismatch). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** Parse `20260101T000000Z`. */
function parseAmzDate(s: string | undefined): Date | undefined {
  if (!s) return undefined;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m) return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  const t = Date.parse(s); // RFC 1123 `Date:` header fallback
  return Number.isNaN(t) ? undefined : new Date(t);
}

function toAmzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/**
 * The key, or `AuthFailure`. An id that cannot be one of ours (NUL, `%00`, 10 kB of text) is
 * refused before the lookup: it must never reach the database as a query parameter.
 */
async function lookupKey<K extends AccessKeyRecord>(lookup: SecretLookup<K>, accessKeyId: string): Promise<K> {
  if (!isAccessKeyId(accessKeyId)) throw authFailure();
  const key = await lookup(accessKeyId);
  if (!key || !key.active) throw authFailure();
  return key;
}

// ---------------------------------------------------------------- SigV4

interface V4Parts {
  accessKeyId: string;
  date: string; // yyyymmdd
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string;
}

function parseCredential(cred: string): Pick<V4Parts, 'accessKeyId' | 'date' | 'region' | 'service'> {
  const parts = cred.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1]!) || !parts[0] || !parts[2] || !parts[3]) {
    throw incomplete(`Credential should be scoped to a valid region, a valid service and aws4_request: ${cred.slice(0, 200)}`);
  }
  return { accessKeyId: parts[0]!, date: parts[1]!, region: parts[2]!, service: parts[3]! };
}

function canonicalPathCandidates(path: string): string[] {
  const p = path || '/';
  // Non-S3 services sign the path URI-encoded once more ("double encoding"); some signers don't.
  const enc =
    p === '/'
      ? '/'
      : p
          .split('/')
          .map((seg) => rfc3986(seg))
          .join('/');
  return enc === p ? [p] : [enc, p];
}

function canonicalQueryV4(pairs: Array<[string, string]>): string {
  return pairs
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as [string, string])
    .sort((a, b) => byteCompare(a[0], b[0]) || byteCompare(a[1], b[1]))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/**
 * The normalized canonical query (decode, RFC 3986 re-encode, sort) and, when different, the
 * query as sent with its pairs sorted (what botocore signs for a pre-encoded URL).
 */
function canonicalQueryCandidates(rawQuery: string, presigned: boolean): string[] {
  const raw = rawQuery.startsWith('?') ? rawQuery.slice(1) : rawQuery;
  const keep = (k: string) => !presigned || k !== 'X-Amz-Signature';
  const normalized = canonicalQueryV4(parsePairs(raw).filter(([k]) => keep(k)));
  const asSent = raw
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return (eq < 0 ? [p, ''] : [p.slice(0, eq), p.slice(eq + 1)]) as [string, string];
    })
    .filter(([k]) => keep(k))
    .sort((a, b) => byteCompare(a[0], b[0]) || byteCompare(a[1], b[1]))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return asSent === normalized ? [normalized] : [normalized, asSent];
}

function canonicalHeaders(req: SignedRequest, signed: string[]): string {
  let out = '';
  for (const name of signed) {
    const v = header(req, name);
    if (v === undefined) throw incomplete(`Signed header '${name}' is missing from the request`);
    out += `${name}:${v.trim().replace(/\s+/g, ' ')}\n`;
  }
  return out;
}

/**
 * Derived SigV4 signing keys of recently verified requests: a client signs with the same key all
 * day (secret, date, region, service), so four of the five HMACs per request can be skipped.
 * Only keys that verified a signature are kept (a stranger's made-up scopes never fill it); bounded.
 */
const signingKeys = new Map<string, Buffer>();

function signingKey(secret: string, date: string, region: string, service: string): { key: Buffer; remember: () => void } {
  const id = `${secret}\0${date}\0${region}\0${service}`;
  const hit = signingKeys.get(id);
  if (hit) return { key: hit, remember: () => undefined };
  const key = hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), 'aws4_request');
  return {
    key,
    remember: () => {
      if (signingKeys.size >= 1000) signingKeys.clear();
      signingKeys.set(id, key);
    },
  };
}

function checkScopeAndTime(p: V4Parts, now: Date, opts: Required<VerifyOptions>, presignExpires?: number): void {
  if (opts.services.length > 0 && !opts.services.includes(p.service)) {
    throw new Ec2Error('SignatureDoesNotMatch', `Credential should be scoped to correct service: '${opts.services[0]}'.`);
  }
  const when = parseAmzDate(p.amzDate);
  if (!when) throw incomplete('Invalid or missing X-Amz-Date');
  if (toAmzDate(when).slice(0, 8) !== p.date) {
    throw new Ec2Error('SignatureDoesNotMatch', `Credential should be scoped to a valid date: '${toAmzDate(when).slice(0, 8)}'.`);
  }
  const t = when.getTime();
  const n = now.getTime();
  if (presignExpires !== undefined) {
    if (t - n > opts.maxSkewMs) throw expired(`Signature not yet current: ${p.amzDate}`);
    if (n > t + presignExpires * 1000) throw expired(`Signature expired: ${p.amzDate} + ${presignExpires}s`);
  } else if (Math.abs(n - t) > opts.maxSkewMs) {
    throw expired(`Timestamp date is ${p.amzDate}, server time is ${toAmzDate(now)}`);
  }
}

async function verifyV4<K extends AccessKeyRecord>(req: SignedRequest, p: V4Parts, queryPairs: Array<[string, string]>, presigned: boolean, lookup: SecretLookup<K>): Promise<K> {
  const key = await lookupKey(lookup, p.accessKeyId);

  // Payload hash candidates.
  const bodyHash = sha256hex(req.rawBody);
  const declared = header(req, 'x-amz-content-sha256');
  let payloads: string[];
  if (declared !== undefined) {
    if (declared === UNSIGNED_PAYLOAD && req.rawBody.length === 0) payloads = [UNSIGNED_PAYLOAD];
    else if (declared.toLowerCase() === bodyHash) payloads = [declared];
    else throw signatureMismatch();
  } else if (presigned && req.rawBody.length === 0) payloads = [EMPTY_SHA256, UNSIGNED_PAYLOAD];
  else payloads = [bodyHash];

  const signedNames = p.signedHeaders;
  const hdrs = canonicalHeaders(req, signedNames);
  const queries = canonicalQueryCandidates(req.query, presigned);
  const scope = `${p.date}/${p.region}/${p.service}/aws4_request`;
  const { key: kSigning, remember } = signingKey(key.secret, p.date, p.region, p.service);
  let ok = false;
  for (const path of canonicalPathCandidates(req.path)) {
    for (const query of queries)
      for (const payload of payloads) {
        const canonical = [req.method.toUpperCase(), path, query, hdrs, signedNames.join(';'), payload].join('\n');
        const sts = ['AWS4-HMAC-SHA256', p.amzDate, scope, sha256hex(canonical)].join('\n');
        const sig = createHmac('sha256', kSigning).update(sts, 'utf8').digest('hex');
        // evaluate every candidate (no early exit) to keep timing independent of which matched
        ok = safeEqual(sig, p.signature.toLowerCase()) || ok;
      }
  }
  if (!ok) throw signatureMismatch();
  remember();
  return key;
}

function parseSignedHeaders(s: string | undefined): string[] {
  if (!s) throw incomplete('Authorization header requires a SignedHeaders parameter');
  const names = s.split(';').map((x) => x.trim().toLowerCase());
  if (names.some((x) => !x)) throw incomplete('Invalid SignedHeaders');
  if (!names.includes('host')) throw incomplete("SignedHeaders must include 'host'");
  return names;
}

function parseAuthorizationHeader(auth: string, req: SignedRequest): V4Parts {
  const rest = auth.slice('AWS4-HMAC-SHA256'.length).trim();
  const fields: Record<string, string> = {};
  for (const part of rest.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  if (!fields.Credential) throw incomplete('Authorization header requires a Credential parameter');
  if (!fields.Signature || !/^[0-9a-fA-F]{64}$/.test(fields.Signature)) {
    throw incomplete('Authorization header requires a valid Signature parameter');
  }
  const amzDate = header(req, 'x-amz-date') ?? header(req, 'date');
  if (!amzDate) throw incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header");
  return {
    ...parseCredential(fields.Credential),
    signedHeaders: parseSignedHeaders(fields.SignedHeaders),
    signature: fields.Signature,
    amzDate,
  };
}

// ---------------------------------------------------------------- SigV2

/** The parameters SigV2 signs: the same reading the endpoint dispatches (query first, first occurrence wins). */
function v2Params(req: SignedRequest): Map<string, string> {
  return new Map(Object.entries((req.params ?? readRequestParams(req)).map));
}

async function verifyV2<K extends AccessKeyRecord>(req: SignedRequest, params: Map<string, string>, lookup: SecretLookup<K>, now: Date, opts: Required<VerifyOptions>): Promise<VerifiedRequest<K>> {
  const method = params.get('SignatureMethod') ?? '';
  const algo = method === 'HmacSHA256' ? 'sha256' : method === 'HmacSHA1' ? 'sha1' : undefined;
  if (!algo) throw new Ec2Error('InvalidParameterValue', `Value (${method}) for parameter SignatureMethod is invalid.`);
  const accessKeyId = params.get('AWSAccessKeyId');
  if (!accessKeyId) throw new Ec2Error('MissingParameter', 'The request must contain the parameter AWSAccessKeyId');
  const signature = params.get('Signature') ?? '';
  const ts = params.get('Timestamp');
  const exp = params.get('Expires');
  if (ts === undefined && exp === undefined) throw new Ec2Error('MissingParameter', 'The request must contain the parameter Timestamp');
  if (ts !== undefined && exp !== undefined) {
    throw new Ec2Error('InvalidParameterCombination', 'The parameter Timestamp cannot be used with the parameter Expires');
  }
  const n = now.getTime();
  if (ts !== undefined) {
    const t = Date.parse(ts);
    if (Number.isNaN(t)) throw new Ec2Error('InvalidParameterValue', `Value (${ts}) for parameter Timestamp is invalid.`);
    if (Math.abs(n - t) > opts.maxSkewMs) throw expired(`Timestamp date is ${ts}`);
  } else {
    const t = Date.parse(exp!);
    if (Number.isNaN(t)) throw new Ec2Error('InvalidParameterValue', `Value (${exp}) for parameter Expires is invalid.`);
    if (n > t) throw expired(`Expires is ${exp}`);
    // Same window as Timestamp: a signature valid until 2099 is a bearer credential for life.
    if (t - n > opts.maxSkewMs) {
      throw new Ec2Error('InvalidParameterValue', `Value (${exp}) for parameter Expires is invalid. It must be at most ${opts.maxSkewMs / 60000} minutes after the request time.`);
    }
  }
  const key = await lookupKey(lookup, accessKeyId);

  const host = (header(req, 'host') ?? '').toLowerCase();
  const qs = [...params.entries()]
    .filter(([k]) => k !== 'Signature')
    .sort((a, b) => byteCompare(a[0], b[0]))
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .join('&');
  const sts = `${req.method.toUpperCase()}\n${host}\n${req.path || '/'}\n${qs}`;
  const expected = createHmac(algo, key.secret).update(sts, 'utf8').digest('base64');
  if (!safeEqual(expected, signature.replace(/ /g, '+'))) throw signatureMismatch();
  return { accessKeyId, signatureVersion: 2, kind: 'v2', key };
}

// ---------------------------------------------------------------- entry point

/**
 * Verify an EC2 request signed with SigV4 (Authorization header), presigned SigV4 (query) or
 * SigV2 (`SignatureVersion=2`, HmacSHA256/HmacSHA1, in the query or the form body).
 *
 * Errors (`Ec2Error`): no credentials → `MissingAuthenticationToken` 401; unknown or inactive key
 * → `AuthFailure` 401; bad signature, tampered body, wrong service → `SignatureDoesNotMatch` 403;
 * more than 15 minutes from `now`, or an expired presigned URL → `RequestExpired` 400; malformed
 * Authorization → `IncompleteSignature` 400. Any region and service name in the SigV4 scope is
 * accepted when the signature verifies with it (euca2ools sends `undefined-<pid>`, boto 2 derives
 * `<region>/<service>` from the host name). Signatures are compared in constant time; secrets are never logged.
 */
export async function verifyRequest<K extends AccessKeyRecord>(req: SignedRequest, lookupSecret: SecretLookup<K>, now: Date, options: VerifyOptions = {}): Promise<VerifiedRequest<K>> {
  const opts: Required<VerifyOptions> = {
    maxSkewMs: options.maxSkewMs ?? DEFAULT_SKEW_MS,
    services: options.services ?? [],
    maxPresignSeconds: Math.min(options.maxPresignSeconds ?? MAX_PRESIGN_SECONDS, MAX_PRESIGN_SECONDS),
  };
  const queryPairs = parsePairs(req.query.startsWith('?') ? req.query.slice(1) : req.query);
  const auth = header(req, 'authorization');

  if (auth !== undefined && auth.trim() !== '') {
    if (!auth.startsWith('AWS4-HMAC-SHA256 ')) {
      throw incomplete('Unsupported Authorization header; use AWS4-HMAC-SHA256');
    }
    const p = parseAuthorizationHeader(auth, req);
    checkScopeAndTime(p, now, opts);
    const key = await verifyV4(req, p, queryPairs, false, lookupSecret);
    return { accessKeyId: p.accessKeyId, signatureVersion: 4, kind: 'v4', region: p.region, service: p.service, key };
  }

  const q = new Map<string, string>();
  for (const [k, v] of queryPairs) if (!q.has(k)) q.set(k, v);
  if (q.has('X-Amz-Algorithm') || q.has('X-Amz-Signature') || q.has('X-Amz-Credential')) {
    if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') throw incomplete('X-Amz-Algorithm must be AWS4-HMAC-SHA256');
    const cred = q.get('X-Amz-Credential');
    const sig = q.get('X-Amz-Signature');
    const amzDate = q.get('X-Amz-Date');
    const expiresRaw = q.get('X-Amz-Expires');
    if (!cred || !sig || !amzDate || !expiresRaw) {
      throw incomplete('Presigned requests need X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature');
    }
    if (!/^[0-9a-fA-F]{64}$/.test(sig)) throw incomplete('Invalid X-Amz-Signature');
    if (!/^\d{1,6}$/.test(expiresRaw) || +expiresRaw < 1 || +expiresRaw > opts.maxPresignSeconds) {
      throw new Ec2Error('InvalidParameterValue', `Value (${expiresRaw}) for parameter X-Amz-Expires is invalid.`);
    }
    const p: V4Parts = {
      ...parseCredential(cred),
      signedHeaders: parseSignedHeaders(q.get('X-Amz-SignedHeaders')),
      signature: sig,
      amzDate,
    };
    checkScopeAndTime(p, now, opts, +expiresRaw);
    const key = await verifyV4(req, p, queryPairs, true, lookupSecret);
    return { accessKeyId: p.accessKeyId, signatureVersion: 4, kind: 'v4-presigned', region: p.region, service: p.service, key };
  }

  const v2 = v2Params(req);
  if (v2.has('Signature') || v2.has('SignatureVersion') || v2.has('AWSAccessKeyId')) {
    const ver = v2.get('SignatureVersion');
    if (ver !== '2') throw new Ec2Error('InvalidParameterValue', `Value (${ver ?? ''}) for parameter SignatureVersion is invalid. Only 2 is supported.`);
    if (!v2.get('Signature')) throw new Ec2Error('MissingParameter', 'The request must contain the parameter Signature');
    return verifyV2(req, v2, lookupSecret, now, opts);
  }

  throw new Ec2Error('MissingAuthenticationToken', 'The request must contain either a valid (registered) AWS access key ID or X.509 certificate.');
}
