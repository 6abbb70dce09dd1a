// SnapshotsService's own rules on in-memory fakes of its repository and ports (no database, no
// bus): the checks and DryRun of each action, the access rule with snapshot sharing (public or a
// createVolumePermission: visible, never changed), and the createVolumePermission attribute. The
// real repository is covered by test/volumes/*.e2e-spec.ts on PostgreSQL.
import { Ec2Error, type PermissionChange } from '@koala/ec2-query';
import { BusRemoteError, BusUnavailableError } from '@koala/messaging';
import type { Caller } from '../persistence/access-scope.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { FakeQuotas, FakeSnapshotStorage, FakeSnapshotsStore, FakeSnapshotUsage, FakeSnapshotVolumes, FakeTags, silentLogger, snapshotRow } from './testing/fakes.js';
import { SnapshotsService, type DescribeSnapshotsQuery } from './snapshots.service.js';
import { codeOf } from '../testing/ec2-code.js';

const alice: Caller = { id: '111111111111', isAdmin: false };
const bob: Caller = { id: '222222222222', isAdmin: false };
const carol: Caller = { id: '333333333333', isAdmin: false };
const admin: Caller = { id: '000000000000', isAdmin: true };
const now = new Date('2026-12-07T00:00:00Z');

/** alice's private, public and bob-shared snapshots. */
const PRIVATE = 'snap-0000000000000000a';
const PUBLIC = 'snap-0000000000000000b';
const SHARED = 'snap-0000000000000000c';
const PENDING = 'snap-0000000000000000d';

let repo: FakeSnapshotsStore;
let volumes: FakeSnapshotVolumes;
let zone: FakeSnapshotStorage;
let usage: FakeSnapshotUsage;
let tags: FakeTags;
let quotas: FakeQuotas;
let svc: SnapshotsService;

beforeEach(async () => {
  repo = new FakeSnapshotsStore();
  volumes = new FakeSnapshotVolumes();
  zone = new FakeSnapshotStorage();
  usage = new FakeSnapshotUsage();
  tags = new FakeTags();
  quotas = new FakeQuotas();
  svc = new SnapshotsService(repo, { region: 'r1' }, silentLogger, zone, volumes, usage, tags, new TaggableResources(), quotas);
  repo.put(
    snapshotRow({ id: PRIVATE, accountId: alice.id }),
    snapshotRow({ id: PUBLIC, accountId: alice.id, isPublic: true }),
    snapshotRow({ id: SHARED, accountId: alice.id }),
    snapshotRow({ id: PENDING, accountId: alice.id, state: 'pending', progress: 10 }),
  );
  await repo.grant({} as never, SHARED, [bob.id]);
  for (const id of [PRIVATE, PUBLIC, SHARED]) tags.tags.set(id, [{ key: 'owner-note', value: id }]);
  volumes.volumes.set('vol-0000000000000000a', { id: 'vol-0000000000000000a', accountId: alice.id, state: 'in-use', sizeGiB: 8, zone: 'z1' });
  volumes.volumes.set('vol-0000000000000000b', { id: 'vol-0000000000000000b', accountId: alice.id, state: 'creating', sizeGiB: 8, zone: 'z1' });
  volumes.volumes.set('vol-0000000000000000c', { id: 'vol-0000000000000000c', accountId: alice.id, state: 'deleted', sizeGiB: 8, zone: 'z1' });
});

