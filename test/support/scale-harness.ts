/**
 * A cloud at scale for the scale bench and its smoke test, every part a real process running
 * the compiled code (`npm run build`): a private nats-server, the CLC (fresh PostgreSQL
 * database, bootstrapped, one 64 KiB public image), one CC, and N simulated nodes — each NC on
 * its own libvirt test-driver host (`test:///<dir>/host-K.xml`, its own cores and memory and
 * private domains), `nodesPerProcess` NCs to a process. Only loopback is used.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { EC2Client } from '@aws-sdk/client-ec2';
import { listDomains, listNodes, type ListNodesResponse, type NodeDomains } from '@koala/contracts';
import { NatsBus } from '@koala/messaging';
import { readEnvFile } from '../../apps/cloud-controller/src/admin/admin-env.js';
import { freePort, TestNatsServer } from './nats-server.js';
import { simHostUri, type SimHost } from './sim-hosts.js';

const run = promisify(execFile);
const ROOT = process.cwd();
const DIST = join(ROOT, 'dist', 'apps');
const CLC_MAIN = join(DIST, 'cloud-controller', 'src', 'main.js');
const CC_MAIN = join(DIST, 'cluster-controller', 'src', 'main.js');
const NC_HOST = join(ROOT, 'bench', 'scale-nc-host.mjs');
const PG_ADMIN = process.env.KOALA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface ScaleOptions {
  nodes: number;
  /** NCs per process (default 50). */
  nodesPerProcess?: number;
  heartbeatMs?: number;
  policy?: 'GREEDY' | 'ROUNDROBIN';
  /** Node K's host (default: 8, 12 or 16 cores with 256 MiB a core, by K mod 3). */
  host?: (k: number) => SimHost;
  /** Extra KOALA_* for the CLC. */
  clcEnv?: Record<string, string>;
}

export interface ScaleNode extends SimHost {
  name: string;
}

export interface ScaleCloud {
  zone: string;
  endpoint: string;
  natsUrl: string;
  imageId: string;
  nodes: ScaleNode[];
  ec2(): EC2Client;
  pids(): { clc: number; cc: number; ncHosts: number[] };
  /** The CC's metrics port (loopback). */
  ccMetricsUrl: string;
  /** The CC's node list (capacity from heartbeats). */
  listNodes(): Promise<ListNodesResponse['nodes']>;
  /** Every node's domains as the CC has them from heartbeats (all pages). */
  domains(): Promise<NodeDomains[]>;
  /** Instances in the CLC's database: id, node, state, type. */
  instances(): Promise<Array<{ id: string; node: string | null; state: string; instanceType: string }>>;
  /** Peak resident set of a process in MiB (VmHWM). */
  peakRssMiB(pid: number): number;
  close(): Promise<void>;
}

const defaultHost = (k: number): SimHost => {
  const cores = [8, 12, 16][k % 3]!;
  return { cores, memoryMiB: cores * 256 };
};

