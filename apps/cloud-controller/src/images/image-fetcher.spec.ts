// HttpImageFetcher against loopback servers of its own. Names resolve through an injected
// resolver that only ever answers loopback addresses; refused destinations are refused before
// any connection (the servers count them).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { createSecureContext } from 'node:tls';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { displayLocation, FetchError, HttpImageFetcher, LOCATION_NOT_FETCHED } from './image-fetcher.js';

interface Srv {
  server: Server;
  port: number;
  connections: number;
  hosts: string[];
  auth: (string | undefined)[];
}
async function serve(handler: (url: string, res: import('node:http').ServerResponse) => void): Promise<Srv> {
  const s: Srv = { server: createServer(), port: 0, connections: 0, hosts: [], auth: [] };
  s.server.on('connection', () => s.connections++);
  s.server.on('request', (req, res) => {
    s.hosts.push(req.headers.host ?? '');
    s.auth.push(req.headers.authorization);
    handler((req.url ?? '').split('?')[0]!, res);
  });
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  s.port = (s.server.address() as AddressInfo).port;
  return s;
}

let a: Srv;
let b: Srv;
beforeAll(async () => {
  b = await serve((_u, res) => res.writeHead(200).end('from-b'));
  a = await serve((u, res) => {
    if (u === '/img') res.writeHead(200, { 'content-length': '5' }).end('hello');
    else if (u === '/to-self') res.writeHead(302, { location: '/img' }).end();
    else if (u === '/to-b') res.writeHead(302, { location: `http://127.0.0.1:${b.port}/x` }).end();
    else if (u === '/loop') res.writeHead(302, { location: '/loop' }).end();
    else if (u === '/to-file') res.writeHead(302, { location: 'file:///etc/passwd' }).end();
    else res.writeHead(404).end();
  });
});
afterAll(async () => {
  for (const s of [a, b]) {
    s.server.closeAllConnections();
    await new Promise((r) => s.server.close(r));
  }
});
beforeEach(() => {
  for (const s of [a, b]) ((s.connections = 0), (s.hosts = []), (s.auth = []));
});

const signal = () => AbortSignal.timeout(5000);
async function read(f: HttpImageFetcher, url: string): Promise<string> {
  const { body } = await f.open(url, signal());
  let out = '';
  for await (const c of body) out += c;
  return out;
}
async function refusal(f: HttpImageFetcher, url: string): Promise<FetchError> {
  const e = await f.open(url, signal()).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(FetchError);
  return e as FetchError;
}

it('refuses loopback in every spelling without an allow-list, before connecting, with one generic message', async () => {
  const f = new HttpImageFetcher({ resolve: async () => ['127.0.0.1'] });
  const p = a.port;
  for (const url of [
    `http://127.0.0.1:${p}/img`,
    `http://0x7f000001:${p}/img`,
    `http://2130706433:${p}/img`,
    `http://017700000001:${p}/img`,
    `http://127.1:${p}/img`,
    `http://[::1]:${p}/img`,
    `http://[::ffff:127.0.0.1]:${p}/img`,
    `http://localhost.example:${p}/img`,
    `https://127.0.0.1:${p}/img`,
  ]) {
    const e = await refusal(f, url);
    expect({ code: e.code, message: e.message }).toEqual({ code: 'Client.InvalidImageLocation', message: LOCATION_NOT_FETCHED });
    expect(e.detail).toMatch(/non-public/);
  }
  expect(a.connections).toBe(0);
});

it('fetches an allow-listed loopback server; a closed port and a 404 look the same as a refusal', async () => {
  const f = new HttpImageFetcher({ allow: ['127.0.0.0/8'] });
  expect(await read(f, `http://127.0.0.1:${a.port}/img`)).toBe('hello');
  const closed = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => r(port));
    });
  });
  const e404 = await refusal(f, `http://127.0.0.1:${a.port}/nope`);
  const eClosed = await refusal(f, `http://127.0.0.1:${closed}/img`);
  const eDenied = await refusal(new HttpImageFetcher(), `http://127.0.0.1:${a.port}/img`);
  for (const e of [e404, eClosed, eDenied]) expect([e.code, e.message]).toEqual(['Client.InvalidImageLocation', LOCATION_NOT_FETCHED]);
  expect(e404.detail).toMatch(/HTTP 404/);
  expect(eClosed.detail).toMatch(/ECONNREFUSED/);
});

