/**
 * DescribeVolumes / DescribeVolumeStatus / DescribeSnapshots over a few hundred volumes and
 * snapshots of two accounts in two zones, written straight into the database (seed-volumes.ts):
 * pages with small odd MaxResults give exactly the items of an unpaginated call — which are
 * exactly those the test expects from what it seeded — in id order, without duplicates or gaps,
 * for filters SQL decides (status, zone, size, tags with wildcards and LIKE metacharacters, ...)
 * and ones it does not (create-time, start-time). Accounts never see each other's volumes;
 * snapshots are seen by their owner, the accounts given createVolumePermission and (public ones)
 * everyone, and Owner / RestorableBy select as they always did. Tokens are bound to their action.
 * Real CLC, no zone needed (nothing here reaches an SC).
 */
import { jest } from '@jest/globals';
import {
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DescribeVolumeStatusCommand,
  ModifySnapshotAttributeCommand,
  type DescribeSnapshotsCommandInput,
  type EC2Client,
  type Filter,
  type Volume,
} from '@aws-sdk/client-ec2';
import { applyFilters, keysetToken, type FilterSpec } from '@koala/ec2-query';
import { SnapshotEntity } from '../../apps/cloud-controller/src/snapshots/snapshot.entity.js';
import { SNAPSHOT_FILTER_COLUMNS, SNAPSHOT_FILTERS, type SnapshotView } from '../../apps/cloud-controller/src/snapshots/snapshots.service.js';
import { VolumeEntity } from '../../apps/cloud-controller/src/volumes/volume.entity.js';
import { volumeStatus } from '../../apps/cloud-controller/src/volumes/volume-states.js';
import { VOLUME_FILTER_COLUMNS, VOLUME_FILTERS, VOLUME_STATUS_FILTER_COLUMNS, VolumesService } from '../../apps/cloud-controller/src/volumes/volumes.service.js';
import { TagsService } from '../../apps/cloud-controller/src/tags/tags.service.js';
import { startCloud, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { codeOf } from '../support/wait.js';
import { sigv4 } from '../api/signed-http.js';
import { makeSnapshots, makeVolumes, seedVolumes, type SeededSnapshot, type SeededVolume } from './seed-volumes.js';

const VOLUMES = 380;
const SNAPSHOTS = 260;
const ZONE_A = 'vpaging-1a';
const ZONE_B = 'vpaging-1b';
const SIZES = [5, 37];

jest.setTimeout(120_000);

let cloud: TestCloud;
let alice: TestCredentials;
let bob: TestCredentials;
/** Owns nothing: sees shared and public snapshots only. */
let carol: TestCredentials;
let volumes: SeededVolume[];
let snapshots: SeededSnapshot[];
let volumeById: Map<string, SeededVolume>;
let snapshotById: Map<string, SeededSnapshot>;

beforeAll(async () => {
  // Nothing answers for these zones: keep the volume sweep and the reconciler away from the seeded rows.
  cloud = await startCloud({ env: { KOALA_VOLUME_SWEEP_MS: '3600000', KOALA_RECONCILE_INTERVAL_MS: '3600000' } });
  alice = await cloud.createAccount('alice');
  bob = await cloud.createAccount('bob');
  carol = await cloud.createAccount('carol');
  const accounts = [alice.accountId, bob.accountId];
  volumes = makeVolumes({ count: VOLUMES, accounts, zones: [ZONE_A, ZONE_B] });
  snapshots = makeSnapshots({ count: SNAPSHOTS, volumes, accounts: [...accounts, carol.accountId], owners: accounts });
  await seedVolumes(cloud.dataSource, volumes, snapshots);
  volumeById = new Map(volumes.map((v) => [v.id, v]));
  snapshotById = new Map(snapshots.map((s) => [s.id, s]));
}, 60_000);

afterAll(async () => {
  await cloud?.close();
});

type Who = 'admin' | 'alice' | 'bob' | 'carol';
const creds = (who: Who) => (who === 'admin' ? cloud.admin : who === 'alice' ? alice : who === 'bob' ? bob : carol);
const client = (who: Who): EC2Client => cloud.ec2(creds(who));
const idOf = (who: Who) => creds(who).accountId;
const sorted = (ids: readonly string[]) => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const f = (Name: string, ...Values: string[]): Filter => ({ Name, Values });

/** The volumes a caller should see with these filters: its own (admin: all), not expired, matching `keep`. */
const expectedVolumes = (who: Who, keep: (v: SeededVolume) => boolean) => sorted(volumes.filter((v) => (who === 'admin' || v.accountId === idOf(who)) && !v.expired && keep(v)).map((v) => v.id));

/** Checks a returned volume against what was seeded. */
function checkVolume(x: Volume): void {
  const v = volumeById.get(x.VolumeId!)!;
  expect(v).toBeDefined();
  expect([x.VolumeId, x.State, x.AvailabilityZone, x.Size, x.VolumeType, x.SnapshotId]).toEqual([v.id, v.state, v.zone, v.sizeGiB, v.volumeType, v.snapshotId ?? '']);
  expect((x.Attachments ?? []).map((a) => [a.InstanceId, a.Device, a.State, a.DeleteOnTermination])).toEqual(
    v.attach ? [[v.attach.instanceId, v.attach.device, v.attach.state, v.deleteOnTermination]] : [],
  );
}

/** Walks every page of `call`; checks page sizes, id order within and across pages, no duplicates, no spurious last token. */
async function walkPages(
  call: (MaxResults: number | undefined, NextToken: string | undefined) => Promise<{ ids: string[]; next?: string }>,
  size: number,
  first?: (token?: string) => void,
): Promise<string[]> {
  const all: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const { ids, next } = await call(size, token);
    pages++;
    expect(ids).toEqual(sorted(ids));
    expect(ids.length).toBeLessThanOrEqual(size);
    if (next) expect(ids.length).toBe(size); // only the last page may be short
    if (all.length && ids.length) expect(ids[0]! > all[all.length - 1]!).toBe(true);
    all.push(...ids);
    if (pages === 1) first?.(next);
    token = next;
    expect(pages).toBeLessThan(VOLUMES + SNAPSHOTS); // never loops
  } while (token);
  expect(new Set(all).size).toBe(all.length);
  // A NextToken only when more items follow: an empty last page would mean a spurious token.
  expect(pages).toBe(Math.max(1, Math.ceil(all.length / size)));
  return all;
}

