/**
 * DescribeInstances / DescribeInstanceStatus over a few hundred instances of two accounts in two
 * zones, written straight into the database (seed-instances.ts): pages with MaxResults give
 * exactly the instances of an unpaginated call — which are exactly those the test expects from
 * what it seeded — in id order, without duplicates or gaps, for filters SQL decides (state, zone,
 * ids, tags with wildcards and LIKE metacharacters) and one it does not (launch-time); tokens are
 * bound to their action; accounts never see each other's instances. Real CLC, no zone needed.
 */
import { jest } from '@jest/globals';
import { DescribeInstancesCommand, DescribeInstanceStatusCommand, TerminateInstancesCommand, type EC2Client, type Filter } from '@aws-sdk/client-ec2';
import { In } from 'typeorm';
import { applyFilters, compileFilterPattern, filterPatternToSql } from '@koala/ec2-query';
import { InstanceEntity } from '../../apps/cloud-controller/src/instances/instance.entity.js';
import { INSTANCE_FILTER_COLUMNS, INSTANCE_FILTERS } from '../../apps/cloud-controller/src/instances/instance-view.js';
import { InstancesService } from '../../apps/cloud-controller/src/instances/instances.service.js';
import { startCloud, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { codeOf } from '../support/wait.js';
import { makeInstances, seedInstances, STATE_CODES, type SeededInstance } from './seed-instances.js';

const COUNT = 420;
const ZONE_A = 'paging-1a';
const ZONE_B = 'paging-1b';

jest.setTimeout(60_000);

let cloud: TestCloud;
let alice: TestCredentials;
let bob: TestCredentials;
let seeded: SeededInstance[];
let byId: Map<string, SeededInstance>;

beforeAll(async () => {
  // No zone answers for these instances: keep the reconciler from acting on them during the test.
  cloud = await startCloud({ env: { KOALA_RECONCILE_INTERVAL_MS: '3600000' } });
  alice = await cloud.createAccount('alice');
  bob = await cloud.createAccount('bob');
  seeded = makeInstances({ count: COUNT, accounts: [alice.accountId, bob.accountId], zones: [ZONE_A, ZONE_B] });
  await seedInstances(cloud.dataSource, seeded);
  byId = new Map(seeded.map((i) => [i.id, i]));
}, 60_000);

afterAll(async () => {
  await cloud?.close();
});

type Who = 'admin' | 'alice' | 'bob';
const client = (who: Who): EC2Client => cloud.ec2(who === 'admin' ? cloud.admin : who === 'alice' ? alice : bob);
const owns = (who: Who, i: SeededInstance) => who === 'admin' || i.accountId === (who === 'alice' ? alice : bob).accountId;
const sorted = (ids: readonly string[]) => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
/** What the caller should see with these filters: visible (own, not expired) and matching `keep`. */
const expected = (who: Who, keep: (i: SeededInstance) => boolean) => sorted(seeded.filter((i) => owns(who, i) && !i.expired && keep(i)).map((i) => i.id));

/** One DescribeInstances page as a flat id list, checking the reservation grouping on the way. */
async function describePage(ec2: EC2Client, Filters: Filter[], MaxResults?: number, NextToken?: string): Promise<{ ids: string[]; next?: string }> {
  const r = await ec2.send(new DescribeInstancesCommand({ Filters, MaxResults, NextToken }));
  const ids: string[] = [];
  const reservations = new Set<string>();
  for (const res of r.Reservations ?? []) {
    expect(reservations.has(res.ReservationId!)).toBe(false); // one entry per reservation on a page
    reservations.add(res.ReservationId!);
    expect(res.Instances!.length).toBeGreaterThan(0);
    for (const i of res.Instances!) {
      const s = byId.get(i.InstanceId!)!;
      expect(s).toBeDefined();
      expect(res.ReservationId).toBe(s.reservationId);
      expect(res.OwnerId).toBe(s.accountId);
      expect(i.State).toEqual({ Code: STATE_CODES[s.state], Name: s.state });
      ids.push(i.InstanceId!);
    }
  }
  return { ids, next: r.NextToken };
}

/** Walks every page; checks page sizes, id order across pages, no duplicates; returns the ids. */
async function walk(ec2: EC2Client, Filters: Filter[], size: number, first?: (token?: string) => void): Promise<string[]> {
  const all: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const { ids, next } = await describePage(ec2, Filters, size, token);
    pages++;
    expect(ids.length).toBeLessThanOrEqual(size);
    if (next) expect(ids.length).toBe(size); // only the last page may be short
    const page = sorted(ids);
    if (all.length && page.length) expect(page[0]! > all[all.length - 1]!).toBe(true); // pages follow in id order
    all.push(...page);
    if (pages === 1) first?.(next);
    token = next;
    expect(pages).toBeLessThan(COUNT); // never loops
  } while (token);
  expect(new Set(all).size).toBe(all.length);
  // A NextToken only when more instances follow: an empty last page would mean a spurious token.
  expect(pages).toBe(Math.max(1, Math.ceil(all.length / size)));
  return all;
}