describe('CreateSnapshot', () => {
  const create = (caller: Caller, volumeId: string, dryRun = false) => svc.create(caller, now, { volumeId, description: 'd', tagSpecifications: [], dryRun });

  it('of a volume the caller owns, available or in use; else NotFound / IncorrectState; DryRun writes nothing', async () => {
    expect(await codeOf(create(alice, 'vol-x'))).toBe('InvalidVolumeID.Malformed');
    expect(await codeOf(create(bob, 'vol-0000000000000000a'))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(create(alice, 'vol-0000000000000000c'))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(create(alice, 'vol-0000000000000000d'))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(create(alice, 'vol-0000000000000000b'))).toBe('IncorrectState');
    expect(await codeOf(create(alice, 'vol-0000000000000000a', true))).toBe('DryRunOperation');
    expect(await codeOf(svc.create(alice, now, { volumeId: 'vol-0000000000000000a', description: 'x'.repeat(256), tagSpecifications: [], dryRun: false }))).toBe('InvalidParameterValue');
    expect(repo.rows.size).toBe(4);
    expect(zone.ops()).toEqual([]);
  });

  it('writes the snapshot pending (quota checked) and asks the SC of the volume zone; the admin snapshots any volume', async () => {
    const s = await create(alice, 'vol-0000000000000000a');
    expect(s.snapshot).toMatchObject({ accountId: alice.id, volumeId: 'vol-0000000000000000a', volumeSizeGiB: 8, zone: 'z1', state: 'pending', progress: 0, description: 'd', isPublic: false });
    expect(repo.get(s.snapshot.id)?.state).toBe('pending');
    expect(quotas.requests).toEqual([{ kind: 'snapshot' }]);
    expect(zone.calls).toEqual([{ op: 'createSnapshot', zone: 'z1', args: { snapshotId: s.snapshot.id, volumeId: 'vol-0000000000000000a' } }]);
    expect((await create(admin, 'vol-0000000000000000a')).snapshot.accountId).toBe(admin.id);
  });

  it('a quota refusal writes nothing and asks nothing', async () => {
    quotas.refuse = new Ec2Error('SnapshotLimitExceeded', 'over');
    expect(await codeOf(svc.create(alice, now, { volumeId: 'vol-0000000000000000a', tagSpecifications: [], dryRun: false }))).toBe('SnapshotLimitExceeded');
    expect(repo.rows.size).toBe(4);
    expect(zone.ops()).toEqual([]);
  });

  it('the SC refusing forgets the snapshot; no answer leaves it in error', async () => {
    zone.fail.set('createSnapshot', new BusRemoteError('InsufficientSnapshotCapacity', 'full'));
    expect(await codeOf(create(alice, 'vol-0000000000000000a'))).toBe('InsufficientSnapshotCapacity');
    expect(repo.rows.size).toBe(4);
    zone.fail.set('createSnapshot', new BusUnavailableError('sc', 'timeout'));
    expect(await codeOf(create(alice, 'vol-0000000000000000a'))).toBe('Unavailable');
    expect([...repo.rows.values()].filter((s) => s.state === 'error')).toHaveLength(1);
  });
});

describe('sharing: who may see, restore and change a snapshot', () => {
  it('restorable: the owner, anyone for a public one, the granted accounts, the admin; NotFound for the rest', async () => {
    expect((await svc.restorable(alice, PRIVATE)).id).toBe(PRIVATE);
    expect((await svc.restorable(carol, PUBLIC)).id).toBe(PUBLIC);
    expect((await svc.restorable(bob, SHARED)).id).toBe(SHARED);
    expect((await svc.restorable(admin, PRIVATE)).id).toBe(PRIVATE);
    expect(await codeOf(svc.restorable(bob, PRIVATE))).toBe('InvalidSnapshot.NotFound');
    expect(await codeOf(svc.restorable(carol, SHARED))).toBe('InvalidSnapshot.NotFound');
    expect(await codeOf(svc.restorable(bob, 'snap-0000000000000000f'))).toBe('InvalidSnapshot.NotFound');
    expect(await codeOf(svc.restorable(bob, 'snap-x'))).toBe('InvalidSnapshotID.Malformed');
  });

  it("changes: visible but not the caller's → UnauthorizedOperation; invisible → NotFound; nothing changed", async () => {
    for (const [caller, id, code] of [
      [bob, SHARED, 'UnauthorizedOperation'],
      [carol, PUBLIC, 'UnauthorizedOperation'],
      [bob, PRIVATE, 'InvalidSnapshot.NotFound'],
      [carol, SHARED, 'InvalidSnapshot.NotFound'],
    ] as const) {
      expect(await codeOf(svc.delete(caller, id, false))).toBe(code);
      expect(await codeOf(svc.describePermissions(caller, id))).toBe(code);
      expect(await codeOf(svc.modifyPermissions(caller, id, { add: { all: true, accounts: [] }, remove: { all: false, accounts: [] } }, false))).toBe(code);
    }
    expect(repo.get(PRIVATE)?.isPublic).toBe(false);
    expect(repo.rows.size).toBe(4);
    expect(zone.ops()).toEqual([]);
  });

  it("CopySnapshot: from a snapshot the caller may restore, completed, within the region; the copy is the caller's", async () => {
    const copy = (caller: Caller, id: string, f: object = {}) => svc.copy(caller, now, { sourceSnapshotId: id, sourceRegion: 'r1', tagSpecifications: [], dryRun: false, ...f });
    expect(await codeOf(copy(bob, PRIVATE))).toBe('InvalidSnapshot.NotFound');
    expect(await codeOf(copy(alice, PENDING))).toBe('IncorrectState');
    expect(await codeOf(copy(alice, PRIVATE, { sourceRegion: 'r2' }))).toBe('InvalidParameterValue');
    expect(await codeOf(copy(alice, PRIVATE, { destinationRegion: 'r2' }))).toBe('InvalidParameterValue');
    expect(await codeOf(copy(alice, PRIVATE, { encrypted: true }))).toBe('InvalidParameterValue');
    expect(await codeOf(copy(bob, SHARED, { dryRun: true }))).toBe('DryRunOperation');
    expect(zone.ops()).toEqual([]);
    const c = await copy(bob, SHARED);
    expect(c.snapshot).toMatchObject({ accountId: bob.id, sourceSnapshotId: SHARED, description: `[Copied ${SHARED} from r1]`, state: 'pending', zone: 'z1' });
    expect(zone.calls).toEqual([{ op: 'copySnapshot', zone: 'z1', args: { sourceSnapshotId: SHARED, snapshotId: c.snapshot.id } }]);
  });
});

