/**
 * Many clients at once: N concurrent clients for T seconds on a Describe mix (DescribeInstances,
 * DescribeVolumes, DescribeSecurityGroups, DescribeKeyPairs, DescribeImages,
 * DescribeAvailabilityZones, DescribeRegions) against the built CLC, once with one process
 * (KOALA_API_WORKERS=1, the baseline) and once with BENCH_WORKERS workers behind one port.
 * Prints requests/s, p50, p99 and the ratios against the baseline; asserts nothing about timings.
 *
 * Run (PostgreSQL and NATS up, `npm run build` done):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/api-jest.config.js bench/api-clients.bench.ts
 * Knobs (environment): BENCH_CLIENTS=200 BENCH_SECONDS=20 BENCH_WORKERS=<cores> (1: the baseline only) BENCH_ACCOUNTS=10 BENCH_LOG_LEVEL=info
 *   BENCH_API_RATE=1000000 (KOALA_API_RATE, per access key: high, so the limiter stays out of the figures)
 *   BENCH_PROFILE=<dir>: the single-process run writes a V8 CPU profile (.cpuprofile) there.
 *
 * The load generator (bench/api-clients-load.mjs) is its own process, so it never shares the
 * CLC's event loop; each client signs every request (SigV4) with one of the seeded accounts' keys.
 * The CLC and the generator share the machine's cores: on a small machine the generator's own CPU
 * caps what the workers can show.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateSecurityGroupCommand, EC2Client, ImportKeyPairCommand } from '@aws-sdk/client-ec2';
import { prepareBuiltClc, startBuiltClc, stopBuiltClc, type BuiltClcHome } from '../test/support/built-clc.js';
import type { TestCredentials } from '../test/support/cloud.js';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const WORKERS = Number(process.env.BENCH_WORKERS ?? availableParallelism());
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 10);
const PROFILE = process.env.BENCH_PROFILE;
// info, as `koala up` runs it: one log line per request is part of the cost (written to /dev/null here)
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'info';
const API_RATE = process.env.BENCH_API_RATE ?? '1000000';
const run = promisify(execFile);

const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINyoXvY29EVnRKDDFUyRK/mKiqfYKpJMNrq+bY4rGrWK bench';

interface LoadResult {
  n: number;
  errors: number;
  firstError?: string;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  byAction: Record<string, { n: number; p50: number; p99: number }>;
  workers: Record<string, number>;
  clcCores?: number;
  machineIdle?: number;
}

async function seed(endpoint: string, region: string, creds: TestCredentials[]): Promise<void> {
  await Promise.all(
    creds.map(async (c, a) => {
      const ec2 = new EC2Client({ endpoint, region, credentials: c, maxAttempts: 1 });
      try {
        for (let i = 0; i < 10; i++) await ec2.send(new ImportKeyPairCommand({ KeyName: `bench-${a}-${i}`, PublicKeyMaterial: new TextEncoder().encode(PUBLIC_KEY) }));
        for (let i = 0; i < 5; i++) await ec2.send(new CreateSecurityGroupCommand({ GroupName: `bench-${a}-${i}`, Description: 'benchmark group' }));
      } finally {
        ec2.destroy();
      }
    }),
  );
}

async function load(endpoint: string, region: string, creds: TestCredentials[], seconds: number): Promise<LoadResult> {
  const arg = JSON.stringify({ endpoint, region, clients: CLIENTS, seconds, credentials: creds.map(({ accessKeyId, secretAccessKey }) => ({ accessKeyId, secretAccessKey })) });
  const { stdout } = await run(process.execPath, [join(process.cwd(), 'bench', 'api-clients-load.mjs'), arg], { env: { ...process.env, NODE_OPTIONS: '' }, timeout: (seconds + 60) * 1000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadResult;
}

/** CPU seconds (user + system) of a process and its children (the CLC primary and its workers). */
function cpuSeconds(pid: number): number {
  const tick = 100; // USER_HZ
  const one = (p: number) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) / tick;
    } catch {
      return 0;
    }
  };
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // gone
  }
  return one(pid) + kids.reduce((a, k) => a + one(k), 0);
}

