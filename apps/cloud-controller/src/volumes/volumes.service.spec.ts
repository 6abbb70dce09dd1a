// VolumesService's own rules on in-memory fakes of its repository and ports (no database, no bus):
// parameter checks, DryRun, the access rule, the create/delete/attach/detach state rules and
// their rollbacks. The real repository is covered by test/volumes/*.e2e-spec.ts on PostgreSQL.
import { Ec2Error } from '@koala/ec2-query';
import { BusRemoteError, BusUnavailableError } from '@koala/messaging';
import type { Caller } from '../persistence/access-scope.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { FAKE_TX, FakeQuotas, FakeRestorableSnapshots, FakeTags, FakeVolumesStore, FakeZoneStorage, fakeChap, silentLogger, volumeRow } from './testing/fakes.js';
import { VolumesService, type CreateVolumeInput } from './volumes.service.js';
import { codeOf } from '../testing/ec2-code.js';

const alice: Caller = { id: '111111111111', isAdmin: false };
const bob: Caller = { id: '222222222222', isAdmin: false };
const admin: Caller = { id: '000000000000', isAdmin: true };
const now = new Date('2026-12-07T00:00:00Z');
const DAY = 86_400_000;

let repo: FakeVolumesStore;
let zone: FakeZoneStorage;
let tags: FakeTags;
let quotas: FakeQuotas;
let snapshots: FakeRestorableSnapshots;
let registry: TaggableResources;
let svc: VolumesService;

beforeEach(() => {
  repo = new FakeVolumesStore();
  zone = new FakeZoneStorage();
  tags = new FakeTags();
  quotas = new FakeQuotas();
  snapshots = new FakeRestorableSnapshots();
  registry = new TaggableResources();
  const config = { deletedVolumeRetentionMs: DAY, volumeAttachTimeoutMs: 60_000 };
  svc = new VolumesService(repo, config, silentLogger, { now: () => now }, zone, fakeChap, tags, snapshots, registry, quotas);
  repo.put(volumeRow({ id: 'vol-0000000000000000a', accountId: alice.id }), volumeRow({ id: 'vol-0000000000000000b', accountId: bob.id }));
  repo.instances.set('i-0000000000000000a', { id: 'i-0000000000000000a', accountId: alice.id, state: 'running', zone: 'z1', node: 'n1', rootDeviceName: '/dev/sda1' });
  repo.instances.set('i-0000000000000000b', { id: 'i-0000000000000000b', accountId: bob.id, state: 'running', zone: 'z1', node: 'n1', rootDeviceName: '/dev/sda1' });
});

const input = (f: Partial<CreateVolumeInput> = {}): CreateVolumeInput => ({ zone: 'z1', sizeGiB: 4, tagSpecifications: [], dryRun: false, ...f });