describe('DeleteSnapshot', () => {
  it('refused while an image uses it; DryRun; deletes the row and its tags after the SC', async () => {
    usage.using.set(PRIVATE, ['ami-0000000000000000a']);
    expect(await codeOf(svc.delete(alice, PRIVATE, false))).toBe('InvalidSnapshot.InUse');
    usage.using.clear();
    expect(await codeOf(svc.delete(alice, PRIVATE, true))).toBe('DryRunOperation');
    zone.fail.set('deleteSnapshot', new BusUnavailableError('sc', 'timeout'));
    expect(await codeOf(svc.delete(alice, PRIVATE, false))).toBe('Unavailable');
    expect(repo.get(PRIVATE)).toBeDefined();
    zone.fail.clear();
    await svc.delete(alice, PRIVATE, false);
    expect(repo.get(PRIVATE)).toBeUndefined();
    expect(tags.tags.has(PRIVATE)).toBe(false);
    await svc.delete(admin, SHARED, false);
    expect(repo.get(SHARED)).toBeUndefined();
  });
});

describe('createVolumePermission', () => {
  const change = (f: { addAll?: boolean; removeAll?: boolean; add?: string[]; remove?: string[] }): PermissionChange => ({
    add: { all: f.addAll ?? false, accounts: f.add ?? [] },
    remove: { all: f.removeAll ?? false, accounts: f.remove ?? [] },
  });

  it('adds and removes accounts (never the owner itself) and the group all; reset clears both', async () => {
    await svc.modifyPermissions(alice, PRIVATE, change({ add: [bob.id, carol.id, alice.id] }), false);
    expect(repo.granted(PRIVATE)).toEqual([bob.id, carol.id]);
    expect((await svc.describePermissions(alice, PRIVATE)).accounts).toEqual([bob.id, carol.id]);
    await svc.modifyPermissions(alice, PRIVATE, change({ remove: [carol.id], addAll: true }), false);
    expect(repo.granted(PRIVATE)).toEqual([bob.id]);
    expect(repo.get(PRIVATE)?.isPublic).toBe(true);
    // Adding and removing `all` at once leaves it private.
    await svc.modifyPermissions(alice, PRIVATE, change({ addAll: true, removeAll: true }), false);
    expect(repo.get(PRIVATE)?.isPublic).toBe(false);
    await svc.modifyPermissions(alice, PUBLIC, { ...change({}), reset: true }, false);
    expect(repo.get(PUBLIC)?.isPublic).toBe(false);
    await svc.modifyPermissions(alice, SHARED, { ...change({}), reset: true }, false);
    expect(repo.granted(SHARED)).toEqual([]);
  });

  it('checks the account ids; DryRun changes nothing; the admin may change any', async () => {
    expect(await codeOf(svc.modifyPermissions(alice, PRIVATE, change({ add: ['bob'] }), false))).toBe('InvalidParameterValue');
    expect(await codeOf(svc.modifyPermissions(alice, PRIVATE, change({ add: [bob.id], addAll: true }), true))).toBe('DryRunOperation');
    expect(repo.granted(PRIVATE)).toEqual([]);
    expect(repo.get(PRIVATE)?.isPublic).toBe(false);
    await svc.modifyPermissions(admin, PRIVATE, change({ add: [carol.id] }), false);
    expect(repo.granted(PRIVATE)).toEqual([carol.id]);
    expect(await svc.restorable(carol, PRIVATE)).toMatchObject({ id: PRIVATE });
  });
});