/** Idle share of the whole machine (all cores) between two readings of /proc/stat. */
function idleTicks(): { idle: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { idle: f[3]! + f[4]!, total: f.reduce((a, b) => a + b, 0) };
}

let h: BuiltClcHome;
let clc: ChildProcess | undefined;

afterAll(async () => {
  if (clc) await stopBuiltClc(clc);
  await h?.remove();
});

it(`${CLIENTS} clients on a Describe mix: 1 process vs ${WORKERS} workers`, async () => {
  // Capacity, not throttling: the per-key rate limit (20/s by default) would answer most of the
  // mix RequestLimitExceeded (503) and the figures would be those of the limiter.
  h = await prepareBuiltClc({ KOALA_LOG_LEVEL: LOG_LEVEL, KOALA_API_RATE: API_RATE });
  const creds = [h.admin, ...(await h.createAccounts('bench', ACCOUNTS - 1))];
  const rows: string[] = [];
  const results: Array<[string, LoadResult]> = [];
  const configs: Array<[string, Record<string, string>, string[]]> = [
    ['1 process', { KOALA_API_WORKERS: '1' }, PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : []],
    [`${WORKERS} workers`, { KOALA_API_WORKERS: String(WORKERS) }, []],
  ].slice(0, WORKERS > 1 ? 2 : 1) as typeof configs;
  let seeded = false;
  for (const [label, env, nodeArgs] of configs) {
    clc = await startBuiltClc(h, env, nodeArgs);
    if (!seeded) await seed(h.endpoint, h.config.region, creds);
    seeded = true;
    await load(h.endpoint, h.config.region, creds, 2); // warm-up: connections, JIT, pools
    const [cpu0, idle0] = [cpuSeconds(clc.pid!), idleTicks()];
    const r = await load(h.endpoint, h.config.region, creds, SECONDS);
    const idle1 = idleTicks();
    results.push([label, { ...r, clcCores: (cpuSeconds(clc.pid!) - cpu0) / r.seconds, machineIdle: (idle1.idle - idle0.idle) / (idle1.total - idle0.total) }]);
    await stopBuiltClc(clc);
    clc = undefined;
  }
  const base = results[0]![1];
  rows.push(`${CLIENTS} concurrent clients, ${SECONDS}s, ${creds.length} accounts (10 key pairs, 5+1 security groups each), Describe mix of 7 actions; ${availableParallelism()} cores`);
  rows.push('CLC                req/s     p50 ms    p99 ms    max ms   errors   req/s vs 1   p99 vs 1   served by (worker: requests)');
  for (const [label, r] of results) {
    rows.push(
      `${label.padEnd(14)} ${r.rps.toFixed(1).padStart(9)} ${r.p50.toFixed(1).padStart(10)} ${r.p99.toFixed(1).padStart(9)} ${r.max.toFixed(0).padStart(9)} ${String(r.errors).padStart(8)} ${(r.rps / base.rps).toFixed(2).padStart(12)} ${(r.p99 / base.p99).toFixed(2).padStart(10)}   ${JSON.stringify(r.workers)}${r.firstError ? ` first error: ${r.firstError}` : ''}`,
    );
  }
  rows.push(`CPU during the run: ${results.map(([label, r]) => `${label}: CLC processes ${r.clcCores!.toFixed(2)} cores, machine idle ${(100 * r.machineIdle!).toFixed(0)}%`).join('; ')}`);
  rows.push('per action, p50 / p99 ms:');
  for (const [label, r] of results)
    rows.push(
      `  ${label.padEnd(12)} ${Object.entries(r.byAction)
        .map(([a, x]) => `${a.replace('Describe', '')} ${x.p50}/${x.p99}`)
        .join('  ')}`,
    );
  process.stdout.write(`\n${rows.join('\n')}\n\n`);
}, 900_000);