async function volumesPage(ec2: EC2Client, Filters: Filter[], MaxResults?: number, NextToken?: string): Promise<{ ids: string[]; next?: string }> {
  const r = await ec2.send(new DescribeVolumesCommand({ Filters, MaxResults, NextToken }));
  for (const x of r.Volumes ?? []) checkVolume(x);
  return { ids: (r.Volumes ?? []).map((x) => x.VolumeId!), next: r.NextToken };
}
const walkVolumes = (ec2: EC2Client, Filters: Filter[], size: number, first?: (token?: string) => void) => walkPages((m, t) => volumesPage(ec2, Filters, m, t), size, first);

/** Volume filter sets and what they select, written out by hand (not through the code under test). */
const VOLUME_CASES: Array<{ name: string; filters: Filter[]; keep: (v: SeededVolume) => boolean }> = [
  { name: 'no filter', filters: [], keep: () => true },
  { name: 'status=available', filters: [f('status', 'available')], keep: (v) => v.state === 'available' },
  {
    name: 'status in-use|error and zone B',
    filters: [f('status', 'in-use', 'error'), f('availability-zone', ZONE_B)],
    keep: (v) => (v.state === 'in-use' || v.state === 'error') && v.zone === ZONE_B,
  },
  { name: 'zone *-1a, size 1|2|3', filters: [f('availability-zone', '*-1a'), f('size', '1', '2', '3')], keep: (v) => v.zone === ZONE_A && v.sizeGiB <= 3 },
  { name: 'size 1? (wildcard on a number)', filters: [f('size', '1?')], keep: (v) => v.sizeGiB === 10 || v.sizeGiB === 16 },
  { name: 'deleted (expired ones hidden)', filters: [f('status', 'deleted')], keep: (v) => v.state === 'deleted' },
  { name: 'tag:Name=web-1* (wildcard)', filters: [f('tag:Name', 'web-1*')], keep: (v) => v.tags.Name?.startsWith('web-1') === true },
  { name: 'tag:Name=db_? (LIKE _ escaped)', filters: [f('tag:Name', 'db_?')], keep: (v) => /^db_.$/u.test(v.tags.Name ?? '') },
  { name: 'tag:Name=50%* (LIKE % escaped)', filters: [f('tag:Name', '50%*')], keep: (v) => v.tags.Name?.startsWith('50%') === true },
  { name: 'tag:Name=back\\\\slash-? (backslash)', filters: [f('tag:Name', 'back\\\\slash-?')], keep: (v) => /^back\\slash-.$/u.test(v.tags.Name ?? '') },
  { name: 'tag-key=env and tag:env=prod', filters: [f('tag-key', 'env'), f('tag:env', 'prod')], keep: (v) => v.tags.env === 'prod' },
  { name: 'tag-value=d?v', filters: [f('tag-value', 'd?v')], keep: (v) => v.tags.env === 'dev' },
  { name: 'create-time (not pushed) 2026-01-0*', filters: [f('create-time', '2026-01-0*')], keep: (v) => v.createdAt.toISOString().startsWith('2026-01-0') },
  {
    name: 'attached, delete-on-termination true',
    filters: [f('attachment.status', 'attached'), f('attachment.delete-on-termination', 'true')],
    keep: (v) => v.attach?.state === 'attached' && v.deleteOnTermination,
  },
  { name: 'delete-on-termination false (detached volumes have none)', filters: [f('attachment.delete-on-termination', 'false')], keep: (v) => v.attach !== null && !v.deleteOnTermination },
  {
    name: "snapshot-id '' (no source snapshot), volume-type io?|gp3",
    filters: [f('snapshot-id', ''), f('volume-type', 'io?', 'gp3')],
    keep: (v) => v.snapshotId === null && (v.volumeType === 'io1' || v.volumeType === 'gp3'),
  },
  { name: 'iops 3000', filters: [f('iops', '3000')], keep: (v) => v.iops === 3000 },
  {
    name: 'available|in-use, tag:env=prod, volume-type gp*, create-time 2026-01-1*',
    filters: [f('status', 'available', 'in-use'), f('tag:env', 'prod'), f('volume-type', 'gp*'), f('create-time', '2026-01-1*')],
    keep: (v) => (v.state === 'available' || v.state === 'in-use') && v.tags.env === 'prod' && v.volumeType.startsWith('gp') && v.createdAt.toISOString().startsWith('2026-01-1'),
  },
  { name: 'encrypted=true matches nothing', filters: [f('encrypted', 'true')], keep: () => false },
  { name: 'a filter with no values matches nothing', filters: [{ Name: 'status', Values: [] }], keep: () => false },
];