const f = (Name: string, ...Values: string[]): Filter => ({ Name, Values });
const matches = (pattern: string, s: string | undefined) => s !== undefined && compileFilterPattern(pattern)(s);

/** Filter sets and what they select, written out by hand (not through the code under test). */
const CASES: Array<{ name: string; filters: Filter[]; keep: (i: SeededInstance) => boolean }> = [
  { name: 'no filter', filters: [], keep: () => true },
  { name: 'instance-state-name=running', filters: [f('instance-state-name', 'running')], keep: (i) => i.state === 'running' },
  {
    name: 'state pending|stopped and zone B',
    filters: [f('instance-state-name', 'pending', 'stopped'), f('availability-zone', ZONE_B)],
    keep: (i) => (i.state === 'pending' || i.state === 'stopped') && i.zone === ZONE_B,
  },
  {
    name: 'instance-state-code 16|80, zone *-1a',
    filters: [f('instance-state-code', '16', '80'), f('availability-zone', '*-1a')],
    keep: (i) => (i.state === 'running' || i.state === 'stopped') && i.zone === ZONE_A,
  },
  { name: 'terminated (expired ones hidden)', filters: [f('instance-state-name', 'terminated')], keep: (i) => i.state === 'terminated' },
  { name: 'tag:Name=web-1* (wildcard)', filters: [f('tag:Name', 'web-1*')], keep: (i) => i.tags.Name!.startsWith('web-1') },
  { name: 'tag:Name=db_? (LIKE _ escaped)', filters: [f('tag:Name', 'db_?')], keep: (i) => /^db_.$/u.test(i.tags.Name!) },
  { name: 'tag:Name=50%* (LIKE % escaped)', filters: [f('tag:Name', '50%*')], keep: (i) => i.tags.Name!.startsWith('50%') },
  { name: 'tag:Name=back\\\\slash-? (backslash)', filters: [f('tag:Name', 'back\\\\slash-?')], keep: (i) => /^back\\slash-.$/u.test(i.tags.Name!) },
  { name: 'tag:Name is case-sensitive', filters: [f('tag:Name', 'WEB-*')], keep: () => false },
  { name: 'tag-key=env and tag:env=prod', filters: [f('tag-key', 'env'), f('tag:env', 'prod')], keep: (i) => i.tags.env === 'prod' },
  { name: 'tag-value=d?v', filters: [f('tag-value', 'd?v')], keep: (i) => i.tags.env === 'dev' },
  { name: 'launch-time (not pushed) 2026-01-0*', filters: [f('launch-time', '2026-01-0*')], keep: (i) => i.launchTime.toISOString().startsWith('2026-01-0') },
  {
    name: 'running, tag:env=prod, type t1.micro|c1.*, launch-time 2026-01-1*',
    filters: [f('instance-state-name', 'running'), f('tag:env', 'prod'), f('instance-type', 't1.micro', 'c1.*'), f('launch-time', '2026-01-1*')],
    keep: (i) => i.state === 'running' && i.tags.env === 'prod' && (i.instanceType === 't1.micro' || i.instanceType.startsWith('c1.')) && i.launchTime.toISOString().startsWith('2026-01-1'),
  },
  { name: 'image-id emi-*b', filters: [f('image-id', 'emi-*b')], keep: (i) => i.imageId.endsWith('b') },
  { name: 'a filter with no values matches nothing', filters: [{ Name: 'instance-state-name', Values: [] }], keep: () => false },
];

