import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { listNodes } from '@koala/contracts';
import { Libvirt } from '@koala/libvirt';
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
  // The NC reads the host from the machine's real libvirtd; its pools get unique names.
  const pools = [`koala-test-hb-inst-${process.pid}`, `koala-test-hb-img-${process.pid}`];

  beforeAll(async () => {
    nats = await TestNatsServer.start();
    const config = loadConfig({
      KOALA_NATS_URL: nats.url,
      KOALA_ZONE: zone,
      KOALA_NODE_NAME: 'node-a',
      KOALA_HEARTBEAT_MS: '200',
      KOALA_NODE_TIMEOUT_MS: '1500',
      KOALA_HOME: mkdtempSync(join(tmpdir(), 'koala-hb-')),
      KOALA_LIBVIRT_URI: 'qemu:///system',
      KOALA_NC_INSTANCES_POOL: pools[0],
      KOALA_IMAGE_CACHE_POOL: pools[1],
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
    const lv = await Libvirt.connect({ uri: 'qemu:///system' });
    for (const p of await lv.listAllStoragePools()) {
      if (!pools.includes(p.name)) continue;
      for (const v of await lv.listAllVolumes(p).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
      await lv.destroyStoragePool(p).catch(() => undefined);
      await lv.undefineStoragePool(p).catch(() => undefined);
    }
    await lv.close();
  });

  it('registers the node with the host’s real cores and memory (as libvirt reports them)', async () => {
    const res = await eventually(async () => {
      const r = await client.request(listNodes(zone), {});
      if (!r.nodes.length) throw new Error('no node yet');
      return r;
    });
    expect(res.zone).toBe(zone);
    const [n] = res.nodes;
    expect(n).toMatchObject({ node: 'node-a', zone, state: 'up' });
    const lv = await Libvirt.connect({ uri: 'qemu:///system' });
    const info = await lv.getNodeInfo();
    await lv.close();
    expect(n.total.cores).toBe(info.cpus);
    expect(n.total.memoryMiB).toBe(Math.floor(info.memory / 1024));
    expect(n.hypervisorUri).toBe('qemu:///system');
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