describe('CreateVolume', () => {
  it('checks its parameters before anything else', async () => {
    expect(await codeOf(svc.create(alice, now, input({ zone: undefined })))).toBe('MissingParameter');
    expect(await codeOf(svc.create(alice, now, input({ sizeGiB: undefined })))).toBe('MissingParameter');
    expect(await codeOf(svc.create(alice, now, input({ sizeGiB: 0 })))).toBe('InvalidParameterValue');
    expect(await codeOf(svc.create(alice, now, input({ volumeType: 'floppy' })))).toBe('InvalidParameterValue');
    expect(await codeOf(svc.create(alice, now, input({ volumeType: 'io1' })))).toBe('MissingParameter');
    expect(await codeOf(svc.create(alice, now, input({ iops: 3000 })))).toBe('InvalidParameterCombination');
    expect(await codeOf(svc.create(alice, now, input({ encrypted: true })))).toBe('InvalidParameterValue');
    expect(await codeOf(svc.create(alice, now, input({ zone: 'elsewhere' })))).toBe('InvalidZone.NotFound');
    expect(repo.rows.size).toBe(2);
    expect(zone.ops()).toEqual([]);
  });

  it('DryRun: every check passes, nothing is written or asked', async () => {
    expect(await codeOf(svc.create(alice, now, input({ dryRun: true })))).toBe('DryRunOperation');
    expect(repo.rows.size).toBe(2);
    expect(zone.ops()).toEqual([]);
  });

  it('writes the volume creating (quota checked, tags applied) and asks the zone', async () => {
    const v = await svc.create(alice, now, input({ tagSpecifications: [{ resourceType: 'volume', tags: [{ key: 'k', value: 'v' }] }] }));
    expect(v.volume).toMatchObject({ accountId: alice.id, zone: 'z1', sizeGiB: 4, state: 'creating', attachState: null });
    expect(v.tags).toEqual([{ key: 'k', value: 'v' }]);
    expect(repo.get(v.volume.id)?.state).toBe('creating');
    expect(quotas.requests).toEqual([{ kind: 'volume', count: 1, gib: 4 }]);
    expect(zone.calls).toEqual([{ op: 'createVolume', zone: 'z1', args: { volumeId: v.volume.id, sizeGiB: 4, snapshotId: undefined } }]);
  });

  it('a quota refusal writes nothing', async () => {
    quotas.refuse = new Ec2Error('VolumeLimitExceeded', 'over');
    await expect(svc.create(alice, now, input())).rejects.toBe(quotas.refuse);
    expect(repo.rows.size).toBe(2);
    expect(zone.ops()).toEqual([]);
  });

  it('a ClientToken gives the same volume again; other parameters are a mismatch', async () => {
    const first = await svc.create(alice, now, input({ clientToken: 'tok' }));
    const again = await svc.create(alice, now, input({ clientToken: 'tok' }));
    expect(again.volume.id).toBe(first.volume.id);
    expect(zone.ops()).toEqual(['createVolume']);
    expect(await codeOf(svc.create(alice, now, input({ clientToken: 'tok', sizeGiB: 5 })))).toBe('IdempotentParameterMismatch');
    // Another account's token is its own.
    expect((await svc.create(bob, now, input({ clientToken: 'tok' }))).volume.id).not.toBe(first.volume.id);
  });

  it('the zone refusing forgets the volume; the zone not answering leaves it in error', async () => {
    zone.fail.set('createVolume', new BusRemoteError('InsufficientVolumeCapacity', 'full'));
    expect(await codeOf(svc.create(alice, now, input()))).toBe('InsufficientVolumeCapacity');
    expect(repo.rows.size).toBe(2);
    zone.fail.set('createVolume', new BusUnavailableError('sc', 'timeout'));
    expect(await codeOf(svc.create(alice, now, input()))).toBe('Unavailable');
    const left = [...repo.rows.values()].filter((v) => v.accountId === alice.id && v.state === 'error');
    expect(left).toHaveLength(1);
    expect(left[0]!.stateReasonCode).toBe('Server.Unavailable');
  });

  it('from a snapshot: restorable by the caller, completed, in the same zone, at least its size', async () => {
    snapshots.snapshots.set('snap-0000000000000000a', { snapshot: { id: 'snap-0000000000000000a', state: 'completed', zone: 'z1', volumeSizeGiB: 6 }, accounts: [alice.id] });
    snapshots.snapshots.set('snap-0000000000000000b', { snapshot: { id: 'snap-0000000000000000b', state: 'pending', zone: 'z1', volumeSizeGiB: 6 }, accounts: [alice.id] });
    const from = (snapshotId: string, f: Partial<CreateVolumeInput> = {}) => svc.create(alice, now, input({ sizeGiB: undefined, snapshotId, ...f }));
    expect(await codeOf(svc.create(bob, now, input({ snapshotId: 'snap-0000000000000000a' })))).toBe('InvalidSnapshot.NotFound');
    expect(await codeOf(from('snap-0000000000000000b'))).toBe('IncorrectState');
    expect(await codeOf(from('snap-0000000000000000a', { zone: 'z2' }))).toBe('InvalidParameterValue');
    expect(await codeOf(from('snap-0000000000000000a', { sizeGiB: 5 }))).toBe('InvalidParameterValue');
    const v = await from('snap-0000000000000000a');
    expect(v.volume).toMatchObject({ sizeGiB: 6, snapshotId: 'snap-0000000000000000a' });
  });
});

