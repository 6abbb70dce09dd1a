import { cpus, totalmem } from 'node:os';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { listNodes } from '@koala/contracts';
import { loadConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { clusterModule } from '../../apps/cluster-controller/src/cluster.module.js';
import { nodeModule } from '../../apps/node-controller/src/node.module.js';
import { TestNatsServer } from '../support/nats-server.js';

async function eventually<T>(fn: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      if (Date.now() > deadline) throw last;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe('NC heartbeat reaches the CC over a real NATS', () => {
  let nats: TestNatsServer;
  let cc: INestApplicationContext;
  let nc: INestApplicationContext | undefined;
  let client: NatsBus;
  const zone = `hb-${process.pid}`;

  beforeAll(async () => {
    nats = await TestNatsServer.start();
    const config = loadConfig({
      KOALA_NATS_URL: nats.url,
      KOALA_ZONE: zone,
      KOALA_NODE_NAME: 'node-a',
      KOALA_HEARTBEAT_MS: '200',
      KOALA_NODE_TIMEOUT_MS: '1500',
      KOALA_HOME: mkdtempSync(join(tmpdir(), 'koala-hb-')),
      KOALA_LOG_LEVEL: 'warn',
    });
    cc = (await startDaemon('cluster-controller', clusterModule, { zoned: true, config })).app;
    nc = (await startDaemon('node-controller', nodeModule, { zoned: true, config })).app;
    client = await NatsBus.connect({ url: nats.url, name: 'test', reconnectWaitMs: 200 });
  });

  afterAll(async () => {
    await nc?.close();
    await cc?.close();
    await client?.close();
    await nats?.dispose();
  });

  it('registers the node with the host’s real cores and memory', async () => {
    const res = await eventually(async () => {
      const r = await client.request(listNodes(zone), {});
      if (!r.nodes.length) throw new Error('no node yet');
      return r;
    });
    expect(res.zone).toBe(zone);
    const [n] = res.nodes;
    expect(n).toMatchObject({ node: 'node-a', zone, state: 'up' });
    expect(n.total.cores).toBe(cpus().length);
    expect(n.total.memoryMiB).toBe(Math.floor(totalmem() / 1024 / 1024));
    expect(n.total.diskGiB).toBeGreaterThan(0);
  });

  it('keeps working after NATS restarts: both sides reconnect by themselves', async () => {
    await nats.stop();
    await new Promise((r) => setTimeout(r, 500));
    await nats.restart();
    const before = Date.now();
    const res = await eventually(async () => {
      const r = await client.request(listNodes(zone), {}, { timeoutMs: 500 });
      if (!r.nodes.length || Date.parse(r.nodes[0].lastSeen) < before) throw new Error('no fresh heartbeat yet');
      return r;
    }, 20_000);
    expect(res.nodes[0].state).toBe('up');
  }, 30_000);

  it('reports a node down when its heartbeats stop', async () => {
    await nc!.close();
    nc = undefined;
    const res = await eventually(async () => {
      const r = await client.request(listNodes(zone), {});
      if (r.nodes[0].state !== 'down') throw new Error('still up');
      return r;
    });
    expect(res.nodes[0].node).toBe('node-a');
  });
});