describe('DescribeVolumes pages', () => {
  for (const c of VOLUME_CASES) {
    it(`${c.name}: pages = one call = what was seeded, for each account and the admin`, async () => {
      for (const who of ['admin', 'alice', 'bob'] as const) {
        const ec2 = client(who);
        const want = expectedVolumes(who, c.keep);
        const one = await volumesPage(ec2, c.filters);
        expect(one.next).toBeUndefined();
        expect(one.ids).toEqual(want);
        for (const size of SIZES) expect(await walkVolumes(ec2, c.filters, size)).toEqual(want);
      }
    });
  }

  it('the filters really select: every case but the empty ones selects some volumes, none all', () => {
    const all = expectedVolumes('admin', () => true).length;
    expect(all).toBeGreaterThan(VOLUMES * 0.9);
    for (const c of VOLUME_CASES) {
      const n = expectedVolumes('admin', c.keep).length;
      if (c.name.includes('nothing')) expect([c.name, n]).toEqual([c.name, 0]);
      else expect([c.name, n > (c.filters.length ? 0 : all / 2)]).toEqual([c.name, true]);
      if (c.filters.length) expect(n).toBeLessThan(all);
    }
  });

  it('every filter pushed into SQL selects what the in-memory filter selects (DescribeVolumes and DescribeVolumeStatus)', async () => {
    const rows = await cloud.dataSource.getRepository(VolumeEntity).find({ order: { id: 'ASC' } });
    const views = await cloud.app.get(VolumesService).views(rows.filter((r) => !volumeById.get(r.id)!.expired));
    const ec2 = client('admin');
    let checked = 0;
    for (const name of Object.keys(VOLUME_FILTER_COLUMNS)) {
      for (const values of samples(VOLUME_FILTERS, name, views)) {
        const want = applyFilters(views, [{ name, values }], VOLUME_FILTERS, (v) => v.tags).map((v) => v.volume.id);
        expect([name, values, (await volumesPage(ec2, [f(name, ...values)])).ids]).toEqual([name, values, want]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(Object.keys(VOLUME_FILTER_COLUMNS).length * 2);
    // DescribeVolumeStatus: its own filters, over the volumes that are not deleted.
    const statusViews = views.filter((v) => v.volume.state !== 'deleted').map((v) => ({ volume: v.volume, status: volumeStatus(v.volume) }));
    const statusSpec: FilterSpec<(typeof statusViews)[number]> = { 'availability-zone': (v) => v.volume.zone, 'volume-status.status': (v) => v.status };
    for (const name of Object.keys(VOLUME_STATUS_FILTER_COLUMNS)) {
      for (const values of [...samples(statusSpec, name, statusViews), ['impaired'], ['insufficient-data', 'ok']]) {
        const want = applyFilters(statusViews, [{ name, values }], statusSpec).map((v) => v.volume.id);
        expect([name, values, await walkPages((m, t) => statusPage(ec2, { Filters: [f(name, ...values)] }, m, t), 37)]).toEqual([name, values, want]);
      }
    }
  });

  it('volume-id and explicit ids', async () => {
    const ec2 = client('admin');
    const some = volumes.filter((v) => !v.expired).slice(0, 12);
    const ids = some.map((v) => v.id);
    expect(await walkVolumes(ec2, [f('volume-id', ...ids)], 5)).toEqual(sorted(ids));
    const prefix = some[0]!.id.slice(0, 5); // vol-X
    expect(await walkVolumes(ec2, [f('volume-id', `${prefix}*`)], 5)).toEqual(expectedVolumes('admin', (v) => v.id.startsWith(prefix)));
    // More values in all than one query takes as a pre-selection (1,000): decided in memory, same
    // answer. EC2 takes at most 200 values per filter, so six filters of 200.
    const fake = (k: number) => `vol-${k.toString(16).padStart(17, '0')}`;
    const many = (j: number, n = 200) => [...ids, ...Array.from({ length: n - ids.length }, (_, k) => fake(j * 1000 + k))];
    expect(
      await walkVolumes(
        ec2,
        Array.from({ length: 6 }, (_, j) => f('volume-id', ...many(j))),
        5,
      ),
    ).toEqual(sorted(ids));
    // Past EC2's caps: FilterLimitExceeded (201 values in a filter, 51 filters).
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ Filters: [f('volume-id', ...many(0, 201))] })))).toBe('FilterLimitExceeded');
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ Filters: Array.from({ length: 51 }, () => f('volume-id', ...ids)) })))).toBe('FilterLimitExceeded');
    // NUL never reaches PostgreSQL: the endpoint refuses it in any parameter.
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ Filters: [f('volume-id', ...ids.map((id) => `${id}\0`), ids[0]!)] })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ Filters: [f('tag:Na\0me', '*')] })))).toBe('InvalidParameterValue');
    // Named ids: filtered in memory, every one must be visible.
    const named = await ec2.send(new DescribeVolumesCommand({ VolumeIds: ids, Filters: [f('status', 'available')] }));
    expect(named.Volumes!.map((x) => x.VolumeId)).toEqual(sorted(some.filter((v) => v.state === 'available').map((v) => v.id)));
    const expired = volumes.find((v) => v.expired)!;
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ VolumeIds: [ids[0]!, expired.id] })))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ VolumeIds: ['vol-nope'] })))).toBe('InvalidVolumeID.Malformed');
  });

  it('never shows another account its volumes, even by id', async () => {
    const aliceOwn = volumes.find((v) => v.accountId === alice.accountId && !v.expired)!;
    const bobOwn = volumes.find((v) => v.accountId === bob.accountId && !v.expired)!;
    for (const [who, other] of [
      ['alice', bobOwn],
      ['bob', aliceOwn],
    ] as const) {
      const seen = await walkVolumes(client(who), [], 37);
      expect(seen).toEqual(expectedVolumes(who, () => true));
      expect(seen.every((id) => volumeById.get(id)!.accountId === idOf(who))).toBe(true);
      expect(await walkVolumes(client(who), [f('owner-id', other.accountId)], 5)).toEqual([]);
      expect(await codeOf(client(who).send(new DescribeVolumesCommand({ VolumeIds: [other.id] })))).toBe('InvalidVolume.NotFound');
      expect(await codeOf(client(who).send(new DescribeVolumeStatusCommand({ VolumeIds: [other.id] })))).toBe('InvalidVolume.NotFound');
    }
    expect(await walkVolumes(client('carol'), [], 5)).toEqual([]);
  });

  it('refuses tokens of another action, bad tokens, bad MaxResults, ids with MaxResults; reads tokens of the old paging', async () => {
    const ec2 = client('admin');
    let token: string | undefined;
    await walkVolumes(ec2, [f('status', 'available')], 7, (t) => (token = t));
    expect(token).toBeDefined();
    expect(await codeOf(ec2.send(new DescribeVolumeStatusCommand({ MaxResults: 7, NextToken: token })))).toBe('InvalidPaginationToken');
    expect(await codeOf(ec2.send(new DescribeSnapshotsCommand({ MaxResults: 7, NextToken: token })))).toBe('InvalidPaginationToken');
    const statusToken = (await ec2.send(new DescribeVolumeStatusCommand({ MaxResults: 7 }))).NextToken;
    expect(statusToken).toBeDefined();
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ MaxResults: 7, NextToken: statusToken })))).toBe('InvalidPaginationToken');
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ MaxResults: 7, NextToken: 'garbage!' })))).toBe('InvalidPaginationToken');
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ MaxResults: 7, NextToken: token!.slice(0, -3) })))).toBe('InvalidPaginationToken');
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ MaxResults: 4 })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new DescribeVolumeStatusCommand({ MaxResults: 1001 })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ MaxResults: 5, VolumeIds: [volumes[0]!.id] })))).toBe('InvalidParameterCombination');
    expect(await codeOf(ec2.send(new DescribeVolumeStatusCommand({ MaxResults: 5, VolumeIds: [volumes[0]!.id] })))).toBe('InvalidParameterCombination');
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ Filters: [f('bogus', 'x')], MaxResults: 4 })))).toBe('InvalidParameterValue');
    expect((await ec2.send(new DescribeVolumesCommand({ MaxResults: 500 }))).Volumes!.length).toBe(expectedVolumes('admin', () => true).length);
    // A token as paginate() wrote it (keyset `k:<id>`): the next page starts after that id.
    const all = expectedVolumes('admin', () => true);
    const r = await volumesPage(ec2, [], 7, keysetToken('DescribeVolumes', all[100]!));
    expect(r.ids).toEqual(all.slice(101, 108));
  });

  it("continues after the token's volume even when volumes of earlier pages are gone (keyset)", async () => {
    const ec2 = client('bob');
    const zoneA = [f('availability-zone', ZONE_A)];
    const p1 = await volumesPage(ec2, zoneA, 5);
    const p2 = await volumesPage(ec2, zoneA, 5, p1.next);
    // Expire the first two pages' volumes (deleted a month ago): the token still leads on.
    const gone = [...p1.ids, ...p2.ids];
    await cloud.dataSource.query(`UPDATE volumes SET state = 'deleted', deleted_at = now() - interval '30 days', attach_instance_id = NULL, attach_state = NULL WHERE id = ANY($1)`, [gone]);
    for (const id of gone) Object.assign(volumeById.get(id)!, { state: 'deleted', expired: true, attach: null });
    const want = expectedVolumes('bob', (v) => v.zone === ZONE_A && v.id > p1.ids[4]!);
    expect(want.length).toBeGreaterThan(5);
    const rest: string[] = [];
    let token = p1.next;
    while (token) {
      const p = await volumesPage(ec2, zoneA, 5, token);
      rest.push(...p.ids);
      token = p.next;
    }
    expect(rest).toEqual(want);
  });
});

