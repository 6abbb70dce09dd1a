// BlockDevicesService's own rules on in-memory fakes (its repository and the volume actions it
// calls): the up-front checks, and each step of a mapping from pending to attached, failed or
// released. The real repository and VolumesService are covered by test/block-devices on PostgreSQL.
import { Ec2Error } from '@koala/ec2-query';
import type { Caller } from '../persistence/access-scope.js';
import type { EbsMapping } from './block-device-mapping.js';
import type { BlockDeviceRow } from './block-device.repository.js';
import { BlockDevicesService, mappingClientToken, type MappingVolumes } from './block-devices.service.js';
import { FAKE_TX, FakeBlockDeviceStore, FakeTags, FakeVolumesStore, silentLogger, volumeRow } from './testing/fakes.js';
import type { CreateVolumeInput, VolumeView } from './volumes.service.js';
import { codeOf } from '../testing/ec2-code.js';

const alice: Caller = { id: '111111111111', isAdmin: false };
const I = 'i-0000000000000000a';
const DEV = '/dev/sdf';
const TIMEOUT = 60_000;
let now = new Date('2026-12-07T00:00:00Z');

/** The volume actions: records calls, makes volumes in the fake store, fails on demand. */
class FakeVolumeActions implements MappingVolumes {
  calls: Array<{ op: string; caller: Caller; arg: unknown }> = [];
  fail = new Map<string, Error>();
  private n = 0;
  constructor(private readonly store: FakeVolumesStore) {}

  async create(caller: Caller, _now: Date, input: CreateVolumeInput): Promise<VolumeView> {
    this.calls.push({ op: 'create', caller, arg: input });
    if (input.dryRun) {
      if (this.fail.has('create')) throw this.fail.get('create');
      throw Ec2Error.dryRun();
    }
    if (this.fail.has('create')) {
      if (this.fail.get('create')!.message === 'leave') this.store.put(volumeRow({ id: 'vol-00000000000000eee', accountId: caller.id, state: 'error', clientToken: input.clientToken ?? null }));
      throw this.fail.get('create');
    }
    const volume = volumeRow({ id: `vol-0000000000000000${++this.n}`, accountId: caller.id, state: 'creating', clientToken: input.clientToken ?? null });
    this.store.put(volume);
    return { volume, tags: [] };
  }

  async delete(caller: Caller, id: string): Promise<void> {
    this.calls.push({ op: 'delete', caller, arg: id });
    await this.store.update({ id }, { state: 'deleting' });
  }

  async attach(caller: Caller, at: Date, q: { volumeId: string; instanceId: string; device: string; deleteOnTermination?: boolean }) {
    this.calls.push({ op: 'attach', caller, arg: q });
    if (this.fail.has('attach')) throw this.fail.get('attach');
    await this.store.update({ id: q.volumeId }, { state: 'in-use', attachState: 'attached', attachInstanceId: q.instanceId, attachDevice: q.device });
    return { volumeId: q.volumeId, instanceId: q.instanceId, device: q.device, status: 'attached', attachTime: at, deleteOnTermination: q.deleteOnTermination ?? false };
  }

  ops(): string[] {
    return this.calls.map((c) => c.op);
  }
}

let volumes: FakeVolumesStore;
let repo: FakeBlockDeviceStore;
let actions: FakeVolumeActions;
let svc: BlockDevicesService;

const mapping = (f: Partial<EbsMapping> = {}): EbsMapping => ({ at: 'BlockDeviceMapping.1', deviceName: DEV, sizeGiB: 4, deleteOnTermination: true, ...f }) as EbsMapping;

beforeEach(() => {
  now = new Date('2026-12-07T00:00:00Z');
  volumes = new FakeVolumesStore();
  repo = new FakeBlockDeviceStore(volumes);
  actions = new FakeVolumeActions(volumes);
  svc = new BlockDevicesService(repo, { volumeAttachTimeoutMs: TIMEOUT }, silentLogger, { now: () => now }, new FakeTags(), actions);
});

/** A mapping of instance I recorded, the instance in `state`. */
async function recorded(state: string | undefined, f: Partial<EbsMapping> = {}): Promise<BlockDeviceRow> {
  await svc.record(FAKE_TX, alice, now, [I], 'z1', [mapping(f)], []);
  if (state) repo.instanceStates.set(I, state);
  return repo.row(I, DEV)!;
}

