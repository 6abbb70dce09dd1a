/**
 * Prometheus metrics: the CLC's `/metrics` on the EC2 port (EC2 requests, instances by state,
 * NATS request latency) and a CC's own metrics port (scheduler, node capacity), read over
 * loopback as Prometheus would. Real CLC, PostgreSQL, NATS; a real CC with a heartbeating node.
 */
import { jest } from '@jest/globals';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { listNodes, NodeHeartbeat, placeInstances, runInstance, Subjects, type InstanceSpec } from '@koala/contracts';
import { loadConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { PROMETHEUS_CONTENT_TYPE } from '@koala/metrics';
import { startDaemon } from '@koala/runtime';
import { clusterModule } from '../../apps/cluster-controller/src/cluster.module.js';
import { makeInstances, seedInstances } from '../instances/seed-instances.js';
import { DEFAULT_NATS_URL, startCloud, uniqueZone, type TestCloud } from '../support/cloud.js';

jest.setTimeout(60_000);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  let cloud: TestCloud;
  let cc: INestApplicationContext | undefined;
  let bus: NatsBus;
  let ccPort: number;
  let timer: NodeJS.Timeout | undefined;
  const zone = uniqueZone('metrics');
  const home = mkdtempSync(join(tmpdir(), 'koala-metrics-'));

  beforeAll(async () => {
    cloud = await startCloud({ env: { KOALA_LOG_LEVEL: 'error' } });
    ccPort = await freePort();
    const config = loadConfig({ KOALA_NATS_URL: DEFAULT_NATS_URL, KOALA_ZONE: zone, KOALA_HOME: home, KOALA_LOG_LEVEL: 'error', KOALA_METRICS_PORT: String(ccPort) });
    cc = (await startDaemon('cluster-controller', clusterModule, { zoned: true, config })).app;
    bus = await NatsBus.connect({ url: DEFAULT_NATS_URL, name: 'metrics-test' });
    bus.handle(runInstance(zone, `${zone}-n1`), () => ({ accepted: true }));
    const hb = (): NodeHeartbeat => ({
      node: `${zone}-n1`,
      zone,
      version: '0.1.0',
      hypervisorUri: 'test:///default',
      total: { cores: 8, memoryMiB: 4096, diskGiB: 50 },
      free: { cores: 8, memoryMiB: 4096, diskGiB: 50 },
      domains: [],
      sentAt: new Date().toISOString(),
    });
    bus.publish(Subjects.nodeHeartbeat(zone), NodeHeartbeat, hb());
    timer = setInterval(() => bus.publish(Subjects.nodeHeartbeat(zone), NodeHeartbeat, hb()), 500);
    for (let i = 0; i < 100; i++) {
      const r = await bus.request(listNodes(zone), {}, { timeoutMs: 1000 }).catch(() => undefined);
      if (r?.nodes.length) break;
      await new Promise((res) => setTimeout(res, 100));
    }
  });

  afterAll(async () => {
    if (timer) clearInterval(timer);
    await cc?.close();
    await bus?.close();
    await cloud?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('CLC: /metrics on the EC2 port counts requests by action and code, and instances by state', async () => {
    const [seeded] = makeInstances({ count: 1, accounts: [cloud.admin.accountId], zones: [zone] });
    await seedInstances(cloud.dataSource, [{ ...seeded!, state: 'running', expired: false }]);
    const ec2 = cloud.ec2();
    await ec2.send(new DescribeInstancesCommand({}));
    await ec2.send(new DescribeInstancesCommand({}));
    await expect(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-nope'] }))).rejects.toThrow();
    const res = await fetch(new URL('/metrics', cloud.endpoint));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
    const text = await res.text();
    expect(sample(text, 'koala_ec2_requests_total{action="DescribeInstances",code="ok"}')).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'koala_ec2_requests_total{action="DescribeInstances",code="InvalidInstanceID.Malformed"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'koala_ec2_request_duration_seconds_count{action="DescribeInstances"}')).toBeGreaterThanOrEqual(3);
    expect(sample(text, `koala_instances{zone="${zone}",state="running"}`)).toBe(1);
    expect(sample(text, 'koala_launches_in_flight')).toBe(0);
    // an unknown Action never becomes a series of its own
    await fetch(new URL('/?Action=Evil%22Action&Version=2016-11-15', cloud.endpoint));
    expect(await (await fetch(new URL('/metrics', cloud.endpoint))).text()).not.toContain('Evil');
    // the EC2 endpoint and /healthz still answer as before
    expect((await fetch(new URL('/healthz', cloud.endpoint))).status).toBe(200);
    expect((await fetch(new URL('/metrics/x', cloud.endpoint))).status).toBe(404);
  });

  it('CC: its own metrics port shows placement decisions, node capacity and NATS latency', async () => {
    const spec = (id: string): InstanceSpec => ({
      instanceId: id,
      reservationId: 'r-1',
      accountId: '000000000001',
      instanceType: 'm1.small',
      resources: { vcpus: 2, memoryMiB: 1024, rootDiskGiB: 5, ephemeralGiB: 0 },
      image: { virtualizationType: 'hvm', root: { imageId: 'emi-0123456789abcdef0', sha256: 'a'.repeat(64), sizeBytes: 1, format: 'raw', url: 'http://127.0.0.1:1/x' } },
      hostname: id,
      availabilityZone: zone,
      launchIndex: 0,
    });
    const placed = await bus.request(placeInstances(zone), { reservationId: 'r-1', minCount: 1, instances: [spec('i-0000000000000000a'), spec('i-0000000000000000b')] });
    expect(placed.placements).toHaveLength(2);
    const text = await (await fetch(`http://127.0.0.1:${ccPort}/metrics`)).text();
    const node = `${zone}-n1`;
    expect(sample(text, `koala_scheduler_decisions_total{zone="${zone}",policy="GREEDY",result="placed"}`)).toBe(1);
    expect(sample(text, `koala_scheduler_placed_instances_total{zone="${zone}"}`)).toBe(2);
    expect(sample(text, `koala_scheduler_decision_duration_seconds_count{zone="${zone}"}`)).toBe(1);
    // two reserved instances of 2 cores: 4 of 8 used until a heartbeat shows them
    expect(sample(text, `koala_node_capacity{zone="${zone}",node="${node}",resource="cores",kind="total"}`)).toBe(8);
    expect(sample(text, `koala_node_capacity{zone="${zone}",node="${node}",resource="cores",kind="used"}`)).toBe(4);
    expect(sample(text, `koala_node_capacity{zone="${zone}",node="${node}",resource="memory_mib",kind="free"}`)).toBe(2048);
    expect(sample(text, `koala_nodes{zone="${zone}",state="up"}`)).toBe(1);
    // the CC's requests to the node (run-instance) are timed by the bus
    expect(text).toMatch(/koala_nats_request_duration_seconds_count\{contract="[a-z.-]+",outcome="ok"\} [1-9]/);
    expect((await fetch(`http://127.0.0.1:${ccPort}/`)).status).toBe(404);
  });

  it('a metrics port already in use is logged, and the component still starts', async () => {
    const config = loadConfig({ KOALA_NATS_URL: DEFAULT_NATS_URL, KOALA_ZONE: `${zone}-b`, KOALA_HOME: home, KOALA_LOG_LEVEL: 'fatal', KOALA_METRICS_PORT: String(ccPort) });
    const second = (await startDaemon('cluster-controller', clusterModule, { zoned: true, config })).app;
    try {
      expect((await bus.request(listNodes(`${zone}-b`), {}, { timeoutMs: 2000 })).nodes).toEqual([]);
    } finally {
      await second.close();
    }
    // the first CC still serves its port
    expect((await fetch(`http://127.0.0.1:${ccPort}/metrics`)).status).toBe(200);
  });
});