export function peakRssMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function stopChild(c: ChildProcess | undefined, timeoutMs = 15_000): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function startScaleCloud(opts: ScaleOptions): Promise<ScaleCloud> {
  if (!existsSync(CLC_MAIN) || !existsSync(CC_MAIN)) throw new Error('run `npm run build` first (the scale cloud runs the compiled components)');
  const tag = randomBytes(3).toString('hex');
  const zone = `scale-${tag}`;
  const home = mkdtempSync(join(tmpdir(), 'koala-scale-'));
  const db = `koala_scale_${tag}`;
  const children: ChildProcess[] = [];
  const logs: number[] = [];
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  let nats: TestNatsServer | undefined;
  let probe: NatsBus | undefined;
  let dbc: pg.Client | undefined;
  let clc: ChildProcess | undefined;
  let cc: ChildProcess | undefined;
  const ncHosts: ChildProcess[] = [];
  const clients: EC2Client[] = [];

  const spawnLogged = (name: string, args: string[], env: NodeJS.ProcessEnv) => {
    const fd = openSync(join(home, `${name}.log`), 'a');
    logs.push(fd);
    const c = spawn(process.execPath, args, { env, stdio: ['ignore', name.startsWith('nc-') ? 'pipe' : fd, fd] });
    children.push(c);
    return c;
  };

  const close = async () => {
    for (const c of clients) c.destroy();
    await Promise.all(ncHosts.map((c) => stopChild(c)));
    await stopChild(cc);
    await stopChild(clc);
    await probe?.close().catch(() => undefined);
    await dbc?.end().catch(() => undefined);
    await nats?.dispose().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch(() => undefined);
    await admin.end().catch(() => undefined);
    for (const fd of logs) closeSync(fd);
    if (!process.env.SCALE_KEEP_HOME) rmSync(home, { recursive: true, force: true });
  };

  try {
    nats = await TestNatsServer.start();
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}/`;
    const base: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KOALA_HOME: home,
      KOALA_NATS_URL: nats.url,
      KOALA_DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${db}`,
      KOALA_API_HOST: '127.0.0.1',
      KOALA_API_PORT: String(port),
      KOALA_PUBLIC_ENDPOINT: endpoint,
      KOALA_ZONE: zone,
      KOALA_LOG_LEVEL: 'warn',
      KOALA_HEARTBEAT_MS: String(opts.heartbeatMs ?? 2000),
      KOALA_NODE_TIMEOUT_MS: String(Math.max(20_000, (opts.heartbeatMs ?? 2000) * 10)),
    };
    const clcEnv = {
      ...base,
      // addresses are only rows here (test-driver nodes have no networking): room for thousands
      KOALA_ZONE_SUBNETS: '*=172.16.0.0/16',
      KOALA_ASSOCIATE_PUBLIC_IP: 'false',
      KOALA_RECONCILE_INTERVAL_MS: '10000',
      ...opts.clcEnv,
    };
    await run(process.execPath, [CLC_MAIN, 'migrate', 'up'], { env: clcEnv });
    await run(process.execPath, [CLC_MAIN, 'bootstrap'], { env: clcEnv });
    const creds = readEnvFile(join(home, 'admin.env'));
    if (!creds) throw new Error('bootstrap wrote no admin.env');
    const image = join(home, 'scale.img');
    writeFileSync(image, randomBytes(64 * 1024));
    const imported = await run(process.execPath, [CLC_MAIN, 'image', 'import', '--name', `scale-${tag}`, '--public', image], { env: clcEnv });
    const imageId = /emi-[0-9a-f]{8,17}/.exec(imported.stdout)?.[0];
    if (!imageId) throw new Error(`image import printed no image id: ${imported.stdout} ${imported.stderr}`);

    // SCALE_CLC_PROFILE=DIR: a V8 CPU profile of the CLC, written when it stops
    const prof = process.env.SCALE_CLC_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.SCALE_CLC_PROFILE] : [];
    clc = spawnLogged('clc', [...prof, CLC_MAIN, 'serve'], clcEnv);
    await waitFor('the CLC /healthz', async () => (await fetch(new URL('/healthz', endpoint))).ok, 60_000);
    const ccMetricsPort = await freePort();
    cc = spawnLogged('cc', [CC_MAIN], { ...base, KOALA_SCHEDULER_POLICY: opts.policy ?? 'GREEDY', KOALA_METRICS_PORT: String(ccMetricsPort) });

    const host = opts.host ?? defaultHost;
    const nodes: ScaleNode[] = [...Array(opts.nodes).keys()].map((i) => ({ name: `${zone}-n${String(i + 1).padStart(4, '0')}`, ...host(i) }));
    const per = opts.nodesPerProcess ?? 50;
    const ready: Promise<void>[] = [];
    for (let i = 0; i < nodes.length; i += per) {
      const chunk = nodes.slice(i, i + per).map((n, j) => ({ name: n.name, uri: simHostUri(join(home, 'hosts'), i + j + 1, n) }));
      const c = spawnLogged(`nc-${i / per}`, [NC_HOST], { ...base, SCALE_NODES: JSON.stringify(chunk) });
      ncHosts.push(c);
      ready.push(
        new Promise<void>((resolve, reject) => {
          let buf = '';
          const fd = logs[logs.length - 1]!;
          c.stdout!.on('data', (d: Buffer) => {
            writeSync(fd, d);
            if (buf.length > 4096) buf = buf.slice(-100);
            buf += d.toString();
            if (/^ready$/m.test(buf)) resolve();
          });
          c.once('exit', (code) => reject(new Error(`NC host ${i / per} exited (${code}) before it was ready; see ${home}/nc-${i / per}.log`)));
        }),
      );
    }
    await Promise.all(ready);
    probe = await NatsBus.connect({ url: nats.url, name: `scale-probe-${tag}` });
    const bus = probe;
    const nodesOf = async () => (await bus.request(listNodes(zone), {}, { timeoutMs: 10_000 })).nodes;
    await waitFor('every node up at the CC', async () => (await nodesOf()).filter((n) => n.state === 'up').length === nodes.length, 300_000, 500);
    dbc = new pg.Client({ connectionString: base.KOALA_DATABASE_URL });
    await dbc.connect();
    const dbClient = dbc;

    return {
      zone,
      endpoint,
      natsUrl: nats.url,
      imageId,
      nodes,
      ec2() {
        const c = new EC2Client({ endpoint, region: 'koala-1', credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey }, maxAttempts: 1 });
        clients.push(c);
        return c;
      },
      pids: () => ({ clc: clc!.pid!, cc: cc!.pid!, ncHosts: ncHosts.map((c) => c.pid!) }),
      ccMetricsUrl: `http://127.0.0.1:${ccMetricsPort}/metrics`,
      listNodes: nodesOf,
      async domains() {
        const out: NodeDomains[] = [];
        let after: string | undefined;
        do {
          const page = await bus.request(listDomains(zone), after === undefined ? {} : { after }, { timeoutMs: 10_000 });
          out.push(...page.nodes);
          after = page.next;
        } while (after !== undefined);
        return out;
      },
      async instances() {
        const r = await dbClient.query(`SELECT id, node, state, instance_type AS "instanceType" FROM instances WHERE zone = $1`, [zone]);
        return r.rows;
      },
      peakRssMiB,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