describe('DeleteVolume', () => {
  it('another account cannot see the volume (NotFound); the admin may delete it', async () => {
    expect(await codeOf(svc.delete(bob, 'vol-0000000000000000a', false))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(svc.delete(alice, 'vol-nope', false))).toBe('InvalidVolumeID.Malformed');
    await svc.delete(admin, 'vol-0000000000000000a', false);
    expect(repo.get('vol-0000000000000000a')?.state).toBe('deleting');
    expect(zone.calls).toEqual([{ op: 'deleteVolume', zone: 'z1', args: 'vol-0000000000000000a' }]);
  });

  it('DryRun leaves the volume as it was', async () => {
    expect(await codeOf(svc.delete(alice, 'vol-0000000000000000a', true))).toBe('DryRunOperation');
    expect(repo.get('vol-0000000000000000a')?.state).toBe('available');
    expect(zone.ops()).toEqual([]);
  });

  it('refuses an attached volume; deleting twice is a no-op; deleted ones are not found', async () => {
    repo.put(volumeRow({ id: 'vol-0000000000000000c', accountId: alice.id, state: 'in-use', attachState: 'attached', attachInstanceId: 'i-0000000000000000a', attachDevice: '/dev/sdf' }));
    expect(await codeOf(svc.delete(alice, 'vol-0000000000000000c', false))).toBe('VolumeInUse');
    repo.put(volumeRow({ id: 'vol-0000000000000000d', accountId: alice.id, state: 'deleting' }), volumeRow({ id: 'vol-0000000000000000e', accountId: alice.id, state: 'deleted' }));
    await svc.delete(alice, 'vol-0000000000000000d', false);
    expect(zone.ops()).toEqual([]);
    expect(await codeOf(svc.delete(alice, 'vol-0000000000000000e', false))).toBe('InvalidVolume.NotFound');
  });

  it('the zone failing puts the volume back as it was', async () => {
    repo.put(volumeRow({ id: 'vol-0000000000000000c', accountId: alice.id, state: 'error', stateReasonCode: 'Server.X', stateReasonMessage: 'x' }));
    zone.fail.set('deleteVolume', new BusUnavailableError('sc', 'timeout'));
    expect(await codeOf(svc.delete(alice, 'vol-0000000000000000c', false))).toBe('Unavailable');
    expect(repo.get('vol-0000000000000000c')).toMatchObject({ state: 'error', stateReasonCode: 'Server.X' });
  });
});

