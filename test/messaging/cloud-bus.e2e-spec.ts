/**
 * The all-in-one cloud's own nats-server as `koala up`/`koala down` run it: generated users
 * and permissions, secrets root-only, each component's URL, a node added later (reload).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { nodeConsoleOutput, Subjects } from '@koala/contracts';
import { loadConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { BusSupervisor, busFiles, componentUser, natsUrlFor, writeBusConfig } from '../../apps/koala/src/supervisor/cloud-bus.js';
import { alive } from '../../apps/koala/src/supervisor/process-supervisor.js';
import { freePort } from '../support/nats-server.js';

describe('the all-in-one cloud’s nats-server (koala up / down)', () => {
  const home = mkdtempSync(join(tmpdir(), 'koala-bus-'));
  let config: ReturnType<typeof loadConfig>;
  let sup: BusSupervisor;
  const buses: NatsBus[] = [];
  const connect = async (user: string) => {
    const b = await NatsBus.connect({ url: natsUrlFor(config, user), name: `test-${user}`, connectTimeoutMs: 3000, reconnectWaitMs: 200 });
    buses.push(b);
    return b;
  };

  beforeAll(async () => {
    config = loadConfig({ KOALA_HOME: home, KOALA_NATS_PORT: String(await freePort()), KOALA_ZONE: 'aio-1a', KOALA_NODE_NAME: 'aio-node' });
    sup = new BusSupervisor(config);
  });

  afterAll(async () => {
    for (const b of buses) await b.close().catch(() => undefined);
    await sup.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('starts once with root-only secrets, and gives every component its own user', async () => {
    const first = await sup.start();
    expect(first.started).toBe(true);
    expect(await sup.start()).toEqual({ pid: first.pid, started: false });
    const f = busFiles(config);
    expect(statSync(f.dir).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(f.dir).filter((n) => n !== 'jetstream')) expect([name, statSync(join(f.dir, name)).mode & 0o777]).toEqual([name, 0o600]);
    expect(['clc', 'cc', 'sc', 'nc'].map((short) => componentUser(config, { short: short as 'clc' }))).toEqual(['clc', 'cc-aio-1a', 'sc-aio-1a', 'nc-aio-node']);
    expect(natsUrlFor(config, 'nc-aio-node')).toMatch(new RegExp(`^nats://nc-aio-node:[A-Za-z0-9_-]{32}@127\\.0\\.0\\.1:${config.natsPort}$`));

    const cc = await connect('cc-aio-1a');
    const nc = await connect('nc-aio-node');
    nc.handle(nodeConsoleOutput('aio-1a', 'aio-node'), () => ({ output: '', timestamp: 't' }));
    await nc.flush();
    expect(await cc.request(nodeConsoleOutput('aio-1a', 'aio-node'), { instanceId: 'i-1', node: 'aio-node' })).toEqual({ output: '', timestamp: 't' });
    await expect(nc.gather(Subjects.status, z.unknown(), {}, { timeoutMs: 300 })).rejects.toThrow(/Permissions Violation/);
    // Without a password nobody gets in.
    await expect(NatsBus.connect({ url: `nats://127.0.0.1:${config.natsPort}`, name: 'anon', connectTimeoutMs: 2000 })).rejects.toThrow(/authorization/i);
  }, 30_000);

  it('adds a node of another host with a reload, keeping everyone else’s password', async () => {
    const before = natsUrlFor(config, 'clc');
    expect(writeBusConfig(config, [{ zone: 'aio-1a', node: 'other-host' }])).toBe(true);
    process.kill(sup.running()!, 'SIGHUP');
    expect(natsUrlFor(config, 'clc')).toBe(before);
    // nats-server applies a reload asynchronously; on a loaded machine that takes seconds.
    const deadline = Date.now() + 20_000;
    let other: NatsBus | undefined;
    while (!other) {
      other = await connect('nc-other-host').catch((e) => {
        if (Date.now() > deadline) throw e;
        return undefined;
      });
      if (!other) await new Promise((r) => setTimeout(r, 100));
    }
    other.handle(nodeConsoleOutput('aio-1a', 'other-host'), () => ({ output: 'x', timestamp: 't' }));
    await other.flush();
    const cc = await connect('cc-aio-1a');
    expect((await cc.request(nodeConsoleOutput('aio-1a', 'other-host'), { instanceId: 'i-1', node: 'other-host' })).output).toBe('x');
  }, 30_000);

  it('stops, and refuses to start on a port someone else holds', async () => {
    const pid = sup.running()!;
    expect(await sup.stop()).toBe('stopped');
    expect(alive(pid)).toBe(false);
    expect(await sup.stop()).toBe('not-running');
    const squatter = createServer().listen(config.natsPort, '127.0.0.1');
    await new Promise((r) => squatter.once('listening', r));
    try {
      await expect(sup.start()).rejects.toThrow(/is taken by another process/);
    } finally {
      squatter.close();
    }
  });
});
