/**
 * DescribeVolumes at 1,000 and 10,000 volumes (and as many snapshots): ms per call of a page
 * (MaxResults=50, status=available: the first page, and one from the middle of the listing), of
 * lookups by a tag (exact: one volume; wildcard: a page of 50), of a page whose filter is applied
 * in memory only (create-time), of a DescribeVolumeStatus page, and of DescribeSnapshots pages of
 * one account (its own, shared and public snapshots; with RestorableBy=self and a status filter),
 * as the admin (every account's volumes) and as one of the two accounts; then the 10k/1k ratio of
 * each. Prints figures; asserts nothing about timings.
 *
 * Run (PostgreSQL and NATS up, as for the e2e tests; no hypervisor or storage controller needed):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/volumes-jest.config.js bench/volumes-describe.bench.ts
 * Knobs (environment): BENCH_SIZES=1000,10000 BENCH_CALLS=30
 *
 * Each size gets a fresh cloud (startCloud: new PostgreSQL database, the real CLC in-process, real
 * HTTP on loopback, the AWS SDK v3 as client), seeded straight through the DataSource
 * (test/volumes/seed-volumes.ts: two accounts, two zones, a mix of states, sizes and types, a
 * `Name` tag on every volume but deleted ones, `env` on two thirds; snapshots of those volumes, one
 * in ten public, one in four shared with the other account). The SDK's parsing shares the event
 * loop, so the figures include the client's work on each response.
 */
import { DescribeSnapshotsCommand, DescribeVolumesCommand, DescribeVolumeStatusCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { keysetToken } from '@koala/ec2-query';
import { startCloud, type TestCloud } from '../test/support/cloud.js';
import { makeSnapshots, makeVolumes, seedVolumes } from '../test/volumes/seed-volumes.js';
import { medianMs } from './median-timer.js';

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000').split(',').map(Number);
const CALLS = Number(process.env.BENCH_CALLS ?? 30);

/** Median ms of `CALLS` sequential calls, after 3 warm-up calls. */
const time = (call: () => Promise<unknown>): Promise<number> => medianMs(call, CALLS);

interface Figure {
  what: string;
  ms: number;
  items: number;
}

type Command = DescribeVolumesCommand | DescribeVolumeStatusCommand | DescribeSnapshotsCommand;
type Answer = { Volumes?: unknown[]; VolumeStatuses?: unknown[]; Snapshots?: unknown[] };

async function measure(size: number): Promise<{ figures: Figure[]; seedMs: number }> {
  const cloud: TestCloud = await startCloud({ env: { KOALA_VOLUME_SWEEP_MS: '3600000', KOALA_RECONCILE_INTERVAL_MS: '3600000' } });
  try {
    const a = await cloud.createAccount('bench-a');
    const b = await cloud.createAccount('bench-b');
    const accounts = [a.accountId, b.accountId];
    const volumes = makeVolumes({ count: size, accounts, zones: ['bench-1a', 'bench-1b'] });
    const snapshots = makeSnapshots({ count: size, volumes, accounts });
    const t0 = performance.now();
    await seedVolumes(cloud.dataSource, volumes, snapshots);
    const seedMs = performance.now() - t0;
    const admin = cloud.ec2();
    const ownA = cloud.ec2(a);
    const ownB = cloud.ec2(b);
    const available = [{ Name: 'status', Values: ['available'] }];
    const middle = volumes.map((v) => v.id).sort()[Math.floor(size / 2)]!;
    const web = volumes.find((v, n) => n >= size / 2 && v.accountId === a.accountId && v.tags.Name?.startsWith('web-'))!;
    const figures: Figure[] = [];
    const add = async (what: string, ec2: EC2Client, make: () => Command) => {
      const r = (await ec2.send(make() as never)) as Answer;
      const items = (r.Volumes ?? r.VolumeStatuses ?? r.Snapshots ?? []).length;
      figures.push({ what, items, ms: await time(() => ec2.send(make() as never)) });
    };
    await add('admin  page 1, MaxResults=50, status=available', admin, () => new DescribeVolumesCommand({ MaxResults: 50, Filters: available }));
    await add(
      'admin  middle page, MaxResults=50, status=available',
      admin,
      () => new DescribeVolumesCommand({ MaxResults: 50, Filters: available, NextToken: keysetToken('DescribeVolumes', middle) }),
    );
    await add('admin  tag:Name=<one volume>', admin, () => new DescribeVolumesCommand({ Filters: [{ Name: 'tag:Name', Values: [web.tags.Name!] }] }));
    await add('admin  tag:env=p*, MaxResults=50', admin, () => new DescribeVolumesCommand({ MaxResults: 50, Filters: [{ Name: 'tag:env', Values: ['p*'] }] }));
    await add('admin  create-time=2026-01-1* (in memory), MaxResults=50', admin, () => new DescribeVolumesCommand({ MaxResults: 50, Filters: [{ Name: 'create-time', Values: ['2026-01-1*'] }] }));
    await add('admin  DescribeVolumeStatus, MaxResults=50', admin, () => new DescribeVolumeStatusCommand({ MaxResults: 50 }));
    await add('acct A page 1, MaxResults=50, status=available', ownA, () => new DescribeVolumesCommand({ MaxResults: 50, Filters: available }));
    await add('acct A tag:Name=<one volume>', ownA, () => new DescribeVolumesCommand({ Filters: [{ Name: 'tag:Name', Values: [web.tags.Name!] }] }));
    await add('acct B DescribeSnapshots, MaxResults=50', ownB, () => new DescribeSnapshotsCommand({ MaxResults: 50 }));
    await add(
      'acct B DescribeSnapshots RestorableBy=self, completed, 50',
      ownB,
      () => new DescribeSnapshotsCommand({ MaxResults: 50, RestorableByUserIds: ['self'], Filters: [{ Name: 'status', Values: ['completed'] }] }),
    );
    return { figures, seedMs };
  } finally {
    await cloud.close();
  }
}

it('DescribeVolumes and DescribeSnapshots at 1k and 10k volumes', async () => {
  const results = new Map<number, Figure[]>();
  const rows: string[] = [];
  for (const size of SIZES) {
    const { figures, seedMs } = await measure(size);
    results.set(size, figures);
    rows.push(`${size} volumes and snapshots (seeded in ${(seedMs / 1000).toFixed(1)} s), median of ${CALLS} calls:`);
    for (const f of figures) rows.push(`  ${f.what.padEnd(58)} ${f.ms.toFixed(1).padStart(8)} ms   (${f.items} items)`);
  }
  const [small, large] = [SIZES[0]!, SIZES[SIZES.length - 1]!];
  if (SIZES.length > 1) {
    rows.push(`ratio ${large}/${small}:`);
    results.get(small)!.forEach((f, k) => rows.push(`  ${f.what.padEnd(58)} ${(results.get(large)![k]!.ms / f.ms).toFixed(2).padStart(8)}`));
  }
  process.stdout.write(`\n${rows.join('\n')}\n\n`);
}, 3_600_000);
