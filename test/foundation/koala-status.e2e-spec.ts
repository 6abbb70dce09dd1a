/**
 * `koala status` for a cloud of several zones: the CLC, two zones' CCs, an SC, and simulated
 * NCs (each its own test-driver host with its own cores/memory), on a private nats-server.
 * Every CC, SC and NC is one row, grouped by zone, with host, version, capacity, last seen;
 * `koala health` keeps judging the CLI's own zone.
 */
import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { KOALA_VERSION, listNodes } from '@koala/contracts';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { clusterModule } from '../../apps/cluster-controller/src/cluster.module.js';
import { nodeModule } from '../../apps/node-controller/src/node.module.js';
import { FakeTgtd } from '../../apps/storage-controller/src/iscsi/fake-tgtd.js';
import { storageModule } from '../../apps/storage-controller/src/storage.module.js';
import { gatherStatus, health, status } from '../../apps/koala/src/commands/status.js';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { TestNatsServer } from '../support/nats-server.js';
import { simHostUri } from '../support/sim-hosts.js';

jest.setTimeout(120_000);

describe('koala status over several zones', () => {
  let nats: TestNatsServer;
  let cloud: TestCloud;
  let probe: NatsBus;
  const apps: INestApplicationContext[] = [];
  const home = mkdtempSync(join(tmpdir(), 'koala-status-'));
  const tag = Math.random().toString(16).slice(2, 8);
  const zoneA = `st-a-${tag}`;
  const zoneB = `st-b-${tag}`;
  // zone A: three nodes of different sizes; zone B: one
  const nodes = [
    { zone: zoneA, name: `${zoneA}-n1`, cores: 4, memoryMiB: 2048 },
    { zone: zoneA, name: `${zoneA}-n2`, cores: 8, memoryMiB: 4096 },
    { zone: zoneA, name: `${zoneA}-n3`, cores: 2, memoryMiB: 1024 },
    { zone: zoneB, name: `${zoneB}-n1`, cores: 16, memoryMiB: 8192 },
  ];
  let cliConfig: KoalaConfig;

  const env = (extra: Record<string, string>) => loadConfig({ KOALA_NATS_URL: nats.url, KOALA_HOME: home, KOALA_LOG_LEVEL: 'error', KOALA_HEARTBEAT_MS: '300', ...extra });

  beforeAll(async () => {
    nats = await TestNatsServer.start();
    cloud = await startCloud({ natsUrl: nats.url, env: { KOALA_LOG_LEVEL: 'error' } });
    for (const zone of [zoneA, zoneB]) apps.push((await startDaemon('cluster-controller', clusterModule, { zoned: true, config: env({ KOALA_ZONE: zone }) })).app);
    for (const [k, n] of nodes.entries()) {
      const config = env({
        KOALA_ZONE: n.zone,
        KOALA_NODE_NAME: n.name,
        KOALA_LIBVIRT_URI: simHostUri(join(home, 'hosts'), k, n),
        KOALA_IMAGE_CACHE_POOL: `koala-st-img-${tag}-${k}`,
        KOALA_NC_INSTANCES_POOL: `koala-st-inst-${tag}-${k}`,
      });
      apps.push((await startDaemon('node-controller', (c) => nodeModule(c), { zoned: true, config })).app);
    }
    const scConfig = env({
      KOALA_ZONE: zoneA,
      KOALA_LIBVIRT_URI: simHostUri(join(home, 'hosts'), 'sc', { cores: 1, memoryMiB: 512 }),
      KOALA_VOLUMES_POOL: `koala-st-vol-${tag}`,
      KOALA_SNAPSHOTS_POOL: `koala-st-snap-${tag}`,
      KOALA_STORAGE_CAPACITY_BYTES: String(10 * 1024 ** 3),
    });
    apps.push((await startDaemon('storage-controller', (ctx) => storageModule(ctx, { runner: new FakeTgtd() }), { zoned: true, config: scConfig })).app);
    probe = await NatsBus.connect({ url: nats.url, name: 'status-probe' });
    for (const zone of [zoneA, zoneB]) {
      const want = nodes.filter((n) => n.zone === zone).length;
      for (let i = 0; ; i++) {
        const r = await probe.request(listNodes(zone), {}, { timeoutMs: 1000 }).catch(() => undefined);
        if (r && r.nodes.filter((n) => n.state === 'up').length === want) break;
        if (i > 100) throw new Error(`${zone}: nodes never came up`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    cliConfig = loadConfig({ KOALA_NATS_URL: nats.url, KOALA_HOME: home, KOALA_API_PORT: new URL(cloud.endpoint).port, KOALA_ZONE: zoneA });
  });

  afterAll(async () => {
    for (const a of apps.reverse()) await a.close().catch(() => undefined);
    await probe?.close();
    await cloud?.close();
    await nats?.dispose();
    rmSync(home, { recursive: true, force: true });
  });

  it('lists every zone with its CC, SC and each NC, one row each', async () => {
    const t0 = Date.now();
    const s = await gatherStatus(cliConfig);
    expect(s.view.zones.map((z) => [z.zone, z.state, z.nodesUp, z.nodes])).toEqual([
      [zoneA, 'available', 3, 3],
      [zoneB, 'available', 1, 1],
    ]);
    expect(s.view.clc.map((r) => [r.role, r.state, r.version])).toEqual([['CLC', 'up', KOALA_VERSION]]);
    const a = s.view.zones[0]!.rows;
    expect(a.map((r) => [r.role, r.name])).toEqual([
      ['CC', `cluster-controller@${hostname()}/${zoneA}`],
      ['SC', `storage-controller@${hostname()}/${zoneA}`],
      ...nodes.filter((n) => n.zone === zoneA).map((n) => ['NC', n.name]),
    ]);
    for (const r of a) expect(r).toMatchObject({ state: 'up', host: hostname(), version: KOALA_VERSION });
    // each NC shows its own host's size (from its test-driver host file)
    for (const n of nodes.filter((x) => x.zone === zoneA)) {
      const row = a.find((r) => r.name === n.name)!;
      expect(row.capacity!.total).toMatchObject({ cores: n.cores, memoryMiB: n.memoryMiB });
      expect(row.domains).toBe(0);
      expect(Date.parse(row.lastSeen!)).toBeGreaterThan(t0 - 5000);
    }
    // the CC's row carries the zone's totals
    expect(a[0]!.capacity!.total.cores).toBe(4 + 8 + 2);
    expect(a[1]!.storage).toMatchObject({ capacityBytes: 10 * 1024 ** 3 });
    expect(s.view.zones[1]!.rows.map((r) => [r.role, r.capacity?.total.cores])).toEqual([
      ['CC', 16],
      ['NC', 16],
    ]);
  });

  it('prints one table grouped by zone, and --json with the zones; health judges the CLI zone', async () => {
    const out: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    let code: number;
    let jsonCode: number;
    try {
      code = await status(cliConfig, []);
      jsonCode = await status(cliConfig, ['--json']);
    } finally {
      spy.mockRestore();
    }
    const text = out[0]!;
    const lines = text.split('\n');
    const zoneOrder = lines.filter((l) => l.startsWith(zoneA) || l.startsWith(zoneB)).map((l) => l.split(/\s+/).slice(0, 3).join(' '));
    expect(zoneOrder).toEqual([
      `${zoneA} CC cluster-controller@${hostname()}/${zoneA}`,
      `${zoneA} SC storage-controller@${hostname()}/${zoneA}`,
      `${zoneA} NC ${zoneA}-n1`,
      `${zoneA} NC ${zoneA}-n2`,
      `${zoneA} NC ${zoneA}-n3`,
      `${zoneB} CC cluster-controller@${hostname()}/${zoneB}`,
      `${zoneB} NC ${zoneB}-n1`,
    ]);
    expect(text).toContain(`${zoneA} available (3/3 nodes up)`);
    const json = JSON.parse(out[1]!);
    expect(json.zones.map((z: { zone: string; rows: unknown[] }) => [z.zone, z.rows.length])).toEqual([
      [zoneA, 5],
      [zoneB, 2],
    ]);
    // `nodes` stays the CLI zone's, as before
    expect(json.nodes.map((n: { node: string }) => n.node)).toEqual(nodes.filter((n) => n.zone === zoneA).map((n) => n.name));
    expect(json.healthy).toBe(true);
    expect([code!, jsonCode!]).toEqual([0, 0]);
    expect(await health(cliConfig)).toBe(0);
    // a CLI pointed at a zone with no nodes is not healthy (unchanged semantics)
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await health({ ...cliConfig, zone: `st-none-${tag}` })).toBe(1);
    } finally {
      err.mockRestore();
    }
  });
});