describe('validate and record', () => {
  it('checks each mapping as a DryRun CreateVolume of the caller; a zone without SC is Unavailable', async () => {
    await svc.validate(alice, now, 'z1', [], []);
    expect(actions.calls).toEqual([]);
    await svc.validate(alice, now, 'z1', [mapping(), mapping({ deviceName: '/dev/sdg', snapshotId: 'snap-0000000000000000a', sizeGiB: undefined })], []);
    expect(actions.calls.map((c) => [c.caller, (c.arg as CreateVolumeInput).dryRun, (c.arg as CreateVolumeInput).snapshotId])).toEqual([
      [alice, true, undefined],
      [alice, true, 'snap-0000000000000000a'],
    ]);
    actions.fail.set('create', Ec2Error.notFound('InvalidZone.NotFound', 'z9'));
    expect(await codeOf(svc.validate(alice, now, 'z9', [mapping()], []))).toBe('Unavailable');
    actions.fail.set('create', Ec2Error.notFound('InvalidSnapshot.NotFound', 'snap-0000000000000000a'));
    expect(await codeOf(svc.validate(alice, now, 'z1', [mapping()], []))).toBe('InvalidSnapshot.NotFound');
    expect(await codeOf(svc.validate(alice, now, 'z1', [mapping()], [{ resourceType: 'volume', tags: [{ key: 'aws:x', value: 'y' }] }]))).toBe('InvalidParameterValue');
  });

  it('records one pending row per instance and mapping', async () => {
    await svc.record(FAKE_TX, alice, now, [I, 'i-0000000000000000b'], 'z1', [mapping(), mapping({ deviceName: '/dev/sdg', deleteOnTermination: false })], []);
    expect(repo.rows.map((r) => [r.instanceId, r.deviceName, r.state, r.accountId, r.deleteOnTermination])).toEqual([
      [I, DEV, 'pending', alice.id, true],
      [I, '/dev/sdg', 'pending', alice.id, false],
      ['i-0000000000000000b', DEV, 'pending', alice.id, true],
      ['i-0000000000000000b', '/dev/sdg', 'pending', alice.id, false],
    ]);
  });
});

