/** Raw EC2 Query requests over HTTP, signed with `aws4` (SigV4) or by hand (SigV2), for tests. */
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import aws4 from 'aws4';
import { parseStringPromise } from 'xml2js';
import type { TestCredentials } from '../support/cloud.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends a request exactly as given (headers, body) and collects the answer; `ca` trusts an https endpoint's certificate. */
export function send(endpoint: string, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; ca?: Buffer }): Promise<RawResponse> {
  const u = new URL(endpoint);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: opts.method ?? 'POST', path: opts.path ?? '/', headers: opts.headers, ...(opts.ca ? { ca: opts.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

export interface SignOptions {
  method?: 'GET' | 'POST';
  path?: string;
  /** Request time (default now). */
  date?: Date;
  region?: string;
  /** Body override (sent instead of the signed form body: a tampered request). */
  tamperBody?: string;
  /** CA certificate to trust (https endpoints). */
  ca?: Buffer;
}

function amzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/** A SigV4-signed EC2 request carrying `params` (form body for POST, query string for GET). */
export async function sigv4(endpoint: string, creds: TestCredentials, params: Record<string, string>, opts: SignOptions = {}): Promise<RawResponse> {
  const u = new URL(endpoint);
  const method = opts.method ?? 'POST';
  const qs = new URLSearchParams(params).toString();
  const basePath = opts.path ?? '/';
  const headers: Record<string, string> = { 'X-Amz-Date': amzDate(opts.date ?? new Date()) };
  const req: aws4.Request & { headers: Record<string, string> } = {
    host: u.host,
    method,
    path: method === 'GET' ? `${basePath}?${qs}` : basePath,
    service: 'ec2',
    region: opts.region ?? 'koala-1',
    headers,
  };
  if (method === 'POST') {
    req.body = qs;
    headers['Content-Type'] = 'application/x-www-form-urlencoded; charset=utf-8';
  }
  aws4.sign(req, { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey });
  const body = opts.tamperBody ?? (req.body as string | undefined);
  const h = { ...(req.headers as Record<string, string>) };
  if (opts.tamperBody !== undefined) h['Content-Length'] = String(Buffer.byteLength(opts.tamperBody));
  return send(endpoint, { method, path: req.path, headers: h, body, ca: opts.ca });
}

/** A presigned SigV4 GET URL path (`/?Action=...&X-Amz-...`), valid `expiresSec` seconds. */
export function presignedPath(endpoint: string, creds: TestCredentials, params: Record<string, string>, expiresSec: number): string {
  const u = new URL(endpoint);
  const qs = new URLSearchParams({ ...params, 'X-Amz-Expires': String(expiresSec) }).toString();
  const req: aws4.Request = { host: u.host, method: 'GET', path: `/?${qs}`, service: 'ec2', region: 'koala-1', signQuery: true };
  aws4.sign(req, { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey });
  return req.path!;
}

const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

/** A hand-built SigV2 request (as old boto / euca2ools sent them), POST form body. */
export function sigv2(endpoint: string, creds: TestCredentials, params: Record<string, string>, method: 'HmacSHA256' | 'HmacSHA1', path = '/'): Promise<RawResponse> {
  const u = new URL(endpoint);
  const all: Record<string, string> = {
    ...params,
    AWSAccessKeyId: creds.accessKeyId,
    SignatureVersion: '2',
    SignatureMethod: method,
    Timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  const canonical = Object.keys(all)
    .sort()
    .map((k) => `${rfc3986(k)}=${rfc3986(all[k]!)}`)
    .join('&');
  const sts = `POST\n${u.host.toLowerCase()}\n${path}\n${canonical}`;
  const signature = createHmac(method === 'HmacSHA256' ? 'sha256' : 'sha1', creds.secretAccessKey)
    .update(sts)
    .digest('base64');
  const body = `${canonical}&Signature=${rfc3986(signature)}`;
  return send(endpoint, { method: 'POST', path, headers: { 'Content-Type': 'application/x-www-form-urlencoded', Host: u.host }, body });
}

/** `{ code, message, requestId }` of an EC2 error document. */
export async function errorOf(r: RawResponse): Promise<{ code: string; message: string; requestId: string }> {
  const x = await parseStringPromise(r.body);
  const e = x.Response.Errors[0].Error[0];
  return { code: e.Code[0], message: e.Message[0], requestId: x.Response.RequestID[0] };
}