describe('DescribeInstances pages', () => {
  for (const c of CASES) {
    it(`${c.name}: pages = one call = what was seeded, for each account and the admin`, async () => {
      for (const who of ['admin', 'alice', 'bob'] as const) {
        const ec2 = client(who);
        const want = expected(who, c.keep);
        const one = await describePage(ec2, c.filters);
        expect(one.next).toBeUndefined();
        expect(sorted(one.ids)).toEqual(want);
        for (const size of [5, 37]) expect(await walk(ec2, c.filters, size)).toEqual(want);
      }
    });
  }

  it('the filters really select: every case above but the empty ones selects some instances, none all', () => {
    for (const c of CASES) {
      const n = expected('admin', c.keep).length;
      if (c.name.includes('nothing') || c.name.includes('case-sensitive')) expect(n).toBe(0);
      else expect(n).toBeGreaterThan(c.filters.length ? 0 : COUNT / 2);
      if (c.filters.length) expect(n).toBeLessThan(expected('admin', () => true).length);
    }
  });

  it('every filter pushed into SQL selects what the in-memory filter selects', async () => {
    // The reference: every visible instance's view, filtered by applyFilters alone.
    const rows = await cloud.dataSource.getRepository(InstanceEntity).find({ order: { id: 'ASC' } });
    const views = await cloud.app.get(InstancesService).views(rows.filter((r) => !byId.get(r.id)!.expired));
    const ec2 = client('admin');
    const text = (x: unknown) => (x === null || x === undefined ? undefined : x instanceof Date ? x.toISOString() : String(x));
    let checked = 0;
    for (const name of Object.keys(INSTANCE_FILTER_COLUMNS)) {
      expect(INSTANCE_FILTERS[name]).toBeDefined();
      const samples = [...new Set([0, 7, 100, 333].map((k) => text(INSTANCE_FILTERS[name]!(views[k % views.length]!))).filter((v): v is string => v !== undefined))];
      for (const values of [['*'], ...samples.map((v) => [v]), samples.map((v) => `${v.slice(0, -1)}?`)]) {
        if (!values.length) continue;
        const filters = [{ name, values }];
        const want = applyFilters(views, filters, INSTANCE_FILTERS, (v) => v.tags).map((v) => v.instance.id);
        expect([name, values, sorted((await describePage(ec2, [f(name, ...values)])).ids)]).toEqual([name, values, want]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(Object.keys(INSTANCE_FILTER_COLUMNS).length * 2);
  });

  it('instance-id, reservation-id and explicit ids', async () => {
    const ec2 = client('admin');
    const some = seeded.filter((i) => !i.expired).slice(0, 12);
    const ids = some.map((i) => i.id);
    expect(await walk(ec2, [f('instance-id', ...ids)], 5)).toEqual(sorted(ids));
    const r = some[0]!.reservationId;
    expect(await walk(ec2, [f('reservation-id', r)], 5)).toEqual(expected('admin', (i) => i.reservationId === r));
    const prefix = some[0]!.id.slice(0, 3); // i-X
    expect(await walk(ec2, [f('instance-id', `${prefix}*`)], 5)).toEqual(expected('admin', (i) => i.id.startsWith(prefix)));
    // More values in all than one query takes as a pre-selection (1,000): decided in memory, same
    // answer. EC2 takes at most 200 values per filter, so six filters of 200.
    const fake = (k: number) => `i-${k.toString(16).padStart(17, '0')}`;
    const many = (j: number, n = 200) => [...ids, ...Array.from({ length: n - ids.length }, (_, k) => fake(j * 1000 + k))];
    expect(
      await walk(
        ec2,
        Array.from({ length: 6 }, (_, j) => f('instance-id', ...many(j))),
        5,
      ),
    ).toEqual(sorted(ids));
    // Past EC2's caps: FilterLimitExceeded (201 values in a filter, 51 filters).
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ Filters: [f('instance-id', ...many(0, 201))] })))).toBe('FilterLimitExceeded');
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ Filters: Array.from({ length: 51 }, () => f('instance-id', ...ids)) })))).toBe('FilterLimitExceeded');
    // NUL never reaches PostgreSQL: the endpoint refuses it in any parameter.
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ Filters: [f('instance-id', ...ids.map((id) => `${id}\0`), ids[0]!)] })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ Filters: [f('tag:Na\0me', '*')] })))).toBe('InvalidParameterValue');
    const named = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids, Filters: [f('instance-state-name', 'running')] }));
    expect(sorted((named.Reservations ?? []).flatMap((x) => x.Instances!.map((i) => i.InstanceId!)))).toEqual(sorted(some.filter((i) => i.state === 'running').map((i) => i.id)));
  });

  it('never shows another account its instances, even by id', async () => {
    const aliceOwn = seeded.find((i) => i.accountId === alice.accountId && !i.expired)!;
    const bobOwn = seeded.find((i) => i.accountId === bob.accountId && !i.expired)!;
    for (const [who, other] of [
      ['alice', bobOwn],
      ['bob', aliceOwn],
    ] as const) {
      const seen = await walk(client(who), [], 50);
      expect(seen.every((id) => owns(who, byId.get(id)!))).toBe(true);
      expect(await codeOf(client(who).send(new DescribeInstancesCommand({ InstanceIds: [other.id] })))).toBe('InvalidInstanceID.NotFound');
      expect(await codeOf(client(who).send(new DescribeInstanceStatusCommand({ InstanceIds: [other.id] })))).toBe('InvalidInstanceID.NotFound');
    }
    const expired = seeded.find((i) => i.expired)!;
    expect(await codeOf(client('admin').send(new DescribeInstancesCommand({ InstanceIds: [expired.id] })))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(client('admin').send(new DescribeInstancesCommand({ InstanceIds: ['i-nope'] })))).toBe('InvalidInstanceID.Malformed');
  });

  it('refuses tokens of another action, bad tokens, bad MaxResults, ids with MaxResults', async () => {
    const ec2 = client('admin');
    let token: string | undefined;
    await walk(ec2, [f('instance-state-name', 'running')], 10, (t) => (token = t));
    expect(token).toBeDefined();
    expect(await codeOf(ec2.send(new DescribeInstanceStatusCommand({ MaxResults: 10, NextToken: token })))).toBe('InvalidPaginationToken');
    let statusToken: string | undefined;
    statusToken = (await ec2.send(new DescribeInstanceStatusCommand({ MaxResults: 10 }))).NextToken;
    expect(statusToken).toBeDefined();
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ MaxResults: 10, NextToken: statusToken })))).toBe('InvalidPaginationToken');
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ MaxResults: 10, NextToken: 'garbage!' })))).toBe('InvalidPaginationToken');
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ MaxResults: 10, NextToken: token!.slice(0, -3) })))).toBe('InvalidPaginationToken');
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ MaxResults: 4 })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ MaxResults: 1001 })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ MaxResults: 5, InstanceIds: [seeded[0]!.id] })))).toBe('InvalidParameterCombination');
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ Filters: [f('bogus', 'x')], MaxResults: 5 })))).toBe('InvalidParameterValue');
  });

  it("continues after the token's instance even when instances of earlier pages are gone (keyset)", async () => {
    const ec2 = client('bob');
    const zoneA = [f('availability-zone', ZONE_A)];
    const p1 = await describePage(ec2, zoneA, 5);
    const p2 = await describePage(ec2, zoneA, 5, p1.next);
    // Expire the first two pages' instances (terminated a month ago): the token still leads on.
    const gone = [...p1.ids, ...p2.ids];
    await cloud.dataSource.query(`UPDATE instances SET state = 'terminated', state_code = 48, terminated_at = now() - interval '30 days' WHERE id = ANY($1)`, [gone]);
    for (const id of gone) Object.assign(byId.get(id)!, { state: 'terminated', expired: true });
    const want = expected('bob', (i) => i.zone === ZONE_A && i.id > sorted(p1.ids)[4]!);
    expect(want.length).toBeGreaterThan(5);
    const rest: string[] = [];
    let token = p1.next;
    while (token) {
      const p = await describePage(ec2, zoneA, 5, token);
      rest.push(...sorted(p.ids));
      token = p.next;
    }
    expect(rest).toEqual(want);
  });
});