describe('AttachVolume / DetachVolume', () => {
  const attach = (caller: Caller, f: Partial<{ volumeId: string; instanceId: string; device: string; dryRun: boolean }> = {}) =>
    svc.attach(caller, now, { volumeId: 'vol-0000000000000000a', instanceId: 'i-0000000000000000a', device: '/dev/sdf', dryRun: false, ...f });

  it('attaches: exported with CHAP credentials, attached on the node', async () => {
    const a = await attach(alice);
    expect(a).toMatchObject({ volumeId: 'vol-0000000000000000a', instanceId: 'i-0000000000000000a', device: '/dev/sdf', status: 'attached' });
    expect(repo.get('vol-0000000000000000a')).toMatchObject({
      state: 'in-use',
      attachState: 'attached',
      attachNode: 'n1',
      guestDevice: 'vdb',
      chapUser: 'vol-0000000000000000a',
      chapSecretEnc: 'sealed:secret-0123456789abcdef',
    });
    expect(zone.ops()).toEqual(['storageSealKey', 'exportVolume', 'nodeSealKey', 'attachVolume']);
    expect(await svc.exports('z1')).toEqual([expect.objectContaining({ volumeId: 'vol-0000000000000000a', node: 'n1', chapSecret: 'secret-0123456789abcdef' })]);
  });

  it('the access rule and the instance: NotFound for what the caller cannot see', async () => {
    expect(await codeOf(attach(bob))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(attach(alice, { instanceId: 'i-0000000000000000b' }))).toBe('InvalidInstanceID.NotFound');
    // The admin attaches alice's volume, but only to one of alice's instances.
    expect(await codeOf(attach(admin, { instanceId: 'i-0000000000000000b' }))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(attach(alice, { instanceId: 'i-nope' }))).toBe('InvalidInstanceID.Malformed');
    expect(zone.ops()).toEqual([]);
  });

  it('state rules: device, zone, volume and instance states; DryRun changes nothing', async () => {
    expect(await codeOf(attach(alice, { device: '/dev/sda' }))).toBe('InvalidParameterValue');
    expect(await codeOf(attach(alice, { device: 'floppy' }))).toBe('InvalidParameterValue');
    expect(await codeOf(attach(alice, { dryRun: true }))).toBe('DryRunOperation');
    expect(repo.get('vol-0000000000000000a')?.attachState).toBeNull();
    repo.put(volumeRow({ id: 'vol-0000000000000000c', accountId: alice.id, state: 'in-use', attachState: 'attached', attachInstanceId: 'i-0000000000000000a', attachDevice: '/dev/sdf' }));
    expect(await codeOf(attach(alice))).toBe('InvalidParameterValue'); // /dev/sdf is taken
    expect(await codeOf(attach(alice, { volumeId: 'vol-0000000000000000c', device: '/dev/sdg' }))).toBe('VolumeInUse');
    repo.put(volumeRow({ id: 'vol-0000000000000000d', accountId: alice.id, zone: 'z2' }), volumeRow({ id: 'vol-0000000000000000e', accountId: alice.id, state: 'creating' }));
    expect(await codeOf(attach(alice, { volumeId: 'vol-0000000000000000d', device: '/dev/sdg' }))).toBe('InvalidVolume.ZoneMismatch');
    expect(await codeOf(attach(alice, { volumeId: 'vol-0000000000000000e', device: '/dev/sdg' }))).toBe('IncorrectState');
    repo.instances.get('i-0000000000000000a')!.state = 'pending';
    expect(await codeOf(attach(alice, { device: '/dev/sdg' }))).toBe('IncorrectState');
    repo.instances.get('i-0000000000000000a')!.state = 'terminated';
    expect(await codeOf(attach(alice, { device: '/dev/sdg' }))).toBe('InvalidInstanceID.NotFound');
    expect(zone.ops()).toEqual([]);
  });

  it('a failed attach is rolled back: unexported, the volume available again with the reason', async () => {
    zone.fail.set('attachVolume', new BusRemoteError('Server.IscsiLoginFailed', 'login failed'));
    expect(await codeOf(attach(alice))).toBe('InternalError');
    expect(zone.ops()).toEqual(['storageSealKey', 'exportVolume', 'nodeSealKey', 'attachVolume', 'detachVolume', 'unexportVolume']);
    expect(repo.get('vol-0000000000000000a')).toMatchObject({ state: 'available', attachState: null, attachInstanceId: null, chapSecretEnc: null, stateReasonCode: 'Server.IscsiLoginFailed' });
  });

  it('detaches an attached volume; a detached one is IncorrectState; a failure restores the attachment', async () => {
    expect(await codeOf(svc.detach(alice, { volumeId: 'vol-0000000000000000a', force: false, dryRun: false }))).toBe('IncorrectState');
    await attach(alice);
    expect(await codeOf(svc.detach(bob, { volumeId: 'vol-0000000000000000a', force: false, dryRun: false }))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(svc.detach(alice, { volumeId: 'vol-0000000000000000a', force: false, dryRun: true }))).toBe('DryRunOperation');
    expect(repo.get('vol-0000000000000000a')?.attachState).toBe('attached');
    zone.calls = [];
    zone.fail.set('detachVolume', new BusUnavailableError('cc', 'timeout'));
    expect(await codeOf(svc.detach(alice, { volumeId: 'vol-0000000000000000a', force: false, dryRun: false }))).toBe('Unavailable');
    expect(repo.get('vol-0000000000000000a')?.attachState).toBe('attached');
    zone.fail.clear();
    const d = await svc.detach(alice, { volumeId: 'vol-0000000000000000a', force: false, dryRun: false });
    expect(d).toMatchObject({ instanceId: 'i-0000000000000000a', device: '/dev/sdf', status: 'detached' });
    expect(repo.get('vol-0000000000000000a')).toMatchObject({ state: 'available', attachState: null, attachInstanceId: null });
    expect(await svc.exports('z1')).toEqual([]);
  });
});