export interface ScaleCheck {
  /** Launched ids the CLC does not have, or has without a node. */
  lost: string[];
  /** Instance ids found as a domain on more than one node, or twice on one. */
  duplicated: string[];
  /** Nodes whose instances need more cores/memory/disk than the node has. */
  overcommitted: string[];
  /** Nodes whose reported domains differ from the CLC's instances placed on them. */
  mismatched: Array<{ node: string; clcOnly: string[]; nodeOnly: string[] }>;
}

/**
 * Correctness of a launch at scale: every launched instance recorded with a node (none lost),
 * each a domain on exactly one node, no node's capacity exceeded (by the instance types'
 * resources), and every node's domains equal the CLC's view of what runs there.
 * `live` = the CLC instances that should have a domain (not terminated).
 */
export async function checkScale(
  cloud: ScaleCloud,
  launched: readonly string[],
  resources: (type: string) => { vcpus: number; memoryMiB: number; rootDiskGiB: number; ephemeralGiB: number },
): Promise<ScaleCheck> {
  const [rows, domains, nodes] = await Promise.all([cloud.instances(), cloud.domains(), cloud.listNodes()]);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const lost = launched.filter((id) => !byId.get(id)?.node);
  const seen = new Map<string, number>();
  for (const n of domains) for (const d of n.domains) if (d.instanceId) seen.set(d.instanceId, (seen.get(d.instanceId) ?? 0) + 1);
  const duplicated = [...seen].filter(([, k]) => k > 1).map(([id]) => id);
  const live = rows.filter((r) => r.node && r.state !== 'terminated');
  const overcommitted: string[] = [];
  for (const n of nodes) {
    const mine = live.filter((r) => r.node === n.node).map((r) => resources(r.instanceType));
    const need = mine.reduce((a, r) => ({ cores: a.cores + r.vcpus, memoryMiB: a.memoryMiB + r.memoryMiB, diskGiB: a.diskGiB + r.rootDiskGiB + r.ephemeralGiB }), {
      cores: 0,
      memoryMiB: 0,
      diskGiB: 0,
    });
    if (need.cores > n.total.cores || need.memoryMiB > n.total.memoryMiB || need.diskGiB > n.total.diskGiB) overcommitted.push(n.node);
  }
  const mismatched: ScaleCheck['mismatched'] = [];
  for (const node of cloud.nodes) {
    const clc = new Set(live.filter((r) => r.node === node.name).map((r) => r.id));
    const reported = new Set((domains.find((d) => d.node === node.name)?.domains ?? []).flatMap((d) => (d.instanceId ? [d.instanceId] : [])));
    const clcOnly = [...clc].filter((id) => !reported.has(id));
    const nodeOnly = [...reported].filter((id) => !clc.has(id));
    if (clcOnly.length || nodeOnly.length) mismatched.push({ node: node.name, clcOnly, nodeOnly });
  }
  return { lost, duplicated, overcommitted, mismatched };
}

export const pct = (xs: readonly number[], p: number): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};

export interface LaunchResult {
  launched: string[];
  runLatencyMs: number[];
  errors: string[];
  /** Launched instances that ended terminated instead of running (the launch failed). */
  failed: string[];
  /** First RunInstances sent -> last answered. */
  runSeconds: number;
  /** First RunInstances sent -> DescribeInstances shows all `running` (or failed). */
  allRunningSeconds: number;
}

type Ec2Like = { send(cmd: unknown): Promise<unknown> };

