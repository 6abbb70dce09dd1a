/**
 * `npm run bench:scale -- --nodes N --instances M [--concurrency C] [--json FILE] [--compare-moto]`
 * (bench/scale-cli.mjs builds, then runs this file through jest with BENCH_* set).
 *
 * The CLC, one CC and N simulated nodes as separate processes running the compiled code
 * (test/support/scale-harness.ts: each node its own libvirt test-driver host with 8, 12 or 16
 * cores, or CORES, 1.5 × CORES and 2 × CORES with `--node-cores CORES`, and 256 MiB a core, 50 NCs a process), on a private nats-server; M t1.micro through the
 * EC2 API (@aws-sdk/client-ec2, RunInstances of up to 20, C calls in flight) until all run;
 * correctness checked as the smoke test does; DescribeInstances over everything; all terminated.
 * Prints a table and writes JSON (`--json`). Asserts nothing about timings.
 *
 * Placement latency is the CC's answer time to `cc.place-instances` as seen on the wire (a NATS
 * subscriber on the request subject and on `_INBOX.>` matches each request to its reply).
 * `--compare-moto` runs the same API workload against moto_server (on loopback) when installed.
 */
import { jest } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { EC2Client, DescribeImagesCommand, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { placeInstances } from '@koala/contracts';
import { loadInstanceTypes } from '../apps/cloud-controller/src/instance-types/instance-types.service.js';
import { freePort } from '../test/support/nats-server.js';
import { checkScale, describeAll, launchAll, pct, startScaleCloud, terminateAll, type ScaleCheck, type ScaleCloud } from '../test/support/scale-harness.js';

const NODES = Number(process.env.BENCH_NODES ?? 50);
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 500);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const HEARTBEAT_MS = Number(process.env.BENCH_HEARTBEAT_MS ?? 2000);
const PER_PROCESS = Number(process.env.BENCH_NODES_PER_PROCESS ?? 50);
const JSON_FILE = process.env.BENCH_JSON;
/** Hosts of CORES, 1.5 × CORES and 2 × CORES cores by node index (default: the harness's 8, 12, 16). */
const NODE_CORES = process.env.BENCH_NODE_CORES ? Number(process.env.BENCH_NODE_CORES) : undefined;
const hostOf = NODE_CORES ? (k: number) => ({ cores: Math.round(NODE_CORES * [1, 1.5, 2][k % 3]!), memoryMiB: Math.round(NODE_CORES * [1, 1.5, 2][k % 3]!) * 256 }) : undefined;
const MOTO = process.env.BENCH_COMPARE_MOTO === '1';
jest.setTimeout(3_600_000);

const types = new Map(loadInstanceTypes(undefined).map((t) => [t.name, t]));
const resources = (name: string) => types.get(name)!;
const r1 = (x: number) => Math.round(x * 10) / 10;

/** `name{labels} value` lines of a Prometheus text answer whose name and labels match. */
function series(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function motoWorkload(): Promise<Record<string, number | string> | { skipped: string }> {
  if (spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status !== 0) return { skipped: 'moto_server not installed' };
  const port = await freePort();
  const moto: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const ec2 = new EC2Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 });
  try {
    for (let i = 0; ; i++) {
      if (
        await fetch(`http://127.0.0.1:${port}/moto-api/`).then(
          () => true,
          () => false,
        )
      )
        break;
      if (i > 100) throw new Error('moto_server did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    const imageId = images.Images?.[0]?.ImageId;
    if (!imageId) return { skipped: 'moto has no image' };
    const l = await launchAll(ec2, { imageId, instances: INSTANCES, concurrency: CONCURRENCY, instanceType: 't1.micro', exact: true });
    const d: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await describeAll(ec2);
      d.push(performance.now() - t);
    }
    const term = await terminateAll(ec2, l.launched, { concurrency: CONCURRENCY });
    return {
      instances: l.launched.length,
      launchesPerSecond: r1(l.launched.length / l.runSeconds),
      runInstancesP50Ms: r1(pct(l.runLatencyMs, 50)),
      runInstancesP99Ms: r1(pct(l.runLatencyMs, 99)),
      allRunningSeconds: r1(l.allRunningSeconds),
      describe1000P50Ms: r1(pct(d, 50)),
      terminateSeconds: r1(term.seconds),
      errors: l.errors.length,
      ...(l.errors.length ? { firstError: l.errors[0] } : {}),
    } as Record<string, number | string>;
  } finally {
    ec2.destroy();
    moto.kill('SIGTERM');
  }
}