describe('DescribeInstanceStatus pages', () => {
  async function statusWalk(ec2: EC2Client, q: { Filters?: Filter[]; IncludeAllInstances?: boolean }, size?: number): Promise<string[]> {
    const all: string[] = [];
    let token: string | undefined;
    do {
      const r = await ec2.send(new DescribeInstanceStatusCommand({ ...q, MaxResults: size, NextToken: token }));
      const ids = (r.InstanceStatuses ?? []).map((s) => s.InstanceId!);
      for (const s of r.InstanceStatuses ?? []) expect(s.AvailabilityZone).toBe(byId.get(s.InstanceId!)!.zone);
      expect(ids).toEqual(sorted(ids));
      if (size !== undefined) expect(ids.length).toBeLessThanOrEqual(size);
      if (all.length && ids.length) expect(ids[0]! > all[all.length - 1]!).toBe(true);
      all.push(...ids);
      token = r.NextToken;
    } while (token);
    expect(new Set(all).size).toBe(all.length);
    return all;
  }

  it('running only by default, every visible one with IncludeAllInstances; filters by zone and state', async () => {
    for (const who of ['admin', 'alice'] as const) {
      const ec2 = client(who);
      const cases: Array<[{ Filters?: Filter[]; IncludeAllInstances?: boolean }, (i: SeededInstance) => boolean]> = [
        [{}, (i) => i.state === 'running'],
        [{ IncludeAllInstances: true }, () => true],
        [{ IncludeAllInstances: true, Filters: [f('instance-state-name', 'stop*'), f('availability-zone', ZONE_A)] }, (i) => i.state.startsWith('stop') && i.zone === ZONE_A],
        [{ Filters: [f('instance-state-code', '16'), f('availability-zone', ZONE_B)] }, (i) => i.state === 'running' && i.zone === ZONE_B],
        [{ Filters: [f('instance-state-name', 'stopped')] }, () => false],
        [{ IncludeAllInstances: true, Filters: [f('instance-status.status', 'not-applicable')] }, (i) => i.state !== 'running'],
      ];
      for (const [q, keep] of cases) {
        const want = expected(who, keep);
        expect(await statusWalk(ec2, q)).toEqual(want);
        expect(await statusWalk(ec2, q, 6)).toEqual(want);
      }
    }
  });
});

