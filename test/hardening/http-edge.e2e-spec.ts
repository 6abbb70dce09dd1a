// Every answer of the EC2 endpoint is an EC2 XML document with a request id, never a framework
// banner: unknown paths and methods, HEAD, requests Node's HTTP parser refuses; and the
// endpoint speaks HTTPS when KOALA_API_TLS_CERT / KOALA_API_TLS_KEY are set.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { errorOf, send, sigv4, type RawResponse } from '../api/signed-http.js';

let cloud: TestCloud;

beforeAll(async () => {
  cloud = await startCloud();
}, 30_000);
afterAll(async () => cloud?.close());

async function expectEc2Error(r: RawResponse, status: number, code: string) {
  expect({ status: r.status, body: r.body }).toMatchObject({ status });
  expect(r.headers['content-type']).toBe('text/xml;charset=UTF-8');
  expect(r.headers['x-powered-by']).toBeUndefined();
  const e = await errorOf(r);
  expect(e.code).toBe(code);
  expect(e.requestId).toMatch(/^[0-9a-f-]{36}$/);
  expect(r.headers['x-amzn-requestid']).toBe(e.requestId);
}

/** Raw bytes over a socket (for what an HTTP client refuses to send). */
function rawExchange(payload: string): Promise<string> {
  const u = new URL(cloud.endpoint);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => s.write(payload));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
  });
}

describe('answers that are not actions', () => {
  it('no X-Powered-By on an ordinary answer', async () => {
    const r = await sigv4(cloud.endpoint, cloud.admin, { Action: 'DescribeRegions', Version: '2016-11-15' });
    expect(r.status).toBe(200);
    expect(r.headers['x-powered-by']).toBeUndefined();
  });

  it.each(['/nope', '/services/nope', '/index.html?Action=DescribeRegions'])('unknown path %s → 404 EC2 XML', async (path) => {
    await expectEc2Error(await send(cloud.endpoint, { method: 'GET', path }), 404, 'InvalidAction');
    await expectEc2Error(await send(cloud.endpoint, { method: 'POST', path, body: 'Action=DescribeRegions' }), 404, 'InvalidAction');
  });

  it.each(['PUT', 'DELETE', 'PATCH', 'OPTIONS'])('%s / → 405 UnsupportedHttpVerb', async (method) => {
    const r = await send(cloud.endpoint, { method, path: '/services/compute/' });
    await expectEc2Error(r, 405, 'UnsupportedHttpVerb');
    expect(r.headers.allow).toBe('GET, POST');
  });

  it('HEAD / → 405 with the request id and XML headers (no body, as HTTP requires)', async () => {
    const r = await send(cloud.endpoint, { method: 'HEAD', path: '/' });
    expect(r.status).toBe(405);
    expect(r.headers['content-type']).toBe('text/xml;charset=UTF-8');
    expect(r.headers['x-amzn-requestid']).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.headers['x-powered-by']).toBeUndefined();
  });

  it('a URL over 16 KiB → 431 EC2 XML, not a bare status line', async () => {
    const r = await send(cloud.endpoint, { method: 'GET', path: `/?Action=DescribeRegions&Junk=${'x'.repeat(20_000)}` });
    await expectEc2Error(r, 431, 'RequestHeaderSectionTooLarge');
  });

  it('an unparsable request → 400 EC2 XML', async () => {
    const text = await rawExchange('GARBAGE\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toMatch(/<Code>MalformedHTTPRequest<\/Code>/);
    expect(text).toMatch(/<RequestID>[0-9a-f-]{36}<\/RequestID>/);
  });

  it('keeps /healthz and the image blob route', async () => {
    const h = await send(cloud.endpoint, { method: 'GET', path: '/healthz' });
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toMatchObject({ status: 'ok' });
    expect(h.headers['x-powered-by']).toBeUndefined();
    const b = await send(cloud.endpoint, { method: 'GET', path: `/images/blobs/sha256/${'0'.repeat(64)}?expires=1&signature=x` });
    expect(b.status).toBe(403);
  });
});

describe('TLS', () => {
  let dir: string;
  let tlsCloud: TestCloud | undefined;
  afterAll(async () => {
    await tlsCloud?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS with KOALA_API_TLS_CERT / KOALA_API_TLS_KEY (self-signed, loopback)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'koala-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {
      stdio: 'ignore',
    });
    tlsCloud = await startCloud({ env: { KOALA_API_TLS_CERT: cert, KOALA_API_TLS_KEY: key } });
    expect(tlsCloud.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    const ca = readFileSync(cert);
    const r = await sigv4(tlsCloud.endpoint, tlsCloud.admin, { Action: 'DescribeRegions', Version: '2016-11-15' }, { ca });
    expect(r.status).toBe(200);
    expect(r.body).toContain('<regionName>');
    // plain HTTP on the TLS port gets no EC2 answer
    const plain = await send(tlsCloud.endpoint.replace('https:', 'http:'), { method: 'GET', path: '/' }).then(
      (x) => x.status,
      () => 'refused',
    );
    expect(plain === 'refused' || plain === 400).toBe(true);
  }, 30_000);
});
