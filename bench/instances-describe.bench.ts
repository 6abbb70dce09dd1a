/**
 * DescribeInstances at 1,000 and 10,000 instances: ms per call of a page (MaxResults=50,
 * instance-state-name=running: the first page, and one from the middle of the listing), of
 * lookups by a tag (exact: one instance; wildcard: a page of 50), of a page whose filter is applied
 * in memory only (launch-time), and of a DescribeInstanceStatus page, as the admin (every
 * account's instances) and as one of the two accounts; then the 10k/1k ratio of each.
 * Prints figures; asserts nothing about timings.
 *
 * Run (PostgreSQL and NATS up, as for the e2e tests; no hypervisor needed):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/instances-jest.config.js bench/instances-describe.bench.ts
 * Knobs (environment): BENCH_SIZES=1000,10000 BENCH_CALLS=30
 *
 * Each size gets a fresh cloud (startCloud: new PostgreSQL database, the real CLC in-process, real
 * HTTP on loopback, the AWS SDK v3 as client), seeded straight through the DataSource
 * (test/instances/seed-instances.ts: two accounts, two zones, reservations of 1–4, a mix of states,
 * a `Name` tag on every instance, `env` on two thirds). The SDK's parsing shares the event loop,
 * so the figures include the client's work on each response.
 */
import { DescribeInstancesCommand, DescribeInstanceStatusCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { keysetToken } from '@koala/ec2-query';
import { startCloud, type TestCloud } from '../test/support/cloud.js';
import { makeInstances, seedInstances, type SeededInstance } from '../test/instances/seed-instances.js';
import { medianMs } from './median-timer.js';

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000').split(',').map(Number);
const CALLS = Number(process.env.BENCH_CALLS ?? 30);

/** Median ms of `CALLS` sequential calls, after 3 warm-up calls. */
const time = (call: () => Promise<unknown>): Promise<number> => medianMs(call, CALLS);

const count = (r: { Reservations?: Array<{ Instances?: unknown[] }> }) => (r.Reservations ?? []).reduce((n, x) => n + (x.Instances?.length ?? 0), 0);

interface Figure {
  what: string;
  ms: number;
  items: number;
}

async function measure(size: number): Promise<{ figures: Figure[]; seedMs: number }> {
  const cloud: TestCloud = await startCloud({ env: { KOALA_RECONCILE_INTERVAL_MS: '3600000' } });
  try {
    const a = await cloud.createAccount('bench-a');
    const b = await cloud.createAccount('bench-b');
    const instances: SeededInstance[] = makeInstances({ count: size, accounts: [a.accountId, b.accountId], zones: ['bench-1a', 'bench-1b'] });
    const t0 = performance.now();
    await seedInstances(cloud.dataSource, instances);
    const seedMs = performance.now() - t0;
    const admin = cloud.ec2();
    const ownA = cloud.ec2(a);
    const running = [{ Name: 'instance-state-name', Values: ['running'] }];
    const middle = [...instances].map((i) => i.id).sort()[Math.floor(size / 2)]!;
    const web = instances.find((i, n) => n >= size / 2 && i.accountId === a.accountId && i.tags.Name!.startsWith('web-'))!;
    const figures: Figure[] = [];
    const add = async (what: string, ec2: EC2Client, make: () => DescribeInstancesCommand | DescribeInstanceStatusCommand) => {
      const r = (await ec2.send(make() as never)) as { Reservations?: Array<{ Instances?: unknown[] }>; InstanceStatuses?: unknown[] };
      const items = r.InstanceStatuses ? r.InstanceStatuses.length : count(r);
      figures.push({ what, items, ms: await time(() => ec2.send(make() as never)) });
    };
    await add('admin  page 1, MaxResults=50, state=running', admin, () => new DescribeInstancesCommand({ MaxResults: 50, Filters: running }));
    await add('admin  middle page, MaxResults=50, state=running', admin, () => new DescribeInstancesCommand({ MaxResults: 50, Filters: running, NextToken: keysetToken('DescribeInstances', middle) }));
    await add('admin  tag:Name=<one instance>', admin, () => new DescribeInstancesCommand({ Filters: [{ Name: 'tag:Name', Values: [web.tags.Name!] }] }));
    await add('admin  tag:env=p*, MaxResults=50', admin, () => new DescribeInstancesCommand({ MaxResults: 50, Filters: [{ Name: 'tag:env', Values: ['p*'] }] }));
    await add('admin  launch-time=2026-01-1* (in memory), MaxResults=50', admin, () => new DescribeInstancesCommand({ MaxResults: 50, Filters: [{ Name: 'launch-time', Values: ['2026-01-1*'] }] }));
    await add('admin  DescribeInstanceStatus, MaxResults=50', admin, () => new DescribeInstanceStatusCommand({ MaxResults: 50 }));
    await add('acct A page 1, MaxResults=50, state=running', ownA, () => new DescribeInstancesCommand({ MaxResults: 50, Filters: running }));
    await add('acct A tag:Name=<one instance>', ownA, () => new DescribeInstancesCommand({ Filters: [{ Name: 'tag:Name', Values: [web.tags.Name!] }] }));
    return { figures, seedMs };
  } finally {
    await cloud.close();
  }
}

it('DescribeInstances at 1k and 10k instances', async () => {
  const results = new Map<number, Figure[]>();
  const rows: string[] = [];
  for (const size of SIZES) {
    const { figures, seedMs } = await measure(size);
    results.set(size, figures);
    rows.push(`${size} instances (seeded in ${(seedMs / 1000).toFixed(1)} s), median of ${CALLS} calls:`);
    for (const f of figures) rows.push(`  ${f.what.padEnd(58)} ${f.ms.toFixed(1).padStart(8)} ms   (${f.items} items)`);
  }
  const [small, large] = [SIZES[0]!, SIZES[SIZES.length - 1]!];
  if (SIZES.length > 1) {
    rows.push(`ratio ${large}/${small}:`);
    results.get(small)!.forEach((f, k) => rows.push(`  ${f.what.padEnd(58)} ${(results.get(large)![k]!.ms / f.ms).toFixed(2).padStart(8)}`));
  }
  process.stdout.write(`\n${rows.join('\n')}\n\n`);
}, 3_600_000);