describe('step', () => {
  it('pending → creating: the volume is created as the owner under the mapping ClientToken', async () => {
    await recorded('pending');
    expect(await svc.step()).toBe(1);
    const row = repo.row(I, DEV)!;
    expect(row).toMatchObject({ state: 'creating', volumeId: 'vol-00000000000000001', claimedAt: null });
    expect(actions.calls[0]).toMatchObject({ op: 'create', caller: alice, arg: { zone: 'z1', sizeGiB: 4, clientToken: mappingClientToken(I, DEV), dryRun: false } });
  });

  it('pending of an ended instance → released, nothing created', async () => {
    await recorded('terminated');
    await svc.step();
    expect(repo.row(I, DEV)!.state).toBe('released');
    expect(actions.calls).toEqual([]);
  });

  it('a failed create fails the mapping with the reason and keeps a volume left in error', async () => {
    await recorded('running');
    actions.fail.set('create', new Error('leave'));
    await svc.step();
    expect(repo.row(I, DEV)).toMatchObject({ state: 'failed', reasonCode: 'Server.InternalError', volumeId: 'vol-00000000000000eee' });
    // The instance ends: the failed DeleteOnTermination volume is deleted, the mapping released.
    repo.instanceStates.set(I, 'terminated');
    await svc.step();
    expect(actions.ops()).toEqual(['create', 'delete']);
    expect(actions.calls[1]!.caller).toEqual({ id: alice.id, isAdmin: true });
    expect(repo.row(I, DEV)!.state).toBe('released');
  });

  it('creating: waits for the volume and the running instance, then attaches', async () => {
    await recorded('pending');
    await svc.step();
    await svc.step();
    expect(repo.row(I, DEV)!.state).toBe('creating'); // volume still creating
    await volumes.update({ id: 'vol-00000000000000001' }, { state: 'available' });
    await svc.step();
    expect(repo.row(I, DEV)!.state).toBe('creating'); // instance not running yet
    repo.instanceStates.set(I, 'running');
    await svc.step([I]);
    expect(repo.row(I, DEV)).toMatchObject({ state: 'attached', claimedAt: null });
    expect(actions.calls.at(-1)).toMatchObject({ op: 'attach', caller: alice, arg: { volumeId: 'vol-00000000000000001', instanceId: I, device: DEV, deleteOnTermination: true } });
    expect(await svc.step()).toBe(0);
  });

  it('a volume that failed or went elsewhere fails the mapping; an ended instance releases it (deleting a DeleteOnTermination volume)', async () => {
    await recorded('running');
    await svc.step();
    await volumes.update({ id: 'vol-00000000000000001' }, { state: 'error', stateReasonCode: 'InsufficientVolumeCapacity', stateReasonMessage: 'full' });
    await svc.step();
    expect(repo.row(I, DEV)).toMatchObject({ state: 'failed', reasonCode: 'InsufficientVolumeCapacity', reasonMessage: 'full' });

    repo.rows = [];
    await recorded('running', { deviceName: DEV });
    await svc.step();
    await volumes.update({ id: 'vol-00000000000000002' }, { state: 'in-use', attachState: 'attached', attachInstanceId: 'i-0000000000000000b', attachDevice: DEV });
    await svc.step();
    expect(repo.row(I, DEV)).toMatchObject({ state: 'failed', reasonCode: 'VolumeInUse' });

    repo.rows = [];
    await recorded('running');
    await svc.step();
    await volumes.update({ id: 'vol-00000000000000003' }, { state: 'available' });
    repo.instanceStates.set(I, 'shutting-down');
    await svc.step();
    expect(repo.row(I, DEV)!.state).toBe('released');
    expect(volumes.get('vol-00000000000000003')!.state).toBe('deleting');
  });

  it('a failed attach fails the mapping while the instance runs, and retries when it stopped meanwhile', async () => {
    await recorded('running');
    await svc.step();
    await volumes.update({ id: 'vol-00000000000000001' }, { state: 'available' });
    actions.fail.set('attach', new Ec2Error('IncorrectState', 'not yet'));
    repo.instanceStates.set(I, 'running');
    const attachStopping = actions.attach.bind(actions);
    actions.attach = async (...a) => {
      repo.instanceStates.set(I, 'stopping');
      return attachStopping(...a);
    };
    await svc.step();
    expect(repo.row(I, DEV)).toMatchObject({ state: 'creating', reasonCode: 'IncorrectState' });
    actions.attach = attachStopping;
    repo.instanceStates.set(I, 'running');
    await svc.step();
    expect(repo.row(I, DEV)).toMatchObject({ state: 'failed', reasonCode: 'IncorrectState' });
  });

  it('attaching: a claim under way is left alone; a stale one (a CLC stopped mid-attach) is taken over', async () => {
    await recorded('running');
    await svc.step();
    await volumes.update({ id: 'vol-00000000000000001' }, { state: 'available' });
    await repo.move({ instanceId: I, deviceName: DEV }, 'creating', { state: 'attaching', claimedAt: now });
    await svc.step();
    expect(repo.row(I, DEV)!.state).toBe('attaching');
    expect(actions.ops()).toEqual(['create']);
    now = new Date(now.getTime() + 2 * TIMEOUT + 1);
    await svc.step();
    expect(repo.row(I, DEV)!.state).toBe('attached');
    expect(actions.ops()).toEqual(['create', 'attach']);
  });
});

describe('setDeleteOnTermination', () => {
  it('changes the mapping and the attached volume; a device with neither is InvalidParameterValue', async () => {
    expect(await codeOf(svc.setDeleteOnTermination(FAKE_TX, I, DEV, false))).toBe('InvalidParameterValue');
    await recorded('running');
    await svc.setDeleteOnTermination(FAKE_TX, I, DEV, false);
    expect(repo.row(I, DEV)!.deleteOnTermination).toBe(false);
    volumes.put(volumeRow({ id: 'vol-0000000000000000a', accountId: alice.id, state: 'in-use', attachState: 'attached', attachInstanceId: I, attachDevice: '/dev/sdh' }));
    await svc.setDeleteOnTermination(FAKE_TX, I, '/dev/sdh', true);
    expect(volumes.get('vol-0000000000000000a')!.deleteOnTermination).toBe(true);
  });
});