describe('DescribeSnapshots', () => {
  const q = (f: Partial<DescribeSnapshotsQuery> = {}): DescribeSnapshotsQuery => ({ ids: [], filters: [], ownerIds: [], restorableBy: [], ...f });
  const ids = async (caller: Caller, f: Partial<DescribeSnapshotsQuery> = {}) => (await svc.describe(caller, q(f))).snapshots.map((v) => v.snapshot.id);

  it('the caller sees its own, the public ones and those shared with it; the admin all', async () => {
    repo.put(snapshotRow({ id: 'snap-0000000000000000e', accountId: bob.id }));
    expect(await ids(alice)).toEqual([PRIVATE, PUBLIC, SHARED, PENDING]);
    expect(await ids(bob)).toEqual([PUBLIC, SHARED, 'snap-0000000000000000e']);
    expect(await ids(carol)).toEqual([PUBLIC]);
    expect(await ids(admin)).toEqual([PRIVATE, PUBLIC, SHARED, PENDING, 'snap-0000000000000000e']);
    expect(await codeOf(svc.describe(carol, q({ ids: [SHARED] })))).toBe('InvalidSnapshot.NotFound');
    expect(await codeOf(svc.describe(carol, q({ ids: ['snap-x'] })))).toBe('InvalidSnapshotID.Malformed');
    expect(await ids(bob, { ids: [SHARED] })).toEqual([SHARED]);
  });

  it('Owner and RestorableBy select; tags are shown to the owner (and the admin) only', async () => {
    repo.put(snapshotRow({ id: 'snap-0000000000000000e', accountId: bob.id }));
    expect(await ids(bob, { ownerIds: ['self'] })).toEqual(['snap-0000000000000000e']);
    expect(await ids(bob, { ownerIds: [alice.id] })).toEqual([PUBLIC, SHARED]);
    expect(await ids(alice, { restorableBy: ['all'] })).toEqual([PUBLIC]);
    expect(await ids(alice, { restorableBy: [bob.id] })).toEqual([PUBLIC, SHARED]);
    expect(await ids(admin, { restorableBy: [carol.id] })).toEqual([PUBLIC]);
    const seen = async (caller: Caller) => new Map((await svc.describe(caller, q())).snapshots.map((v) => [v.snapshot.id, v.tags]));
    expect((await seen(alice)).get(SHARED)).toEqual([{ key: 'owner-note', value: SHARED }]);
    expect((await seen(bob)).get(SHARED)).toEqual([]);
    expect((await seen(carol)).get(PUBLIC)).toEqual([]);
    expect((await seen(admin)).get(PUBLIC)).toEqual([{ key: 'owner-note', value: PUBLIC }]);
    expect((await svc.describe(alice, q({ ids: [SHARED] }))).snapshots[0]!.permittedAccounts).toEqual([bob.id]);
  });

  it('filters, pages and checks the filter names', async () => {
    expect(await ids(alice, { filters: [{ name: 'status', values: ['pending'] }] })).toEqual([PENDING]);
    expect(await ids(alice, { filters: [{ name: 'tag:owner-note', values: [PUBLIC] }] })).toEqual([PUBLIC]);
    expect(await codeOf(svc.describe(alice, q({ filters: [{ name: 'nope', values: ['x'] }] })))).toBe('InvalidParameterValue');
    const first = await svc.describe(alice, q({ maxResults: 5 }));
    expect(first.snapshots).toHaveLength(4);
    expect(first.nextToken).toBeUndefined();
  });
});

describe('StorageEvents', () => {
  it('progress only grows; completed is final; other zones are ignored', async () => {
    const ev = (f: object) => ({ kind: 'snapshot', id: PENDING, zone: 'z1', at: now.toISOString(), ...f }) as never;
    await svc.applyEvent(ev({ state: 'pending', progress: 40 }));
    expect(repo.get(PENDING)).toMatchObject({ state: 'pending', progress: 40 });
    await svc.applyEvent(ev({ state: 'pending', progress: 20 }));
    expect(repo.get(PENDING)?.progress).toBe(40);
    await svc.applyEvent(ev({ state: 'completed', zone: 'z2' }));
    expect(repo.get(PENDING)?.state).toBe('pending');
    await svc.applyEvent(ev({ state: 'completed' }));
    expect(repo.get(PENDING)).toMatchObject({ state: 'completed', progress: 100 });
    await svc.applyEvent(ev({ state: 'error' }));
    expect(repo.get(PENDING)?.state).toBe('completed');
  });
});