async function statusPage(ec2: EC2Client, q: { Filters?: Filter[] }, MaxResults?: number, NextToken?: string): Promise<{ ids: string[]; next?: string }> {
  const r = await ec2.send(new DescribeVolumeStatusCommand({ ...q, MaxResults, NextToken }));
  for (const s of r.VolumeStatuses ?? []) {
    const v = volumeById.get(s.VolumeId!)!;
    expect([s.AvailabilityZone, s.VolumeStatus!.Status]).toEqual([v.zone, volumeStatus(v)]);
  }
  return { ids: (r.VolumeStatuses ?? []).map((s) => s.VolumeId!), next: r.NextToken };
}

describe('DescribeVolumeStatus pages', () => {
  it('volumes that are not deleted; filters by zone and status', async () => {
    for (const who of ['admin', 'alice'] as const) {
      const ec2 = client(who);
      const cases: Array<[Filter[], (v: SeededVolume) => boolean]> = [
        [[], () => true],
        [[f('availability-zone', ZONE_B)], (v) => v.zone === ZONE_B],
        [[f('volume-status.status', 'impaired')], (v) => v.state === 'error'],
        [[f('volume-status.status', 'ok'), f('availability-zone', '*1a')], (v) => (v.state === 'available' || v.state === 'in-use') && v.zone === ZONE_A],
        [[f('volume-status.details-name', 'io-enabled'), f('volume-status.details-status', 'insufficient-data')], (v) => v.state === 'creating' || v.state === 'deleting'],
      ];
      for (const [Filters, keep] of cases) {
        const want = expectedVolumes(who, (v) => v.state !== 'deleted' && keep(v));
        expect(want.length).toBeGreaterThan(0);
        expect((await statusPage(ec2, { Filters })).ids).toEqual(want);
        for (const size of [7, 37]) expect(await walkPages((m, t) => statusPage(ec2, { Filters }, m, t), size)).toEqual(want);
      }
    }
  });
});

