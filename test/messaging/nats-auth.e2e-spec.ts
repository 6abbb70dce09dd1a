/**
 * NATS spanning hosts: credentials in KOALA_NATS_URL and TLS verified against KOALA_NATS_CA_FILE,
 * against real nats-servers that require them (private ports on 127.0.0.1), down to a real CC
 * started from configuration.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { z } from 'zod';
import { listNodes, requestContract } from '@koala/contracts';
import { loadConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { clusterModule } from '../../apps/cluster-controller/src/cluster.module.js';
import { TestNatsServer } from '../support/nats-server.js';

const echo = requestContract('test.echo', `koala.test.echo.${process.pid}`, z.object({ n: z.number() }), z.object({ n: z.number() }));

/** Connects, serves and calls `echo` once over the connection, and closes it. */
async function roundTrip(url: string, caFile?: string): Promise<number> {
  const bus = await NatsBus.connect({ url, caFile, name: 'test-auth', reconnectWaitMs: 200 });
  try {
    bus.handle(echo, ({ n }) => ({ n: n + 1 }));
    await bus.connection.flush();
    return (await bus.request(echo, { n: 41 })).n;
  } finally {
    await bus.close();
  }
}

describe('NATS credentials and TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'koala-nats-tls-'));
  const ca = join(dir, 'ca.pem');
  const cert = join(dir, 'server.pem');
  const key = join(dir, 'server.key');
  const servers: TestNatsServer[] = [];
  const start = async (args: string[]) => {
    const s = await TestNatsServer.start(args);
    servers.push(s);
    return s;
  };

  beforeAll(() => {
    // A private CA and a server certificate for 127.0.0.1, made the way an operator would.
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=koala-test-ca', '-keyout', 'ca.key', '-out', ca);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', 'server.csr');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', ca, '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', cert);
  });

  afterAll(async () => {
    for (const s of servers) await s.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects with a user and a percent-encoded password from the URL, and only with them', async () => {
    const s = await start(['--user', 'koala', '--pass', 's@cret']);
    expect(await roundTrip(`nats://koala:s%40cret@127.0.0.1:${s.port}`)).toBe(42);
    await expect(NatsBus.connect({ url: `nats://koala:wrong@127.0.0.1:${s.port}`, name: 'test-auth' })).rejects.toThrow(/Authorization/i);
    await expect(NatsBus.connect({ url: `nats://127.0.0.1:${s.port}`, name: 'test-auth' })).rejects.toThrow(/Authorization/i);
  });

  it('connects with a token from the URL', async () => {
    const s = await start(['--auth', 't0ken']);
    expect(await roundTrip(`nats://t0ken@127.0.0.1:${s.port}`)).toBe(42);
    await expect(NatsBus.connect({ url: `nats://other@127.0.0.1:${s.port}`, name: 'test-auth' })).rejects.toThrow(/Authorization/i);
  });

  it('speaks TLS to a server whose certificate the given CA signed, and refuses it without that CA', async () => {
    const s = await start(['--tls', '--tlscert', cert, '--tlskey', key, '--user', 'koala', '--pass', 'pw']);
    expect(await roundTrip(`tls://koala:pw@127.0.0.1:${s.port}`, ca)).toBe(42);
    await expect(NatsBus.connect({ url: `tls://koala:pw@127.0.0.1:${s.port}`, name: 'test-auth' })).rejects.toThrow(/certificate/i);
  });

  it('brings a component up from KOALA_NATS_URL and KOALA_NATS_CA_FILE', async () => {
    const s = await start(['--tls', '--tlscert', cert, '--tlskey', key, '--user', 'koala', '--pass', 'pw']);
    const url = `tls://koala:pw@127.0.0.1:${s.port}`;
    const zone = `tls-${process.pid}`;
    const config = loadConfig({ KOALA_NATS_URL: url, KOALA_NATS_CA_FILE: ca, KOALA_ZONE: zone, KOALA_HOME: mkdtempSync(join(dir, 'cc-')), KOALA_LOG_LEVEL: 'error' });
    let app: INestApplicationContext | undefined;
    const client = await NatsBus.connect({ url, caFile: ca, name: 'test-auth' });
    try {
      ({ app } = await startDaemon('cluster-controller', clusterModule, { zoned: true, config }));
      expect(await client.request(listNodes(zone), {})).toEqual({ zone, nodes: [] });
    } finally {
      await app?.close();
      await client.close();
    }
  });
});
