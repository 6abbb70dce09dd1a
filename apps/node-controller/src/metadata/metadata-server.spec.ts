/**
 * The metadata server over a real UNIX socket, behind the real relay (a separate node process,
 * compiled from relay-main.ts) on 127.0.0.1. Loopback only: callers are told apart by the local
 * address their client socket binds (127.0.0.1, .2, .3 are all loopback).
 */
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { mkdtempSync, rmSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFileSync } from '@swc/core';
import type { ZoneNetworkState } from '@koala/contracts';
import type { NetworkStateView } from '../network/network-state-view.js';
import { ImdsTokens } from './imds-tokens.js';
import { FsLaunchSpecStore, type LaunchRecord } from './launch-spec-store.js';
import { MetadataServer } from './metadata-server.js';
import { parseRelayArgs, startRelay, TokenRequestWatcher, type Relay } from './relay-main.js';
import { relayCommand, RelaySupervisor } from './relay-supervisor.js';
import { metadataPaths, MetadataService } from './metadata.module.js';
import { loadConfig } from '@koala/config';
import { createLogger } from '@koala/logging';

const HERE = dirname(fileURLToPath(import.meta.url));
const A = 'i-000000000000000a';
const B = 'i-000000000000000b';
const C = 'i-000000000000000c';

class FakeView implements NetworkStateView {
  state?: ZoneNetworkState;
  private listeners = new Set<(s: ZoneNetworkState) => void>();
  current() {
    return this.state;
  }
  onApplied(l: (s: ZoneNetworkState) => void) {
    this.listeners.add(l);
    return () => void this.listeners.delete(l);
  }
  apply(s: ZoneNetworkState) {
    this.state = s;
    for (const l of this.listeners) l(s);
  }
}