// ---- DescribeSnapshots ------------------------------------------------------------------------

/** Today's rules, written out: who may see (and restore) a snapshot. */
const restorableBy = (account: string, s: SeededSnapshot) => s.accountId === account || s.isPublic || s.sharedWith.includes(account);
const visibleTo = (who: Who, s: SeededSnapshot) => who === 'admin' || restorableBy(idOf(who), s);
const expectedSnapshots = (who: Who, keep: (s: SeededSnapshot) => boolean) => sorted(snapshots.filter((s) => visibleTo(who, s) && keep(s)).map((s) => s.id));

type SnapshotQuery = Pick<DescribeSnapshotsCommandInput, 'OwnerIds' | 'RestorableByUserIds' | 'Filters'>;

async function snapshotsPage(ec2: EC2Client, q: SnapshotQuery, MaxResults?: number, NextToken?: string): Promise<{ ids: string[]; next?: string }> {
  const r = await ec2.send(new DescribeSnapshotsCommand({ ...q, MaxResults, NextToken }));
  for (const x of r.Snapshots ?? []) {
    const s = snapshotById.get(x.SnapshotId!)!;
    expect(s).toBeDefined();
    expect([x.OwnerId, x.VolumeId, x.State, x.Progress, x.VolumeSize, x.Description]).toEqual([s.accountId, s.volumeId, s.state, `${s.progress}%`, s.volumeSizeGiB, s.description]);
  }
  return { ids: (r.Snapshots ?? []).map((x) => x.SnapshotId!), next: r.NextToken };
}
const walkSnapshots = (ec2: EC2Client, q: SnapshotQuery, size: number, first?: (token?: string) => void) => walkPages((m, t) => snapshotsPage(ec2, q, m, t), size, first);