/** Every instance of `filters` through DescribeInstances (MaxResults 1000, all pages). */
export async function describeAll(ec2: Ec2Like, filters?: Array<{ Name: string; Values: string[] }>): Promise<Array<{ InstanceId?: string; State?: { Name?: string } }>> {
  const { DescribeInstancesCommand } = await import('@aws-sdk/client-ec2');
  const out: Array<{ InstanceId?: string; State?: { Name?: string } }> = [];
  let token: string | undefined;
  do {
    const r = (await ec2.send(new DescribeInstancesCommand({ MaxResults: 1000, NextToken: token, Filters: filters }))) as {
      Reservations?: Array<{ Instances?: Array<{ InstanceId?: string; State?: { Name?: string } }> }>;
      NextToken?: string;
    };
    for (const res of r.Reservations ?? []) out.push(...(res.Instances ?? []));
    token = r.NextToken;
  } while (token);
  return out;
}

/**
 * `instances` t1.micro through RunInstances (MaxCount ≤ 20 a call, MinCount 1, `concurrency`
 * calls in flight), then DescribeInstances every `pollMs` until all launched are running.
 */
export async function launchAll(
  ec2: Ec2Like,
  o: {
    imageId: string;
    zone?: string;
    instances: number;
    concurrency: number;
    instanceType?: string;
    pollMs?: number;
    timeoutMs?: number;
    perCall?: number;
    /** MinCount = MaxCount (moto launches MinCount instances) */ exact?: boolean;
  },
): Promise<LaunchResult> {
  const { RunInstancesCommand } = await import('@aws-sdk/client-ec2');
  const launched: string[] = [];
  const runLatencyMs: number[] = [];
  const errors: string[] = [];
  let requested = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (requested < o.instances && errors.length === 0) {
      const n = Math.min(o.perCall ?? 20, o.instances - requested);
      requested += n;
      const c0 = performance.now();
      try {
        const r = (await ec2.send(
          new RunInstancesCommand({
            ImageId: o.imageId,
            MinCount: o.exact ? n : 1,
            MaxCount: n,
            InstanceType: (o.instanceType ?? 't1.micro') as 't1.micro',
            ...(o.zone ? { Placement: { AvailabilityZone: o.zone } } : {}),
          }),
        )) as { Instances?: Array<{ InstanceId?: string }> };
        runLatencyMs.push(performance.now() - c0);
        const ids = (r.Instances ?? []).map((i) => i.InstanceId!);
        launched.push(...ids);
        if (ids.length < n) errors.push(`RunInstances placed ${ids.length} of ${n}`);
      } catch (e) {
        errors.push(`${(e as Error).name}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all([...Array(o.concurrency).keys()].map(() => worker()));
  const runSeconds = (performance.now() - t0) / 1000;
  const want = new Set(launched);
  const deadline = Date.now() + (o.timeoutMs ?? 900_000);
  let failed: string[] = [];
  for (;;) {
    // settled: running, or given up on by the cloud (a launch that failed ends terminated)
    const all = (await describeAll(ec2)).filter((i) => want.has(i.InstanceId!));
    const running = all.filter((i) => i.State?.Name === 'running').length;
    failed = all.filter((i) => i.State?.Name === 'terminated' || i.State?.Name === 'shutting-down').map((i) => i.InstanceId!);
    if (running + failed.length >= want.size) break;
    if (Date.now() > deadline) throw new Error(`only ${running} of ${want.size} instances running (${failed.length} failed) after ${o.timeoutMs ?? 900_000} ms`);
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
  }
  return { launched, runLatencyMs, errors, failed, runSeconds, allRunningSeconds: (performance.now() - t0) / 1000 };
}

/** TerminateInstances in batches of 100 (`concurrency` in flight) until all are `terminated`; seconds. */
export async function terminateAll(ec2: Ec2Like, ids: readonly string[], o: { concurrency: number; pollMs?: number; timeoutMs?: number }): Promise<{ seconds: number; callsMs: number[] }> {
  const { TerminateInstancesCommand } = await import('@aws-sdk/client-ec2');
  const t0 = performance.now();
  const batches: string[][] = [];
  for (let i = 0; i < ids.length; i += 100) batches.push(ids.slice(i, i + 100));
  const callsMs: number[] = [];
  const worker = async () => {
    for (let b = batches.shift(); b; b = batches.shift()) {
      const c0 = performance.now();
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: b }));
      callsMs.push(performance.now() - c0);
    }
  };
  await Promise.all([...Array(o.concurrency).keys()].map(() => worker()));
  const want = new Set(ids);
  const deadline = Date.now() + (o.timeoutMs ?? 600_000);
  for (;;) {
    const done = (await describeAll(ec2, [{ Name: 'instance-state-name', Values: ['terminated'] }])).filter((i) => want.has(i.InstanceId!)).length;
    if (done >= want.size) break;
    if (Date.now() > deadline) throw new Error(`only ${done} of ${want.size} terminated`);
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
  }
  return { seconds: (performance.now() - t0) / 1000, callsMs };
}
