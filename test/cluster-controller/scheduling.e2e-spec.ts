import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import {
  consoleOutput,
  EVENTS_STREAM,
  EventSubjects,
  InstanceEvent,
  instanceAction,
  NodeHeartbeat,
  placeInstances,
  runInstance,
  nodeInstanceAction,
  Subjects,
  type InstanceSpec,
} from '@koala/contracts';
import { loadConfig } from '@koala/config';
import { BusRemoteError, NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { clusterModule } from '../../apps/cluster-controller/src/cluster.module.js';
import { TestNatsServer } from '../support/nats-server.js';

let seq = 0;
const iid = () => `i-${(0xabc0000000000000n + BigInt(++seq)).toString(16).padStart(17, '0')}`;
const small = { vcpus: 1, memoryMiB: 256, rootDiskGiB: 2, ephemeralGiB: 0 };

function spec(zone: string, instanceId = iid()): InstanceSpec {
  const blob = { imageId: 'emi-0123456789abcdef0', sha256: 'a'.repeat(64), sizeBytes: 1, format: 'raw' as const, url: 'http://127.0.0.1:1/x' };
  return {
    instanceId,
    reservationId: 'r-1',
    accountId: '000000000001',
    instanceType: 'm1.small',
    resources: small,
    image: { virtualizationType: 'hvm', root: blob },
    hostname: instanceId,
    availabilityZone: zone,
    launchIndex: 0,
  };
}

async function until<T>(fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A real CC (in-process) with fake NCs on NATS: the fakes only heartbeat and accept
 * run-instance, so these tests pin the CC's placement rules exactly.
 */
describe('cluster controller scheduling', () => {
  let nats: TestNatsServer;
  let client: NatsBus;
  const apps: INestApplicationContext[] = [];
  const received: Record<string, string[]> = {};
  const timers: NodeJS.Timeout[] = [];

  async function startCc(zone: string, policy: 'GREEDY' | 'ROUNDROBIN') {
    const config = loadConfig({ KOALA_NATS_URL: nats.url, KOALA_ZONE: zone, KOALA_SCHEDULER_POLICY: policy, KOALA_HOME: mkdtempSync(join(tmpdir(), 'koala-cc-')), KOALA_LOG_LEVEL: 'error' });
    const { app } = await startDaemon('cluster-controller', clusterModule, { zoned: true, config });
    apps.push(app);
  }

  /** A fake NC: heartbeats with the given free cores and records the instances it is sent. */
  function fakeNode(zone: string, node: string, cores: number, opts: { accept?: boolean } = {}) {
    received[`${zone}/${node}`] = [];
    if (opts.accept !== false) {
      client.handle(runInstance(zone, node), (req) => {
        received[`${zone}/${node}`].push(req.instanceId);
        return { accepted: true };
      });
      client.handle(nodeInstanceAction(zone, node), () => ({ accepted: true }));
    }
    const hb: NodeHeartbeat = {
      node,
      zone,
      version: '0.1.0',
      hypervisorUri: 'test:///default',
      total: { cores, memoryMiB: 8192, diskGiB: 100 },
      free: { cores, memoryMiB: 8192, diskGiB: 100 },
      domains: [],
      sentAt: new Date().toISOString(),
    };
    client.publish(Subjects.nodeHeartbeat(zone), NodeHeartbeat, hb);
    timers.push(setInterval(() => client.publish(Subjects.nodeHeartbeat(zone), NodeHeartbeat, { ...hb, sentAt: new Date().toISOString() }), 1000));
    return hb;
  }

  beforeAll(async () => {
    nats = await TestNatsServer.start();
    client = await NatsBus.connect({ url: nats.url, name: 'test' });
    await startCc('greedy', 'GREEDY');
    await startCc('rr', 'ROUNDROBIN');
    await startCc('empty', 'GREEDY');
    await startCc('flaky', 'GREEDY');
    for (const zone of ['greedy', 'rr']) {
      fakeNode(zone, 'node-a', 2);
      fakeNode(zone, 'node-b', 2);
    }
    fakeNode('rr', 'node-c', 2);
    fakeNode('flaky', 'node-c', 2, { accept: false }); // heartbeats, but never takes work
    await client.flush();
    await new Promise((r) => setTimeout(r, 300));
  });

  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    for (const a of apps) await a.close();
    await client.close();
    await nats.dispose();
  });

  it('GREEDY packs node-a before node-b, and delivers each instance to its node', async () => {
    const ids = [iid(), iid(), iid()];
    const res = await client.request(placeInstances('greedy'), { reservationId: 'r-g', minCount: 3, instances: ids.map((id) => spec('greedy', id)) });
    expect(res.placements.map((p) => p.node)).toEqual(['node-a', 'node-a', 'node-b']);
    await until(() => received['greedy/node-a'].length === 2 && received['greedy/node-b'].length === 1);
    expect(received['greedy/node-a']).toEqual(ids.slice(0, 2));
  });

  it('reserves placed capacity until heartbeats show it: no double booking', async () => {
    // The fake nodes' heartbeats never show the instances: node-a is full (2 reserved), node-b has 1 core left.
    const res = await client.request(placeInstances('greedy'), { reservationId: 'r-g2', minCount: 1, instances: [spec('greedy'), spec('greedy'), spec('greedy')] });
    expect(res.placements.map((p) => p.node)).toEqual(['node-b']);
  });

  it('answers InsufficientInstanceCapacity when MinCount cannot fit, reserving nothing', async () => {
    const err = await client.request(placeInstances('greedy'), { reservationId: 'r-g3', minCount: 2, instances: [spec('greedy'), spec('greedy')] }).catch((e) => e);
    expect(err).toBeInstanceOf(BusRemoteError);
    expect(err.code).toBe('InsufficientInstanceCapacity');
    const none = await client.request(placeInstances('empty'), { reservationId: 'r-e', minCount: 1, instances: [spec('empty')] }).catch((e) => e);
    expect(none.code).toBe('InsufficientInstanceCapacity');
  });

  it('a node that does not accept the instance gets a failed event and its reservation back', async () => {
    const failures: InstanceEvent[] = [];
    await client
      .events({ name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: 3600_000 })
      .consume('test-failed', EventSubjects.instance('flaky'), InstanceEvent, (e) => void failures.push(e));
    const placed = await client.request(placeInstances('flaky'), { reservationId: 'r-f', minCount: 2, instances: [spec('flaky'), spec('flaky')] });
    expect(placed.placements.map((p) => p.node)).toEqual(['node-c', 'node-c']);
    await until(() => failures.length === 2, 30_000);
    expect(failures.map((f) => f.instanceId).sort()).toEqual(placed.placements.map((p) => p.instanceId).sort());
    expect(failures.every((f) => f.state === 'failed' && f.node === 'node-c' && f.reason?.code === 'Server.InternalError')).toBe(true);
    // node-c's capacity is free again.
    const res = await client.request(placeInstances('flaky'), { reservationId: 'r-f2', minCount: 2, instances: [spec('flaky'), spec('flaky')] });
    expect(res.placements.map((p) => p.node)).toEqual(['node-c', 'node-c']);
  }, 60_000);

  it('ROUNDROBIN rotates across nodes and across launches', async () => {
    const first = await client.request(placeInstances('rr'), { reservationId: 'r-r1', minCount: 1, instances: [spec('rr'), spec('rr')] });
    expect(first.placements.map((p) => p.node)).toEqual(['node-a', 'node-b']);
    const second = await client.request(placeInstances('rr'), { reservationId: 'r-r2', minCount: 1, instances: [spec('rr'), spec('rr')] });
    expect(second.placements.map((p) => p.node)).toEqual(['node-c', 'node-a']);
  });

  it('routes actions to the instance’s node and reports an unreachable node', async () => {
    await expect(client.request(instanceAction('rr'), { instanceId: 'i-1', node: 'node-a', action: 'reboot' })).resolves.toEqual({ accepted: true });
    const err = await client.request(consoleOutput('flaky'), { instanceId: 'i-1', node: 'node-c' }, { timeoutMs: 15_000 }).catch((e) => e);
    expect(err.code).toBe('Unavailable');
  }, 20_000);
});