/** Owner / RestorableBy / filter sets and what they select for `who`, by hand. */
const SNAPSHOT_CASES: Array<{ name: string; q: (who: Who) => SnapshotQuery; keep: (who: Who, s: SeededSnapshot) => boolean }> = [
  { name: 'nothing asked', q: () => ({}), keep: () => true },
  { name: 'Owner=self', q: () => ({ OwnerIds: ['self'] }), keep: (who, s) => s.accountId === idOf(who) },
  { name: "Owner=alice's account", q: () => ({ OwnerIds: [alice.accountId] }), keep: (_who, s) => s.accountId === alice.accountId },
  { name: "Owner=self and bob's account", q: () => ({ OwnerIds: ['self', bob.accountId] }), keep: (who, s) => s.accountId === idOf(who) || s.accountId === bob.accountId },
  { name: 'Owner=amazon (nobody here)', q: () => ({ OwnerIds: ['amazon'] }), keep: () => false },
  { name: 'RestorableBy=self', q: () => ({ RestorableByUserIds: ['self'] }), keep: (who, s) => restorableBy(idOf(who), s) },
  { name: 'RestorableBy=all (public)', q: () => ({ RestorableByUserIds: ['all'] }), keep: (_who, s) => s.isPublic },
  { name: "RestorableBy=carol's account", q: () => ({ RestorableByUserIds: [carol.accountId] }), keep: (_who, s) => restorableBy(carol.accountId, s) },
  { name: "RestorableBy=all and bob's account", q: () => ({ RestorableByUserIds: ['all', bob.accountId] }), keep: (_who, s) => s.isPublic || restorableBy(bob.accountId, s) },
  {
    name: "Owner=bob's account and RestorableBy=alice's account",
    q: () => ({ OwnerIds: [bob.accountId], RestorableByUserIds: [alice.accountId] }),
    keep: (_who, s) => s.accountId === bob.accountId && restorableBy(alice.accountId, s),
  },
  { name: 'status=completed, volume-size 1|2', q: () => ({ Filters: [f('status', 'completed'), f('volume-size', '1', '2')] }), keep: (_who, s) => s.state === 'completed' && s.volumeSizeGiB <= 2 },
  { name: 'description=50%* (LIKE % escaped)', q: () => ({ Filters: [f('description', '50%*')] }), keep: (_who, s) => s.description.startsWith('50%') },
  {
    name: 'tag:Name=db_? (LIKE _ escaped), Owner=self',
    q: () => ({ OwnerIds: ['self'], Filters: [f('tag:Name', 'db_?')] }),
    keep: (who, s) => /^db_.$/u.test(s.tags.Name!) && s.accountId === idOf(who),
  },
  { name: 'progress 1?% or 100%', q: () => ({ Filters: [f('progress', '1?%', '100%')] }), keep: (_who, s) => /^1.$/u.test(String(s.progress)) || s.progress === 100 },
  {
    name: 'start-time 2026-01-0* (not pushed), RestorableBy=self',
    q: () => ({ RestorableByUserIds: ['self'], Filters: [f('start-time', '2026-01-0*')] }),
    keep: (who, s) => restorableBy(idOf(who), s) && s.startTime.toISOString().startsWith('2026-01-0'),
  },
  { name: "owner-id filter = bob's account", q: () => ({ Filters: [f('owner-id', bob.accountId)] }), keep: (_who, s) => s.accountId === bob.accountId },
  { name: 'owner-alias matches nothing', q: () => ({ Filters: [f('owner-alias', '*')] }), keep: () => false },
];