describe('TerminateInstances of many (one UPDATE per distinct change)', () => {
  it('moves each instance as before: placed → shutting-down, unplaced → terminated, shutting-down and terminated unchanged', async () => {
    const ec2 = client('alice');
    const mine = seeded.filter((i) => i.accountId === alice.accountId && !i.expired);
    const pick = (state: string, n: number) => mine.filter((i) => i.state === state).slice(0, n);
    const targets = [...pick('running', 6), ...pick('stopped', 3), ...pick('pending', 4), ...pick('shutting-down', 2), ...pick('terminated', 2)];
    expect(targets.length).toBe(17);
    const before = new Date();
    const r = await ec2.send(new TerminateInstancesCommand({ InstanceIds: targets.map((i) => i.id) }));
    const next = (i: SeededInstance) => (i.state === 'terminated' || i.state === 'pending' ? 'terminated' : 'shutting-down');
    expect(r.TerminatingInstances!.map((c) => [c.InstanceId, c.PreviousState!.Name, c.CurrentState!.Name])).toEqual(targets.map((i) => [i.id, i.state, next(i)]));
    const rows = await cloud.dataSource.getRepository(InstanceEntity).findBy({ id: In(targets.map((i) => i.id)) });
    for (const row of rows) {
      const was = byId.get(row.id)!;
      expect([row.id, row.state, row.stateCode]).toEqual([row.id, next(was), STATE_CODES[next(was)]]);
      if (was.state === 'running' || was.state === 'stopped' || was.state === 'pending') {
        expect(row.stateChangedAt.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1000);
        expect(row.stateTransitionReason).toMatch(/^User initiated \(/);
        expect(row.stateReasonCode).toBe('Client.UserInitiatedShutdown');
        expect(row.terminatedAt === null).toBe(was.state !== 'pending');
      } else {
        expect(row.stateTransitionReason).toBe(''); // untouched
      }
    }
    // One change time for the whole request, and other instances untouched.
    expect(new Set(rows.filter((x) => byId.get(x.id)!.state !== 'terminated' && byId.get(x.id)!.state !== 'shutting-down').map((x) => x.stateChangedAt.getTime())).size).toBe(1);
    const others = await cloud.dataSource.getRepository(InstanceEntity).findBy({ accountId: alice.accountId });
    for (const o of others) if (!targets.some((t) => t.id === o.id)) expect(o.state).toBe(byId.get(o.id)!.state);
  });
});

describe('filter values in SQL', () => {
  it('match exactly the strings applyFilters matches (PostgreSQL LIKE / = vs compileFilterPattern)', async () => {
    const strings = [
      '',
      'a',
      'ab',
      'abc',
      'a*b',
      'axb',
      'a?b',
      'a%b',
      'a_b',
      'a\\b',
      'a\\',
      '\\',
      '%',
      '_',
      '50%off',
      '50xoff',
      'db_1',
      'dbx1',
      'Web-1',
      'web-1',
      'web-12',
      'é',
      'aé',
      'a\u{1F600}',
      'line\nbreak',
      'a.b',
      'a[b]',
    ];
    const patterns = [
      '',
      'a',
      '*',
      '?',
      '??',
      'a*',
      '*b',
      'a?b',
      'a\\*b',
      'a\\?b',
      'a\\\\b',
      'a\\\\*',
      'a\\',
      '\\',
      '\\\\',
      '%',
      '_',
      'a%b',
      'a_b',
      '50%*',
      'db_?',
      'web-*',
      'WEB-*',
      '?é',
      'a?',
      'line*',
      '*\\',
      'a.b',
      'a[b]',
      'a\\b',
    ];
    const mismatches: string[] = [];
    for (const p of patterns) {
      const sql = filterPatternToSql(p);
      const rows: Array<{ s: string; m: boolean }> = await cloud.dataSource.query(
        'equals' in sql ? 'SELECT s, s = $1 AS m FROM unnest($2::text[]) AS s' : 'SELECT s, s LIKE $1 AS m FROM unnest($2::text[]) AS s',
        ['equals' in sql ? sql.equals : sql.like, strings],
      );
      for (const { s, m } of rows) if (m !== matches(p, s)) mismatches.push(`${JSON.stringify(p)} vs ${JSON.stringify(s)}: sql ${m}`);
    }
    expect(mismatches).toEqual([]);
  });
});