describe('release of terminated instances and StorageEvents', () => {
  it('the sweep detaches volumes of terminated instances and deletes DeleteOnTermination ones', async () => {
    await svc.attach(alice, now, { volumeId: 'vol-0000000000000000a', instanceId: 'i-0000000000000000a', device: '/dev/sdf', deleteOnTermination: true, dryRun: false });
    repo.put(volumeRow({ id: 'vol-0000000000000000c', accountId: alice.id }));
    await svc.attach(alice, now, { volumeId: 'vol-0000000000000000c', instanceId: 'i-0000000000000000a', device: '/dev/sdg', dryRun: false });
    expect(await svc.sweep()).toBe(0);
    repo.instances.get('i-0000000000000000a')!.state = 'terminated';
    zone.calls = [];
    expect(await svc.sweep()).toBe(2);
    expect(zone.ops()).not.toContain('detachVolume'); // the instance is gone: nothing to unplug
    expect(repo.get('vol-0000000000000000a')?.state).toBe('deleting');
    expect(repo.get('vol-0000000000000000c')).toMatchObject({ state: 'available', attachState: null });
  });

  it('applies the SC events by the state machine; a deleted volume loses its tags', async () => {
    const v = await svc.create(alice, now, input({ tagSpecifications: [{ resourceType: 'volume', tags: [{ key: 'k', value: 'v' }] }] }));
    const ev = (state: string) => ({ kind: 'volume' as const, id: v.volume.id, zone: 'z1', state, at: now.toISOString() });
    await svc.applyEvent(ev('available') as never);
    expect(repo.get(v.volume.id)?.state).toBe('available');
    await svc.applyEvent({ ...ev('available'), zone: 'z2' } as never);
    await svc.delete(alice, v.volume.id, false);
    await svc.applyEvent(ev('deleted') as never);
    expect(repo.get(v.volume.id)).toMatchObject({ state: 'deleted', deletedAt: now });
    expect(tags.tags.has(v.volume.id)).toBe(false);
  });
});

describe('DescribeVolumes', () => {
  it('the caller sees its own volumes, the admin every one; deleted ones for the retention period', async () => {
    repo.put(volumeRow({ id: 'vol-0000000000000000c', accountId: alice.id, state: 'deleted', deletedAt: new Date(now.getTime() - 2 * DAY) }));
    repo.put(volumeRow({ id: 'vol-0000000000000000d', accountId: alice.id, state: 'deleted', deletedAt: new Date(now.getTime() - 1000) }));
    const ids = async (caller: Caller) => (await svc.describe(caller, now, { ids: [], filters: [] })).volumes.map((v) => v.volume.id);
    expect(await ids(alice)).toEqual(['vol-0000000000000000a', 'vol-0000000000000000d']);
    expect(await ids(admin)).toEqual(['vol-0000000000000000a', 'vol-0000000000000000b', 'vol-0000000000000000d']);
    expect(await codeOf(svc.describe(alice, now, { ids: ['vol-0000000000000000b'], filters: [] }))).toBe('InvalidVolume.NotFound');
    const status = await svc.describeStatus(alice, now, { ids: [], filters: [] });
    expect(status.statuses.map((s) => [s.volume.id, s.status])).toEqual([['vol-0000000000000000a', 'ok']]);
    expect(await codeOf(svc.describe(alice, now, { ids: [], filters: [{ name: 'nope', values: ['x'] }] }))).toBe('InvalidParameterValue');
  });

  it('registers volumes as taggable, owned while not deleted', async () => {
    repo.put(volumeRow({ id: 'vol-0000000000000000c', accountId: alice.id, state: 'deleted' }));
    const owners = await registry.kindOf('vol-0000000000000000a').owners(FAKE_TX, ['vol-0000000000000000a', 'vol-0000000000000000c']);
    expect([...owners]).toEqual([['vol-0000000000000000a', alice.id]]);
  });
});