describe('DescribeSnapshots pages', () => {
  it('refuses a NUL in Owner or RestorableBy (it never reaches PostgreSQL)', async () => {
    const ec2 = client('alice');
    expect(await codeOf(ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['1234\u0000', 'self'] })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new DescribeSnapshotsCommand({ RestorableByUserIds: ['9\u0000'] })))).toBe('InvalidParameterValue');
  });

  for (const c of SNAPSHOT_CASES) {
    it(`${c.name}: pages = one call = what was seeded, for each account and the admin`, async () => {
      for (const who of ['admin', 'alice', 'bob', 'carol'] as const) {
        const ec2 = client(who);
        const q = c.q(who);
        const want = expectedSnapshots(who, (s) => c.keep(who, s));
        const one = await snapshotsPage(ec2, q);
        expect(one.next).toBeUndefined();
        expect([who, one.ids]).toEqual([who, want]);
        for (const size of SIZES) expect([who, size, await walkSnapshots(ec2, q, size)]).toEqual([who, size, want]);
      }
    });
  }

  it('the seeded snapshots exercise every rule: own, shared, public, and invisible ones for each account', () => {
    for (const who of ['alice', 'bob', 'carol'] as const) {
      const me = idOf(who);
      const shared = snapshots.filter((s) => s.accountId !== me && s.sharedWith.includes(me) && !s.isPublic);
      const publicOnes = snapshots.filter((s) => s.accountId !== me && s.isPublic && !s.sharedWith.includes(me));
      const hidden = snapshots.filter((s) => !visibleTo(who, s));
      expect([who, shared.length > 3, publicOnes.length > 3, hidden.length > 20]).toEqual([who, true, true, true]);
    }
    expect(snapshots.filter((s) => s.accountId === alice.accountId).length).toBeGreaterThan(SNAPSHOTS / 3);
  });

  it('every filter pushed into SQL selects what the in-memory filter selects', async () => {
    const rows = await cloud.dataSource.getRepository(SnapshotEntity).find({ order: { id: 'ASC' } });
    const tags = await cloud.app.get(TagsService).tagsOf(rows.map((r) => r.id));
    const views: SnapshotView[] = rows.map((snapshot) => ({ snapshot, tags: tags.get(snapshot.id) ?? [], permittedAccounts: [] }));
    const ec2 = client('admin');
    let checked = 0;
    for (const name of Object.keys(SNAPSHOT_FILTER_COLUMNS)) {
      for (const values of samples(SNAPSHOT_FILTERS, name, views)) {
        const want = applyFilters(views, [{ name, values }], SNAPSHOT_FILTERS, (v) => v.tags).map((v) => v.snapshot.id);
        expect([name, values, (await snapshotsPage(ec2, { Filters: [f(name, ...values)] })).ids]).toEqual([name, values, want]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(Object.keys(SNAPSHOT_FILTER_COLUMNS).length * 2);
  });

  it('named ids: shared and public ones for the right callers, NotFound for the others; Malformed before the MaxResults combination', async () => {
    const shared = snapshots.find((s) => s.sharedWith.includes(carol.accountId) && !s.isPublic)!;
    const publicOne = snapshots.find((s) => s.isPublic && !s.sharedWith.includes(carol.accountId))!;
    const hidden = snapshots.find((s) => !visibleTo('carol', s))!;
    const carolEc2 = client('carol');
    const named = await carolEc2.send(new DescribeSnapshotsCommand({ SnapshotIds: [shared.id, publicOne.id, shared.id] }));
    expect(named.Snapshots!.map((x) => x.SnapshotId)).toEqual(sorted([shared.id, publicOne.id]));
    expect(await codeOf(carolEc2.send(new DescribeSnapshotsCommand({ SnapshotIds: [shared.id, hidden.id] })))).toBe('InvalidSnapshot.NotFound');
    // Named ids go through Owner / RestorableBy / the filters too.
    expect((await carolEc2.send(new DescribeSnapshotsCommand({ SnapshotIds: [shared.id, publicOne.id], RestorableByUserIds: ['all'] }))).Snapshots!.map((x) => x.SnapshotId)).toEqual([publicOne.id]);
    expect((await carolEc2.send(new DescribeSnapshotsCommand({ SnapshotIds: [shared.id], OwnerIds: ['self'] }))).Snapshots).toEqual([]);
    expect(await codeOf(carolEc2.send(new DescribeSnapshotsCommand({ SnapshotIds: ['snap-nope'], MaxResults: 5 })))).toBe('InvalidSnapshotID.Malformed');
    expect(await codeOf(carolEc2.send(new DescribeSnapshotsCommand({ SnapshotIds: [shared.id], MaxResults: 5 })))).toBe('InvalidParameterCombination');
    expect((await client('admin').send(new DescribeSnapshotsCommand({ SnapshotIds: [hidden.id] }))).Snapshots!.map((x) => x.SnapshotId)).toEqual([hidden.id]);
  });

  it('createVolumePermission and public changes show at once in the next page', async () => {
    const mine = snapshots.filter((s) => s.accountId === alice.accountId && !s.isPublic && s.sharedWith.length === 0).slice(0, 3);
    expect(mine.length).toBe(3);
    const aliceEc2 = client('alice');
    const modify = (s: SeededSnapshot, perm: NonNullable<ConstructorParameters<typeof ModifySnapshotAttributeCommand>[0]['CreateVolumePermission']>) =>
      aliceEc2.send(new ModifySnapshotAttributeCommand({ SnapshotId: s.id, Attribute: 'createVolumePermission', CreateVolumePermission: perm }));
    await modify(mine[0]!, { Add: [{ UserId: carol.accountId }] });
    mine[0]!.sharedWith.push(carol.accountId);
    await modify(mine[1]!, { Add: [{ Group: 'all' }] });
    mine[1]!.isPublic = true;
    for (const who of ['alice', 'bob', 'carol'] as const) {
      for (const q of [{}, { RestorableByUserIds: ['self'] }, { RestorableByUserIds: ['all'] }]) {
        const want = expectedSnapshots(who, (s) => !q.RestorableByUserIds || (q.RestorableByUserIds[0] === 'all' ? s.isPublic : restorableBy(idOf(who), s)));
        expect(await walkSnapshots(client(who), q, 37)).toEqual(want);
      }
    }
    const carolSees = await walkSnapshots(client('carol'), {}, 37);
    expect(carolSees).toEqual(expect.arrayContaining([mine[0]!.id, mine[1]!.id]));
    expect(carolSees).not.toContain(mine[2]!.id);
    expect((await walkSnapshots(client('bob'), {}, 37)).includes(mine[0]!.id)).toBe(false);
    await modify(mine[0]!, { Remove: [{ UserId: carol.accountId }] });
    mine[0]!.sharedWith = [];
    await modify(mine[1]!, { Remove: [{ Group: 'all' }] });
    mine[1]!.isPublic = false;
    expect(await walkSnapshots(client('carol'), {}, 37)).toEqual(expectedSnapshots('carol', () => true));
    expect(expectedSnapshots('carol', () => true)).not.toContain(mine[0]!.id);
  });

  it('refuses tokens of another action, bad tokens and MaxResults below 5', async () => {
    const ec2 = client('bob');
    let token: string | undefined;
    await walkSnapshots(ec2, { RestorableByUserIds: ['self'] }, 5, (t) => (token = t));
    expect(token).toBeDefined();
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ MaxResults: 5, NextToken: token })))).toBe('InvalidPaginationToken');
    expect(await codeOf(ec2.send(new DescribeSnapshotsCommand({ MaxResults: 5, NextToken: 'garbage!' })))).toBe('InvalidPaginationToken');
    expect(await codeOf(ec2.send(new DescribeSnapshotsCommand({ MaxResults: 4 })))).toBe('InvalidParameterValue');
    // MaxResults above 1000 is left out on purpose: whether it is refused or capped (as EC2 does for
    // DescribeVolumes / DescribeSnapshots, and aws-cli relies on) is not this test's business.
    expect(await codeOf(ec2.send(new DescribeSnapshotsCommand({ Filters: [f('bogus', 'x')], MaxResults: 4 })))).toBe('InvalidParameterValue');
    expect((await ec2.send(new DescribeSnapshotsCommand({ MaxResults: 1000 }))).Snapshots!.map((x) => x.SnapshotId)).toEqual(expectedSnapshots('bob', () => true));
    // A list past 1,000 members is refused (as EC2 caps id lists); Owner.N and OwnerId.N together
    // can still hold more values than one query takes (1,000): decided in memory, same answer.
    const owners = [bob.accountId, ...Array.from({ length: 1200 }, (_, k) => String(k).padStart(12, '7'))];
    expect(await codeOf(ec2.send(new DescribeSnapshotsCommand({ OwnerIds: owners })))).toBe('InvalidParameterValue');
    const raw: Record<string, string> = { Action: 'DescribeSnapshots', Version: '2016-11-15' };
    owners.forEach((o, k) => (raw[k < 600 ? `Owner.${k + 1}` : `OwnerId.${k - 599}`] = o));
    const r = await sigv4(cloud.endpoint, bob, raw);
    expect(r.status).toBe(200);
    expect(sorted([...r.body.matchAll(/<snapshotId>([^<]+)<\/snapshotId>/g)].map((m) => m[1]!))).toEqual(expectedSnapshots('bob', (s) => s.accountId === bob.accountId));
  });
});

/** Filter values to try for `name`: `*`, a few items' own values, and those with their last character as `?`. */
function samples<V>(spec: FilterSpec<V>, name: string, views: readonly V[]): string[][] {
  const text = (x: unknown) => (x === null || x === undefined ? undefined : x instanceof Date ? x.toISOString() : String(x));
  expect(spec[name]).toBeDefined();
  const values = [...new Set([0, 7, 100, 233].flatMap((k) => [spec[name]!(views[k % views.length]!)].flat().map(text)).filter((v): v is string => v !== undefined))];
  const out = [['*'], ...values.map((v) => [v])];
  if (values.length) out.push(values.map((v) => `${v.slice(0, -1)}?`));
  return out;
}