it('host:port entries allow that port only', async () => {
  const f = new HttpImageFetcher({ allow: [`127.0.0.1:${a.port}`] });
  expect(await read(f, `http://127.0.0.1:${a.port}/img`)).toBe('hello');
  await refusal(f, `http://127.0.0.1:${b.port}/x`);
  expect(b.connections).toBe(0);
});

it('connects to the checked address: resolved once per hop, Host header kept (no DNS rebinding)', async () => {
  let calls = 0;
  // A rebinding resolver: the second answer would be another address (never used).
  const f = new HttpImageFetcher({ allow: ['images.example'], resolve: async () => (calls++ === 0 ? ['127.0.0.1'] : ['127.0.0.2']) });
  expect(await read(f, `http://images.example:${a.port}/img`)).toBe('hello');
  expect(calls).toBe(1);
  expect(a.hosts).toEqual([`images.example:${a.port}`]);
});

it('a name resolving to loopback is refused unless allowed; a resolver failure is generic too', async () => {
  await refusal(new HttpImageFetcher({ resolve: async () => ['::1', '127.0.0.1'] }), `http://images.example:${a.port}/img`);
  const e = await refusal(new HttpImageFetcher({ resolve: async () => Promise.reject(new Error('ENOTFOUND')) }), `http://nowhere.example/img`);
  expect(e.message).toBe(LOCATION_NOT_FETCHED);
  expect(a.connections).toBe(0);
});

it('re-checks every redirect: within the allowed server fine, to a loopback server not allowed refused', async () => {
  const f = new HttpImageFetcher({ allow: [`127.0.0.1:${a.port}`], maxRedirects: 3 });
  expect(await read(f, `http://127.0.0.1:${a.port}/to-self`)).toBe('hello');
  expect((await refusal(f, `http://127.0.0.1:${a.port}/to-b`)).detail).toMatch(/non-public/);
  expect(b.connections).toBe(0);
  expect((await refusal(f, `http://127.0.0.1:${a.port}/loop`)).detail).toMatch(/redirects/);
  expect((await refusal(f, `http://127.0.0.1:${a.port}/to-file`)).detail).toMatch(/unsupported/);
});

it('sends URL credentials as basic auth and keeps them out of the shown location', async () => {
  const f = new HttpImageFetcher({ allow: ['127.0.0.1'] });
  expect(await read(f, `http://us%40er:p%3Ass@127.0.0.1:${a.port}/img?sig=secret`)).toBe('hello');
  expect(a.auth).toEqual([`Basic ${Buffer.from('us@er:p:ss').toString('base64')}`]);
  expect(displayLocation(`http://user:pw@127.0.0.1:${a.port}/img?X-Amz-Signature=abc#f`)).toBe(`http://127.0.0.1:${a.port}/img`);
});

it('https: pinned to the checked address, SNI is the host name and the certificate is still verified', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'koala-fetch-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=images.example',
        '-addext',
        'subjectAltName=DNS:images.example',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    const names: string[] = [];
    let requests = 0;
    const creds = { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) };
    const tls = createTlsServer({ ...creds, SNICallback: (name, cb) => (names.push(name), cb(null, createSecureContext(creds))) }, (_req, res) => (requests++, res.end('x')));
    tls.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    const port = (tls.address() as AddressInfo).port;
    try {
      const f = new HttpImageFetcher({ allow: ['127.0.0.1'], resolve: async () => ['127.0.0.1'] });
      const e = await refusal(f, `https://images.example:${port}/img`);
      expect(e.message).toBe(LOCATION_NOT_FETCHED);
      expect(e.detail).toMatch(/self[- ]signed|certificate/i);
      expect(requests).toBe(0);
      expect(names).toContain('images.example');
    } finally {
      tls.closeAllConnections();
      await new Promise((r) => tls.close(r));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