describe('scale: CLC + CC + simulated nodes through the EC2 API', () => {
  let cloud: ScaleCloud | undefined;
  let sniff: NatsConnection | undefined;

  afterAll(async () => {
    await sniff?.close().catch(() => undefined);
    await cloud?.close();
  });

  it(`${NODES} nodes, ${INSTANCES} instances`, async () => {
    const t0 = performance.now();
    cloud = await startScaleCloud({ nodes: NODES, nodesPerProcess: PER_PROCESS, heartbeatMs: HEARTBEAT_MS, ...(hostOf ? { host: hostOf } : {}) });
    const startSeconds = (performance.now() - t0) / 1000;
    const capacity = cloud.nodes.reduce((a, n) => a + Math.min(n.cores, Math.floor(n.memoryMiB / 128)), 0);
    if (INSTANCES > capacity) throw new Error(`${INSTANCES} instances do not fit ${NODES} nodes (${capacity} t1.micro)`);

    // placement: the CC's answer time to each place-instances request, on the wire
    sniff = await natsConnect({ servers: cloud.natsUrl, name: 'scale-sniffer' });
    const asked = new Map<string, number>();
    const placementMs: number[] = [];
    const reqSub = sniff.subscribe(placeInstances(cloud.zone).subject);
    const inbox = sniff.subscribe('_INBOX.>');
    void (async () => {
      for await (const m of reqSub) if (m.reply) asked.set(m.reply, performance.now());
    })();
    void (async () => {
      for await (const m of inbox) {
        const t = asked.get(m.subject);
        if (t !== undefined) {
          placementMs.push(performance.now() - t);
          asked.delete(m.subject);
        }
      }
    })();
    await sniff.flush();

    const ec2 = cloud.ec2();
    const launch = await launchAll(ec2, { imageId: cloud.imageId, zone: cloud.zone, instances: INSTANCES, concurrency: CONCURRENCY });
    let check: ScaleCheck | undefined;
    for (let i = 0; i < 60; i++) {
      check = await checkScale(
        cloud,
        launch.launched.filter((id) => !launch.failed.includes(id)),
        resources,
      );
      if (!check.mismatched.length) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const describeMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await describeAll(ec2);
      describeMs.push(performance.now() - t);
    }
    // why launches failed (their state reason), by code
    const failedReasons: Record<string, number> = {};
    for (let i = 0; i < launch.failed.length; i += 100) {
      const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: launch.failed.slice(i, i + 100) }));
      for (const res of r.Reservations ?? []) for (const inst of res.Instances ?? []) failedReasons[inst.StateReason?.Code ?? '?'] = (failedReasons[inst.StateReason?.Code ?? '?'] ?? 0) + 1;
    }
    const clcMetrics = await (await fetch(new URL('/metrics', cloud.endpoint))).text();
    const ccMetrics = await (await fetch(cloud.ccMetricsUrl)).text();
    const term = await terminateAll(ec2, launch.launched, { concurrency: CONCURRENCY });
    const pids = cloud.pids();
    const result = {
      nodes: NODES,
      instances: launch.launched.length,
      launchesPerSecond: r1(launch.launched.length / launch.runSeconds),
      runInstancesP50Ms: r1(pct(launch.runLatencyMs, 50)),
      runInstancesP99Ms: r1(pct(launch.runLatencyMs, 99)),
      placementP50Ms: r1(pct(placementMs, 50)),
      placementP99Ms: r1(pct(placementMs, 99)),
      allRunningSeconds: r1(launch.allRunningSeconds),
      describe1000P50Ms: r1(pct(describeMs, 50)),
      terminateSeconds: r1(term.seconds),
      clcPeakRssMiB: r1(cloud.peakRssMiB(pids.clc)),
      ccPeakRssMiB: r1(cloud.peakRssMiB(pids.cc)),
      concurrency: CONCURRENCY,
      heartbeatMs: HEARTBEAT_MS,
      startSeconds: r1(startSeconds),
      ncHostPeakRssMiB: r1(Math.max(...pids.ncHosts.map((p) => cloud!.peakRssMiB(p)))),
      runInstancesCalls: launch.runLatencyMs.length,
      failedLaunches: launch.failed.length,
      failedReasons,
      errors: launch.errors,
      // where a RunInstances call's time goes, from the CLC's and CC's own metrics (means)
      clcPlaceRoundTripMeanMs: r1(
        (series(clcMetrics, 'koala_nats_request_duration_seconds_sum', { contract: 'cc.place-instances' }) /
          series(clcMetrics, 'koala_nats_request_duration_seconds_count', { contract: 'cc.place-instances' })) *
          1000,
      ),
      ccDecisionMeanMs: r1((series(ccMetrics, 'koala_scheduler_decision_duration_seconds_sum') / series(ccMetrics, 'koala_scheduler_decision_duration_seconds_count')) * 1000),
      clcRunInstancesMeanMs: r1(
        (series(clcMetrics, 'koala_ec2_request_duration_seconds_sum', { action: 'RunInstances' }) / series(clcMetrics, 'koala_ec2_request_duration_seconds_count', { action: 'RunInstances' })) * 1000,
      ),
      check: { lost: check!.lost.length, duplicated: check!.duplicated.length, overcommitted: check!.overcommitted.length, mismatchedNodes: check!.mismatched.length },
      ...(MOTO ? { moto: await motoWorkload() } : {}),
    };
    const rows = Object.entries(result).map(([k, v]) => `  ${k.padEnd(28)} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
    process.stdout.write(`\nscale bench: ${NODES} simulated nodes (${PER_PROCESS} a process), 1 CC, 1 CLC, ${INSTANCES} t1.micro, ${CONCURRENCY} RunInstances in flight\n${rows.join('\n')}\n`);
    if (JSON_FILE) writeFileSync(JSON_FILE, JSON.stringify(result, null, 2) + '\n');
  });
});