const stateWith = (nodeAddress = '127.0.0.1', version = 1, opts?: { httpTokens: 'required' | 'optional' }): ZoneNetworkState => ({
  zone: 'koala-1a',
  version,
  subnet: '127.0.0.0/8',
  dnsSuffix: 'koala-1.compute.internal',
  nodes: [{ node: 'n1', address: nodeAddress }],
  interfaces: [
    { instanceId: A, node: 'n1', mac: '02:00:00:00:00:0a', privateIp: '127.0.0.1', publicIp: '198.51.100.10', groupIds: ['sg-0000000a'] },
    {
      instanceId: B,
      node: 'n1',
      mac: '02:00:00:00:00:0b',
      privateIp: '127.0.0.3',
      groupIds: [],
      ...(opts ? { metadataOptions: { httpTokens: opts.httpTokens, httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' as const } } : {}),
    },
    // Another node's instance at 127.0.0.2: this node must not answer for it.
    { instanceId: C, node: 'n2', mac: '02:00:00:00:00:0c', privateIp: '127.0.0.2', groupIds: [] },
  ],
  groups: [{ groupId: 'sg-0000000a', name: 'default', ingress: [], egress: [] }],
  generatedAt: '2026-12-07T00:00:00Z',
});

const record = (instanceId: string, extra: Partial<LaunchRecord> = {}): LaunchRecord => ({
  instanceId,
  reservationId: 'r-0000000000000001',
  accountId: '000000000042',
  instanceType: 't1.micro',
  virtualizationType: 'hvm',
  imageId: `emi-${instanceId.slice(-8)}`,
  hostname: instanceId,
  availabilityZone: 'koala-1a',
  launchIndex: 0,
  ephemeral: false,
  pendingTime: '2026-12-07T00:00:00Z',
  ...extra,
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}
function call(port: number, path: string, o: { method?: string; from?: string; headers?: Record<string, string>; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: o.host ?? '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers, localAddress: o.from ?? '127.0.0.1', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Raw bytes to the UNIX socket; everything the server sent back before closing. */
function raw(socketPath: string, chunks: string[], gapMs = 30): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    let got = '';
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n\r\n') && /content-length: (\d+)/i.test(got)) {
        const n = Number(/content-length: (\d+)/i.exec(got)![1]);
        if (got.length - got.indexOf('\r\n\r\n') - 4 >= n) s.end();
      }
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(3000, () => s.destroy());
    void (async () => {
      for (const c of chunks) {
        s.write(c);
        await new Promise((r) => setTimeout(r, gapMs));
      }
    })();
  });
}

describe('metadata server behind the relay (loopback)', () => {
  let dir: string;
  let socketPath: string;
  let view: FakeView;
  let store: FsLaunchSpecStore;
  let server: MetadataServer;
  let relay: Relay;
  let relayEntry: string;

  const makeServer = () => new MetadataServer({ socketPath, node: 'n1', region: 'koala-1', view, store, tokens: new ImdsTokens({ now: () => new Date() }) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'koala-imds-'));
    socketPath = join(dir, 'run', 'metadata-n1.sock');
    // The relay as its own process: relay-main.ts compiled alone (it imports only node:*).
    relayEntry = join(dir, 'relay-main.mjs');
    const { code } = transformFileSync(join(HERE, 'relay-main.ts'), { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } });
    writeFileSync(relayEntry, code);
    view = new FakeView();
    view.apply(stateWith());
    store = new FsLaunchSpecStore(join(dir, 'nc', 'n1', 'instances'));
    await store.put(record(A, { userData: Buffer.from('#!/bin/sh\necho A\n').toString('base64'), keyName: 'alice', publicKey: 'ssh-ed25519 AAAAkeyA alice' }));
    await store.put(record(B, { metadataOptions: { httpTokens: 'optional', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' } }));
    await store.put(record(C));
    server = makeServer();
    await server.start();
    relay = await startRelay({ host: '127.0.0.1', port: 0, socketPath });
  });

  afterAll(async () => {
    await relay?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the socket is 0600', () => {
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
  });

  it('v1: the caller at 127.0.0.1 gets its own instance', async () => {
    const r = await call(relay.port, '/latest/meta-data/instance-id');
    expect([r.status, r.body, r.headers.server]).toEqual([200, A, 'EC2ws']);
    expect((await call(relay.port, '/latest/meta-data/public-ipv4')).body).toBe('198.51.100.10');
    expect((await call(relay.port, '/latest/meta-data/security-groups')).body).toBe('default');
    expect((await call(relay.port, '/latest/meta-data/public-keys/0/openssh-key')).body).toBe('ssh-ed25519 AAAAkeyA alice\n');
    expect((await call(relay.port, '/latest/user-data')).body).toBe('#!/bin/sh\necho A\n');
    expect(JSON.parse((await call(relay.port, '/latest/dynamic/instance-identity/document')).body)).toMatchObject({ instanceId: A, privateIp: '127.0.0.1', region: 'koala-1' });
  });

  it("another address is never answered with the first instance's data", async () => {
    // 127.0.0.2 is another node's instance; 127.0.0.4 is nobody.
    for (const from of ['127.0.0.2', '127.0.0.4']) {
      for (const path of ['/', '/latest/meta-data/instance-id', '/latest/meta-data/', '/latest/user-data', '/latest/dynamic/instance-identity/document']) {
        const r = await call(relay.port, path, { from, headers: { 'x-forwarded-for': '127.0.0.1', forwarded: 'for=127.0.0.1' } });
        expect([from, path, r.status]).toEqual([from, path, 404]);
        expect(r.body).not.toContain(A);
        expect(r.body).toContain('404 - Not Found');
      }
      const put = await call(relay.port, '/latest/api/token', { from, method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } });
      expect(put.status).toBe(404);
    }
    const b = await call(relay.port, '/latest/meta-data/instance-id', { from: '127.0.0.3' });
    expect([b.status, b.body]).toEqual([200, B]);
  });

  it('user-data absent → 404; unknown path → 404', async () => {
    expect((await call(relay.port, '/latest/user-data', { from: '127.0.0.3' })).status).toBe(404);
    const r = await call(relay.port, '/latest/meta-data/no-such-thing');
    expect([r.status, r.headers['content-type']]).toEqual([404, 'text/html']);
    expect((await call(relay.port, '/1999-01-01/meta-data/')).status).toBe(404);
  });

  it('v2: token PUT, GET with it; bad TTL 400; X-Forwarded-For 403; GET on the token path 405; a foreign token 401', async () => {
    const put = await call(relay.port, '/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '120' } });
    expect([put.status, put.headers['x-aws-ec2-metadata-token-ttl-seconds']]).toEqual([200, '120']);
    const token = put.body;
    const get = await call(relay.port, '/latest/meta-data/instance-id', { headers: { 'x-aws-ec2-metadata-token': token } });
    expect([get.status, get.body]).toEqual([200, A]);
    expect((await call(relay.port, '/latest/api/token', { method: 'PUT' })).status).toBe(400);
    expect((await call(relay.port, '/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21601' } })).status).toBe(400);
    expect((await call(relay.port, '/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '1.2.3.4' } })).status).toBe(403);
    expect((await call(relay.port, '/latest/api/token')).status).toBe(405);
    // A's token presented by B is refused.
    expect((await call(relay.port, '/latest/meta-data/instance-id', { from: '127.0.0.3', headers: { 'x-aws-ec2-metadata-token': token } })).status).toBe(401);
  });

  it('httpTokens=required from the live state: 401 without a token', async () => {
    view.apply(stateWith('127.0.0.1', 2, { httpTokens: 'required' }));
    try {
      expect((await call(relay.port, '/latest/meta-data/instance-id', { from: '127.0.0.3' })).status).toBe(401);
      const t = (await call(relay.port, '/latest/api/token', { from: '127.0.0.3', method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).body;
      expect((await call(relay.port, '/latest/meta-data/instance-id', { from: '127.0.0.3', headers: { 'x-aws-ec2-metadata-token': t } })).body).toBe(B);
    } finally {
      view.apply(stateWith('127.0.0.1', 3));
    }
  });

  it('PROXY lines: garbage and spoofed lines are dropped; split and pipelined lines work', async () => {
    const req = 'GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    expect(await raw(socketPath, [`GET / HTTP/1.1\r\n\r\n`])).toBe('');
    expect(await raw(socketPath, ['PROXY TCP4 127.0.0.1 127.0.0.1 1 80\n' + req])).toBe('');
    expect(await raw(socketPath, ['PROXY TCP4 127.0.0.01 127.0.0.1 1 80\r\n' + req])).toBe('');
    expect(await raw(socketPath, ['PROXY TCP6 ::1 ::1 1 80\r\n' + req])).toBe('');
    expect(await raw(socketPath, ['PROXY UNKNOWN\r\n' + req])).toBe('');
    expect(await raw(socketPath, ['PROXY TCP4 127.0.0.1 127.0.0.1 1 99999\r\n' + req])).toBe('');
    expect(await raw(socketPath, ['PROXY TCP4 ' + '1'.repeat(200)])).toBe('');
    const split = await raw(socketPath, ['PROXY TCP4 127.0.0', '.1 127.0.0.1 4000 80\r', '\nGET /latest/meta-data/instance-id HTTP/1.1\r\n', 'Host: x\r\nConnection: close\r\n\r\n']);
    expect(split).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(split.endsWith(`\r\n\r\n${A}`)).toBe(true);
    const pipelined = await raw(socketPath, [`PROXY TCP4 127.0.0.3 127.0.0.1 4000 80\r\n${req}`]);
    expect(pipelined.endsWith(`\r\n\r\n${B}`)).toBe(true);
    // A second PROXY line inside the HTTP stream is just a bad request, not a new identity.
    const twice = await raw(socketPath, [`PROXY TCP4 127.0.0.4 127.0.0.1 4000 80\r\nPROXY TCP4 127.0.0.1 127.0.0.1 4000 80\r\n${req}`]);
    expect(twice).not.toContain(A);
  });

  it('keep-alive: several requests on one relayed connection', async () => {
    const s = connect({ host: '127.0.0.1', port: relay.port, localAddress: '127.0.0.1' });
    const got = await new Promise<string>((resolve) => {
      let out = '';
      s.on('data', (d) => {
        out += d.toString();
        if (out.split('HTTP/1.1 200').length === 3) resolve(out);
      });
      s.write('GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\nGET /latest/meta-data/ami-id HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    s.destroy();
    expect(got).toContain(A);
    expect(got).toContain('emi-0000000a');
  });

  it('a restarted NC serves from the records on disk; stop removes the socket', async () => {
    await server.stop();
    expect(existsSync(socketPath)).toBe(false);
    expect((await call(relay.port, '/latest/meta-data/instance-id').catch((e: Error) => ({ status: e.message }))).status).not.toBe(200);
    store = new FsLaunchSpecStore(join(dir, 'nc', 'n1', 'instances'));
    server = makeServer();
    await server.start();
    expect((await call(relay.port, '/latest/meta-data/instance-id')).body).toBe(A);
    await store.remove(A);
    expect((await call(relay.port, '/latest/meta-data/instance-id')).status).toBe(404);
    await store.put(record(A));
  });

  it('the relay process, supervised: starts on the applied address, restarts when killed, moves with the address, stops', async () => {
    const port = await freePort();
    const sview = new FakeView();
    const sup = new RelaySupervisor({ node: 'n1', view: sview, entry: relayEntry, socketPath, port, restartDelayMs: 50 });
    sup.start();
    try {
      expect(sup.pid).toBeUndefined();
      sview.apply(stateWith('127.0.0.1', 1));
      await sup.ready();
      expect((await call(port, '/latest/meta-data/instance-id')).body).toBe(A);
      const first = sup.pid!;
      process.kill(first, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 100));
      await sup.ready();
      expect(sup.spawned).toBe(2);
      expect(sup.pid).not.toBe(first);
      expect((await call(port, '/latest/meta-data/instance-id')).body).toBe(A);
      // Same address again: nothing restarts.
      sview.apply(stateWith('127.0.0.1', 2));
      expect(sup.spawned).toBe(2);
      sview.apply(stateWith('127.0.0.5', 3));
      await new Promise((r) => setTimeout(r, 50));
      await sup.ready();
      expect(sup.spawned).toBe(3);
      expect((await call(port, '/latest/meta-data/instance-id', { host: '127.0.0.5' })).body).toBe(A);
      await expect(call(port, '/latest/meta-data/instance-id')).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      const pid = sup.pid;
      await sup.stop();
      if (pid) expect(() => process.kill(pid, 0)).toThrow();
    }
  });

  it('bounds: a silent connection is dropped (server: no PROXY line in time; relay: idle), excess relay connections are refused', async () => {
    const quick = new MetadataServer({ socketPath: join(dir, 'quick.sock'), node: 'n1', region: 'koala-1', view, store, tokens: new ImdsTokens({ now: () => new Date() }), proxyTimeoutMs: 100 });
    await quick.start();
    const small = await startRelay({ host: '127.0.0.1', port: 0, socketPath, idleMs: 150, maxConnections: 1 });
    try {
      const closedAfter = (s: ReturnType<typeof connect>) =>
        new Promise<number>((resolve) => {
          const t0 = Date.now();
          s.on('error', () => undefined);
          s.on('close', () => resolve(Date.now() - t0));
        });
      const silent = connect(join(dir, 'quick.sock'));
      const silentMs = await closedAfter(silent);
      expect(silentMs).toBeGreaterThanOrEqual(90);
      expect(silentMs).toBeLessThan(2000);
      const idle = connect({ host: '127.0.0.1', port: small.port });
      const idleClosed = closedAfter(idle);
      await new Promise((r) => idle.once('connect', r));
      await new Promise((r) => setTimeout(r, 30));
      const second = connect({ host: '127.0.0.1', port: small.port });
      const secondClosed = closedAfter(second);
      expect(await secondClosed).toBeLessThan(140);
      const ms = await idleClosed;
      expect(ms).toBeGreaterThanOrEqual(140);
      expect(ms).toBeLessThan(2000);
    } finally {
      await small.close();
      await quick.stop();
    }
  });

  it('MetadataService: server and relay from the config, records in $KOALA_HOME/nc/<node>/instances, all gone at shutdown; off without a view', async () => {
    const home = join(dir, 'svc-home');
    const port = await freePort();
    const config = loadConfig({ KOALA_HOME: home, KOALA_NODE_NAME: 'n1', KOALA_METADATA_PORT: String(port), KOALA_REGION: 'koala-1' });
    const paths = metadataPaths(config);
    expect(paths).toEqual({ socket: join(home, 'run', 'metadata-n1.sock'), records: join(home, 'nc', 'n1', 'instances') });
    const logger = createLogger('test', 'fatal');
    const clock = { now: () => new Date() };
    const svcStore = new FsLaunchSpecStore(paths.records);
    await svcStore.put(record(A));
    const off = new MetadataService(config, svcStore, clock, logger);
    await off.onApplicationBootstrap();
    expect(existsSync(paths.socket)).toBe(false);
    await off.onApplicationShutdown();

    const sview = new FakeView();
    const svc = new MetadataService(config, svcStore, clock, logger, sview, relayEntry);
    await svc.onApplicationBootstrap();
    try {
      expect(statSync(paths.socket).mode & 0o777).toBe(0o600);
      sview.apply(stateWith('127.0.0.1', 1));
      await svc.relaySupervisor!.ready();
      expect((await call(port, '/latest/meta-data/instance-id')).body).toBe(A);
    } finally {
      const pid = svc.relaySupervisor?.pid;
      await svc.onApplicationShutdown();
      expect(existsSync(paths.socket)).toBe(false);
      if (pid) expect(() => process.kill(pid, 0)).toThrow();
    }
  });

  it('MetadataService: a socket it cannot bind, or no built relay, leaves the NC running without it', async () => {
    const logger = createLogger('test', 'fatal');
    const clock = { now: () => new Date() };
    const sview = new FakeView();
    sview.apply(stateWith('127.0.0.1', 1));
    const long = loadConfig({ KOALA_HOME: join(dir, 'x'.repeat(120)), KOALA_NODE_NAME: 'n1' });
    const a = new MetadataService(long, store, clock, logger, sview, relayEntry);
    await expect(a.onApplicationBootstrap()).resolves.toBeUndefined();
    expect(a.relaySupervisor).toBeUndefined();
    await a.onApplicationShutdown();
    const short = loadConfig({ KOALA_HOME: join(dir, 'nb'), KOALA_NODE_NAME: 'n1' });
    const b = new MetadataService(short, store, clock, logger, sview, join(dir, 'missing.mjs'));
    await b.onApplicationBootstrap();
    expect(b.relaySupervisor).toBeUndefined();
    expect(existsSync(metadataPaths(short).socket)).toBe(true);
    await b.onApplicationShutdown();
    expect(existsSync(metadataPaths(short).socket)).toBe(false);
  });
});

describe('the relay marks IMDSv2 token connections (the hop limit)', () => {
  it('finds a token request however the guest splits its bytes', () => {
    const text = 'GET /latest/meta-data/ HTTP/1.1\r\n\r\nPUT /latest/api/token HTTP/1.1\r\n';
    for (let size = 1; size <= text.length; size++) {
      const w = new TokenRequestWatcher();
      let at = -1;
      for (let i = 0; i < text.length && at < 0; i += size) if (w.seen(Buffer.from(text.slice(i, i + size)))) at = i + size;
      // Seen with the chunk that completes it, never before.
      expect(at).toBeGreaterThanOrEqual(text.indexOf('PUT') + 'PUT /latest/api/token'.length);
      expect(at).toBeLessThanOrEqual(text.indexOf('PUT') + 'PUT /latest/api/token'.length + size - 1);
    }
    const w = new TokenRequestWatcher();
    expect(['GET /latest/api/token', ' HTTP/1.1', 'PUT /latest/meta-data'].some((c) => w.seen(Buffer.from(c)))).toBe(false);
  });

  describe('with a marker', () => {
    let dir: string;
    let server: MetadataServer;
    let relay: Relay;
    const marks: Array<{ port: number; answeredBefore: boolean }> = [];
    let answered = 0;
    let failNext = false;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'koala-imds-mark-'));
      const socketPath = join(dir, 'metadata.sock');
      const view = new FakeView();
      view.apply(stateWith());
      const store = new FsLaunchSpecStore(join(dir, 'records'));
      await store.put(record(A));
      server = new MetadataServer({ socketPath, node: 'n1', region: 'koala-1', view, store, tokens: new ImdsTokens({ now: () => new Date() }) });
      await server.start();
      relay = await startRelay({
        host: '127.0.0.1',
        port: 0,
        socketPath,
        markTokenConnection: async (peer) => {
          await new Promise((r) => setTimeout(r, 50)); // a slow conntrack: the request must wait
          marks.push({ port: peer.port, answeredBefore: answered > 0 });
          if (failNext) throw new Error('conntrack: 0 flow entries updated');
        },
      });
    });
    afterAll(async () => {
      await relay?.close();
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('marks a token request before the server answers it, and leaves plain reads alone', async () => {
      expect((await call(relay.port, '/latest/meta-data/instance-id')).body).toBe(A);
      expect(marks).toEqual([]);
      const t = await call(relay.port, '/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } });
      answered++;
      expect(t.status).toBe(200);
      expect(marks).toEqual([{ port: expect.any(Number), answeredBefore: false }]);
    });

    it('closes the connection, with no token, when the mark cannot be set', async () => {
      failNext = true;
      await expect(call(relay.port, '/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).rejects.toThrow(/socket hang up|ECONNRESET/);
      failNext = false;
    });
  });
});

describe('relay arguments and command', () => {
  it('parses and refuses', () => {
    expect(parseRelayArgs(['--listen', '10.0.0.2:8775', '--socket', '/run/x.sock'])).toEqual({ host: '10.0.0.2', port: 8775, socketPath: '/run/x.sock' });
    expect(parseRelayArgs(['--listen', '10.0.0.2:8775', '--socket', '/s', '--max-connections', '5', '--idle-ms', '100'])).toMatchObject({ maxConnections: 5, idleMs: 100 });
    expect(parseRelayArgs(['--listen', '10.0.0.2:8775', '--socket', '/s', '--token-mark', '0x20000000']).markTokenConnection).toBeInstanceOf(Function);
    expect(() => parseRelayArgs(['--listen', '10.0.0.2:8775', '--socket', '/s', '--token-mark', '536870912'])).toThrow(/hexadecimal/);
    for (const bad of [
      [],
      ['--listen', '10.0.0.2'],
      ['--listen', '10.0.0.2:99999', '--socket', '/s'],
      ['--listen', '10.0.0.2:1', '--socket', 'rel'],
      ['--listen', '10.0.0.2:1', '--socket', '/s', '--idle-ms', '0'],
      ['--listen'],
    ]) {
      expect(() => parseRelayArgs(bad)).toThrow();
    }
  });

  it("runs in the node's namespace when there is one", () => {
    const o = { entry: '/d/relay-main.js', socketPath: '/h/run/metadata-n1.sock', port: 8775, nodeBinary: '/usr/bin/node' };
    expect(relayCommand(o, '10.0.0.2')).toEqual(['/usr/bin/node', '/d/relay-main.js', '--listen', '10.0.0.2:8775', '--socket', '/h/run/metadata-n1.sock']);
    expect(relayCommand({ ...o, netns: 'koala-n1' }, '10.0.0.2')).toEqual([
      'ip',
      'netns',
      'exec',
      'koala-n1',
      '/usr/bin/node',
      '/d/relay-main.js',
      '--listen',
      '10.0.0.2:8775',
      '--socket',
      '/h/run/metadata-n1.sock',
    ]);
    expect(relayCommand({ ...o, tokenMark: 0x20000000 }, '10.0.0.2').slice(-2)).toEqual(['--token-mark', '0x20000000']);
  });
});
