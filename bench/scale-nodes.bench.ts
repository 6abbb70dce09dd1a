/**
 * The road to hundreds of nodes and ten thousand instances: one real CLC (fresh PostgreSQL
 * database), one CC (ROUNDROBIN) and BENCH_NODES node controllers on libvirt's test driver, all
 * in this process on a private nats-server, driven by @aws-sdk/client-ec2. Prints figures; asserts
 * nothing about timings.
 *
 * Run (as root; PostgreSQL, libvirtd, nats-server and genisoimage installed:
 * `bash deploy/scripts/host-services.sh`):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/scale-jest.config.js bench/scale-nodes.bench.ts
 * Knobs (environment):
 *   BENCH_NODES=50            simulated nodes (NCs), each its own `test:///default` connection and pools
 *   BENCH_INSTANCES=1000      t1.micro instances to launch (clamped to the zone's capacity, which is
 *                             printed: a test-driver host has 16 CPUs, 3 GiB, so 16 t1.micro a node)
 *   BENCH_HEARTBEAT_MS=1000   KOALA_HEARTBEAT_MS of the NCs
 *   BENCH_RUN_CONCURRENCY=1   RunInstances calls in flight at once (each MaxCount=20, MinCount=1)
 *   BENCH_TERMINATE_BATCH=100 instance ids per TerminateInstances call
 *
 * What is measured (wall clock, this process):
 *  - registration: from the first NC start until the CC's listNodes shows all nodes `up`;
 *  - heartbeats: a raw NATS subscriber on the zone's heartbeat subject counts messages and bytes
 *    in a 5 s window with no instances and again with all of them running;
 *  - RunInstances: calls of MaxCount=20 t1.micro until BENCH_INSTANCES are launched: launches/s,
 *    p50/p95 latency of the call;
 *  - running: until DescribeInstances (filter instance-state-name=running, MaxResults 1000,
 *    paginated, polled every second) counts them all;
 *  - DescribeInstances over everything (MaxResults 1000 and 100, paginated) and
 *    DescribeAvailabilityZones `verbose`, 5 rounds each; the CC's listNodes (size of the answer)
 *    and a walk over its listDomains pages (what reconciliation reads);
 *  - placement spread (instances per node, from the CLC's database);
 *  - memory and CPU: RSS/heap of this process (the CLC, the CC and every NC share it), CPU time
 *    of this process, libvirtd (it hosts the test driver) and the nats-server per phase; the
 *    event-loop delay (everything shares one loop);
 *  - TerminateInstances of everything and the time until DescribeInstances shows all `terminated`.
 * Clean-up: NCs and CC closed, every domain launched and every pool named after the run removed
 * from the test driver, database dropped, nats-server stopped, temporary homes removed.
 */
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { INestApplicationContext } from '@nestjs/common';
import { DescribeAvailabilityZonesCommand, DescribeInstancesCommand, RunInstancesCommand, TerminateInstancesCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { listDomains, listNodes, Subjects, type ListNodesResponse, type NodeDomains } from '@koala/contracts';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { Libvirt } from '@koala/libvirt';
import { NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { runAdminCommand } from '../apps/cloud-controller/src/admin/admin-commands.js';
import { clusterModule } from '../apps/cluster-controller/src/cluster.module.js';
import { nodeModule } from '../apps/node-controller/src/node.module.js';
import { startCloud, type TestCloud } from '../test/support/cloud.js';
import { TestNatsServer } from '../test/support/nats-server.js';
import { sleep, until } from './instances-support.js';

const NODES = Number(process.env.BENCH_NODES ?? 50);
const WANTED = Number(process.env.BENCH_INSTANCES ?? 1000);
const HEARTBEAT_MS = Number(process.env.BENCH_HEARTBEAT_MS ?? 1000);
const RUN_CONCURRENCY = Number(process.env.BENCH_RUN_CONCURRENCY ?? 1);
const TERMINATE_BATCH = Number(process.env.BENCH_TERMINATE_BATCH ?? 100);
const PER_CALL = 20;
const TYPE = { name: 't1.micro', cores: 1, memoryMiB: 128, diskGiB: 1 } as const;
const URI = 'test:///default';
jest.setTimeout(3_600_000);

// ---- small helpers ------------------------------------------------------------------------

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
const ms = (x: number) => `${x.toFixed(0)} ms`;
const sec = (x: number) => `${(x / 1000).toFixed(1)} s`;
const mib = (x: number) => `${(x / 1024 ** 2).toFixed(0)} MiB`;

/** utime + stime of a process in ms (/proc/<pid>/stat; clock ticks assumed 100 Hz). */
function procCpuMs(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

/** The pid of the first process whose command line satisfies `match` (read-only /proc scan). */
function findPid(match: (argv: string[]) => boolean): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.length && match(argv)) return Number(d);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

interface Sample {
  at: number;
  self: number;
  libvirtd: number;
  nats: number;
}

it(`scale: ${NODES} simulated nodes, ${WANTED} t1.micro instances`, async () => {
  const tag = randomBytes(3).toString('hex');
  const zone = `scale-${tag}`;
  const homes: string[] = [];
  const ncs: INestApplicationContext[] = [];
  const launched: string[] = [];
  let nats: TestNatsServer | undefined;
  let cloud: TestCloud | undefined;
  let cc: INestApplicationContext | undefined;
  let lv: Libvirt | undefined;
  let probe: NatsBus | undefined;
  let raw: NatsConnection | undefined;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const out: string[] = [];
  const line = (s = '') => out.push(s);

  const env = (extra: Record<string, string>): KoalaConfig => {
    const home = mkdtempSync(join(tmpdir(), 'koala-scale-'));
    homes.push(home);
    return loadConfig({
      KOALA_HOME: home,
      KOALA_NATS_URL: nats!.url,
      KOALA_ZONE: zone,
      KOALA_LOG_LEVEL: 'error',
      KOALA_HEARTBEAT_MS: String(HEARTBEAT_MS),
      // 2 shared cores: a heartbeat may be late while the loop is busy; do not call nodes down for it.
      KOALA_NODE_TIMEOUT_MS: String(Math.max(20_000, HEARTBEAT_MS * 20)),
      ...extra,
    });
  };
  const nodeName = (i: number) => `${zone}-n${String(i).padStart(3, '0')}`;

  try {
    nats = await TestNatsServer.start();
    const natsPid = findPid((a) => a[0]!.endsWith('nats-server') && a.includes(String(nats!.port)));
    const libvirtdPid = findPid((a) => a[0]!.endsWith('libvirtd'));
    const sample = (): Sample => ({ at: performance.now(), self: (process.cpuUsage().user + process.cpuUsage().system) / 1000, libvirtd: procCpuMs(libvirtdPid), nats: procCpuMs(natsPid) });
    const phases: Array<{ name: string; from: Sample; to: Sample; loopP99: number; loopMax: number }> = [];
    let mark = sample();
    const phase = (name: string) => {
      const now = sample();
      phases.push({ name, from: mark, to: now, loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6 });
      loop.reset();
      mark = now;
    };

    // The test driver's state lives in libvirtd while any connection to it is open: this one
    // stays open until the clean-up, so the clean-up sees what the NCs left.
    lv = await Libvirt.connect({ uri: URI });
    cloud = await startCloud({ natsUrl: nats.url, env: { KOALA_LOG_LEVEL: 'error', KOALA_RECONCILE_INTERVAL_MS: '5000', KOALA_RECONCILE_GRACE_MS: '60000' } });
    const ec2: EC2Client = cloud.ec2();
    probe = await NatsBus.connect({ url: nats.url, name: 'scale-probe' });
    raw = await natsConnect({ servers: nats.url, name: 'scale-heartbeat-counter' });
    const hb = { msgs: 0, bytes: 0 };
    const hbSub = raw.subscribe(Subjects.nodeHeartbeat(zone));
    void (async () => {
      for await (const m of hbSub) {
        hb.msgs++;
        hb.bytes += m.data.length;
      }
    })();
    const heartbeatWindow = async (seconds: number) => {
      const m0 = hb.msgs;
      const b0 = hb.bytes;
      await sleep(seconds * 1000);
      const n = hb.msgs - m0;
      return { perSec: n / seconds, bytesPerSec: (hb.bytes - b0) / seconds, avgBytes: n ? (hb.bytes - b0) / n : 0 };
    };
    const nodes = async (): Promise<ListNodesResponse['nodes']> => (await probe!.request(listNodes(zone), {}, { timeoutMs: 10_000 })).nodes;

    // An image: 1 MiB raw (the test driver keeps volumes without bytes; each NC still downloads
    // and verifies it once).
    const rawImage = join(cloud.home, `scale-${tag}.img`);
    writeFileSync(rawImage, randomBytes(1024 * 1024));
    let imgOut = '';
    let imgErr = '';
    const code = await runAdminCommand(cloud.config, ['image', 'import', '--name', `scale-${tag}`, '--public', rawImage], { out: (s) => (imgOut += s), err: (s) => (imgErr += s) });
    if (code !== 0) throw new Error(`image import failed (${code}): ${imgErr}`);
    const imageId = imgOut.match(/emi-[0-9a-f]{17}/)![0];

    cc = (await startDaemon('cluster-controller', clusterModule, { zoned: true, config: env({ KOALA_SCHEDULER_POLICY: 'ROUNDROBIN' }) })).app;
    phase('set-up (CLC, CC, image)');

    // ---- 1. registration ------------------------------------------------------------------
    const t0 = performance.now();
    const startOne = async (i: number) => {
      const config = env({
        KOALA_NODE_NAME: nodeName(i),
        KOALA_LIBVIRT_URI: URI,
        KOALA_IMAGE_CACHE_POOL: `koala-scale-img-${tag}-${i}`,
        KOALA_NC_INSTANCES_POOL: `koala-scale-inst-${tag}-${i}`,
        KOALA_NC_STOP_TIMEOUT_MS: '5000',
      });
      const { app } = await startDaemon('node-controller', (c) => nodeModule(c), { zoned: true, config });
      ncs.push(app);
    };
    const START_WAVE = 10;
    for (let i = 0; i < NODES; i += START_WAVE) await Promise.all([...Array(Math.min(START_WAVE, NODES - i)).keys()].map((k) => startOne(i + k + 1)));
    const tStarted = performance.now() - t0;
    const up = await until(
      'all nodes up',
      async () => {
        const n = await nodes().catch(() => []);
        return n.filter((x) => x.state === 'up').length >= NODES && n;
      },
      300_000,
      100,
    );
    const tRegistered = performance.now() - t0;
    phase(`start ${NODES} NCs + registration`);

    const perNode = up.map((n) => Math.min(Math.floor(n.free.cores / TYPE.cores), Math.floor(n.free.memoryMiB / TYPE.memoryMiB), Math.floor(n.free.diskGiB / TYPE.diskGiB)));
    const capacity = perNode.reduce((a, b) => a + b, 0);
    const target = Math.min(WANTED, capacity);
    const idleHb = await heartbeatWindow(5);
    phase('idle heartbeat window (5 s)');

    // ---- 2. RunInstances ------------------------------------------------------------------
    const runLatency: number[] = [];
    const runErrors: string[] = [];
    let requested = 0;
    const tRun0 = performance.now();
    const worker = async () => {
      while (requested < target && runErrors.length === 0) {
        const n = Math.min(PER_CALL, target - requested);
        requested += n;
        const c0 = performance.now();
        try {
          const r = await ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: n, InstanceType: TYPE.name, Placement: { AvailabilityZone: zone } }));
          runLatency.push(performance.now() - c0);
          for (const i of r.Instances ?? []) launched.push(i.InstanceId!);
        } catch (e) {
          runErrors.push(`${(e as Error).name}: ${(e as Error).message}`);
        }
      }
    };
    await Promise.all([...Array(RUN_CONCURRENCY).keys()].map(() => worker()));
    const tRun = performance.now() - tRun0;
    phase('RunInstances');

    // ---- 3. until all are running ---------------------------------------------------------
    const describeAll = async (maxResults: number, filters?: { Name: string; Values: string[] }[]): Promise<{ instances: Instance[]; pages: number }> => {
      const all: Instance[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const r = await ec2.send(new DescribeInstancesCommand({ MaxResults: maxResults, NextToken: token, Filters: filters }));
        pages++;
        for (const res of r.Reservations ?? []) all.push(...(res.Instances ?? []));
        token = r.NextToken;
      } while (token);
      return { instances: all, pages };
    };
    const countIn = async (state: string) =>
      (
        await describeAll(1000, [
          { Name: 'instance-state-name', Values: [state] },
          { Name: 'availability-zone', Values: [zone] },
        ])
      ).instances.length;
    const pollLatency: number[] = [];
    await until(
      'all instances running',
      async () => {
        const p0 = performance.now();
        const n = await countIn('running');
        pollLatency.push(performance.now() - p0);
        return n >= launched.length;
      },
      900_000,
      1000,
    );
    const tRunning = performance.now() - tRun0;
    phase('until all running');

    // ---- 4. queries over everything ---------------------------------------------------------
    const timeIt = async (rounds: number, fn: () => Promise<unknown>) => {
      const xs: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const s = performance.now();
        await fn();
        xs.push(performance.now() - s);
      }
      return xs;
    };
    let pages1000 = 0;
    let pages100 = 0;
    let seen = 0;
    const d1000 = await timeIt(5, async () => {
      const r = await describeAll(1000);
      pages1000 = r.pages;
      seen = r.instances.length;
    });
    const d100 = await timeIt(3, async () => (pages100 = (await describeAll(100)).pages));
    const az = await timeIt(5, () => ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: ['verbose'] })));
    let listBytes = 0;
    let loadedNodes: ListNodesResponse['nodes'] = [];
    const ln = await timeIt(5, async () => {
      loadedNodes = await nodes();
      listBytes = JSON.stringify({ zone, nodes: loadedNodes }).length;
    });
    // What reconciliation reads each pass: every node's domains, page by page.
    let domainPages = 0;
    let domainBytes = 0;
    let domainNodes: NodeDomains[] = [];
    const ld = await timeIt(5, async () => {
      domainNodes = [];
      domainPages = 0;
      domainBytes = 0;
      let after: string | undefined;
      do {
        const page = await probe!.request(listDomains(zone), after === undefined ? {} : { after }, { timeoutMs: 10_000 });
        domainPages++;
        domainBytes = Math.max(domainBytes, JSON.stringify(page).length);
        domainNodes.push(...page.nodes);
        after = page.next;
      } while (after !== undefined);
    });
    phase('queries (DescribeInstances, DescribeAZs, listNodes, listDomains)');

    // ---- 5. placement spread, heartbeats and memory with everything running -----------------
    const rows: Array<{ node: string; n: number }> = await cloud.dataSource.query(`SELECT node, count(*)::int AS n FROM instances WHERE zone = $1 AND state = 'running' GROUP BY node`, [zone]);
    const byNode = new Map(rows.map((r) => [r.node, r.n]));
    const counts = [...Array(NODES).keys()].map((i) => byNode.get(nodeName(i + 1)) ?? 0);
    const reported = domainNodes.reduce((a, n) => a + n.domains.filter((d) => d.instanceId).length, 0);
    const loadedHb = await heartbeatWindow(5);
    phase('loaded heartbeat window (5 s)');
    const mem = process.memoryUsage();

    // ---- 6. terminate everything --------------------------------------------------------------
    const termLatency: number[] = [];
    const tTerm0 = performance.now();
    for (let i = 0; i < launched.length; i += TERMINATE_BATCH) {
      const c0 = performance.now();
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: launched.slice(i, i + TERMINATE_BATCH) }));
      termLatency.push(performance.now() - c0);
    }
    const tTermCalls = performance.now() - tTerm0;
    await until('all instances terminated', async () => (await countIn('terminated')) >= launched.length, 600_000, 1000);
    const tTerminated = performance.now() - tTerm0;
    phase('TerminateInstances + until all terminated');

    // ---- report ---------------------------------------------------------------------------------
    const row = (k: string, v: string) => line(`  ${k.padEnd(58)} ${v}`);
    line();
    line(`scale: ${NODES} simulated NCs (${URI}), 1 CC (ROUNDROBIN), 1 CLC, heartbeat ${HEARTBEAT_MS} ms, all in one process (2 shared cores)`);
    row('zone capacity (t1.micro, from heartbeats)', `${capacity}  (${Math.min(...perNode)}..${Math.max(...perNode)} a node)`);
    if (target < WANTED) row('!! BENCH_INSTANCES clamped to the capacity', `${WANTED} -> ${target}`);
    row('NCs started (waves of 10)', sec(tStarted));
    row('all nodes registered (CC listNodes up)', sec(tRegistered));
    row(
      'heartbeats, idle: msgs/s (expected), avg size, bytes/s',
      `${idleHb.perSec.toFixed(1)} (${((NODES * 1000) / HEARTBEAT_MS).toFixed(1)}), ${idleHb.avgBytes.toFixed(0)} B, ${(idleHb.bytesPerSec / 1024).toFixed(1)} KiB/s`,
    );
    row('heartbeats, all running: msgs/s, avg size, bytes/s', `${loadedHb.perSec.toFixed(1)}, ${loadedHb.avgBytes.toFixed(0)} B, ${(loadedHb.bytesPerSec / 1024).toFixed(1)} KiB/s`);
    row(`RunInstances: calls (MaxCount ${PER_CALL}, ${RUN_CONCURRENCY} in flight), launched`, `${runLatency.length} calls, ${launched.length} instances in ${sec(tRun)}`);
    row('RunInstances: launches/s', (launched.length / (tRun / 1000)).toFixed(1));
    row('RunInstances latency p50 / p95 / max', `${ms(pct(runLatency, 50))} / ${ms(pct(runLatency, 95))} / ${ms(Math.max(...runLatency))}`);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const k = Math.max(1, Math.min(5, Math.floor(runLatency.length / 2)));
    row(`RunInstances latency, first ${k} calls vs last ${k} (mean)`, `${ms(mean(runLatency.slice(0, k)))} -> ${ms(mean(runLatency.slice(-k)))}`);
    if (runErrors.length) row('RunInstances errors', runErrors.slice(0, 3).join(' | '));
    row('first RunInstances -> all running', `${sec(tRunning)}  (${(launched.length / (tRunning / 1000)).toFixed(1)} instances/s)`);
    row('  poll (DescribeInstances state=running, paginated) p50 / max', `${ms(pct(pollLatency, 50))} / ${ms(Math.max(...pollLatency))}  (${pollLatency.length} polls)`);
    row(`DescribeInstances all (${seen}), MaxResults 1000: p50 / max`, `${ms(pct(d1000, 50))} / ${ms(Math.max(...d1000))}  (${pages1000} page(s))`);
    row(`DescribeInstances all, MaxResults 100: p50 / max`, `${ms(pct(d100, 50))} / ${ms(Math.max(...d100))}  (${pages100} pages)`);
    row('DescribeAvailabilityZones verbose: p50 / max', `${ms(pct(az, 50))} / ${ms(Math.max(...az))}`);
    row('CC listNodes (NATS request): p50 / max, answer size', `${ms(pct(ln, 50))} / ${ms(Math.max(...ln))}, ${(listBytes / 1024).toFixed(0)} KiB`);
    row(
      'CC listDomains, every page: p50 / max, pages, largest page',
      `${ms(pct(ld, 50))} / ${ms(Math.max(...ld))}, ${domainPages}, ${(domainBytes / 1024).toFixed(0)} KiB (${reported} instance domains reported)`,
    );
    row('placement spread: instances a node min / max', `${Math.min(...counts)} / ${Math.max(...counts)}  (over ${NODES} nodes)`);
    row('TerminateInstances calls (batch, p50 / max)', `${termLatency.length} x ${TERMINATE_BATCH}: ${ms(pct(termLatency, 50))} / ${ms(Math.max(...termLatency))}  (${sec(tTermCalls)} for all calls)`);
    row('first TerminateInstances -> all terminated', sec(tTerminated));
    row('process RSS / heap used (CLC + CC + all NCs in-process)', `${mib(mem.rss)} / ${mib(mem.heapUsed)}`);
    line();
    line(`  ${'phase'.padEnd(58)} ${'wall'.padStart(8)} ${'this proc CPU'.padStart(14)} ${'libvirtd CPU'.padStart(13)} ${'nats CPU'.padStart(9)} ${'loop p99/max'.padStart(16)}`);
    let total = { wall: 0, self: 0, lvd: 0, nats: 0 };
    for (const p of phases) {
      const w = p.to.at - p.from.at;
      const s = p.to.self - p.from.self;
      const l = p.to.libvirtd - p.from.libvirtd;
      const n = p.to.nats - p.from.nats;
      total = { wall: total.wall + w, self: total.self + s, lvd: total.lvd + l, nats: total.nats + n };
      line(`  ${p.name.padEnd(58)} ${sec(w).padStart(8)} ${sec(s).padStart(14)} ${sec(l).padStart(13)} ${sec(n).padStart(9)} ${`${p.loopP99.toFixed(0)}/${p.loopMax.toFixed(0)} ms`.padStart(16)}`);
    }
    line(`  ${'total'.padEnd(58)} ${sec(total.wall).padStart(8)} ${sec(total.self).padStart(14)} ${sec(total.lvd).padStart(13)} ${sec(total.nats).padStart(9)}`);
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    loop.disable();
    // Clean-up: whatever is left is terminated by closing its NC and removing it from libvirt.
    const c0 = performance.now();
    for (let i = 0; i < ncs.length; i += 10) await Promise.all(ncs.slice(i, i + 10).map((a) => a.close().catch(() => undefined)));
    await cc?.close().catch(() => undefined);
    let domains = 0;
    let pools = 0;
    if (lv) {
      const ours = new Set(launched);
      for (const dom of await lv.listAllDomains().catch(() => [])) {
        if (!ours.has(dom.name)) continue;
        await lv.destroyDomain(dom).catch(() => undefined);
        await lv.undefineDomain(dom).catch(() => undefined);
        domains++;
      }
      for (const pool of await lv.listAllStoragePools().catch(() => [])) {
        if (!pool.name.includes(`-${tag}-`)) continue;
        for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
        await lv.destroyStoragePool(pool).catch(() => undefined);
        await lv.undefineStoragePool(pool).catch(() => undefined);
        pools++;
      }
      await lv.close().catch(() => undefined);
    }
    await raw?.close().catch(() => undefined);
    await probe?.close().catch(() => undefined);
    await cloud?.close().catch(() => undefined);
    await nats?.dispose().catch(() => undefined);
    for (const h of homes) rmSync(h, { recursive: true, force: true });
    process.stdout.write(`  clean-up: ${domains} left-over domain(s) and ${pools} pool(s) removed from ${URI}, database dropped, nats-server stopped (${sec(performance.now() - c0)})\n`);
  }
});
