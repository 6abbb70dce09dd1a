// InstancesService on in-memory fakes (testing/): its own rules, no database, no zone.
import type { InstanceAction } from '@koala/contracts';
import { type TagSpecification } from '@koala/ec2-query';
import { InstanceTypesService } from '../instance-types/instance-types.service.js';
import type { Caller } from '../persistence/access-scope.js';
import type { InstanceEntity } from './instance.entity.js';
import { InstancesService, type RunInstancesInput } from './instances.service.js';
import { FakeInstancesStore } from './testing/fake-instances-store.js';
import { FakeBlockDevices, FakeCluster, FakeGroups, FakeImages, FakeNetwork, FakePublisher, FakeQuotas, FakeTags, IMAGE, quietLogger } from './testing/fake-ports.js';
import { codeOf } from '../testing/ec2-code.js';

const alice: Caller = { id: '111111111111', isAdmin: false };
const bob: Caller = { id: '222222222222', isAdmin: false };
const admin: Caller = { id: '000000000000', isAdmin: true };
const now = new Date('2026-12-01T10:00:00Z');
const RETENTION_MS = 3_600_000;
const A = 'i-00000000000000a01';
const B = 'i-00000000000000b02';

function setup() {
  const store = new FakeInstancesStore();
  const cluster = new FakeCluster();
  const tags = new FakeTags();
  const network = new FakeNetwork();
  const publisher = new FakePublisher();
  const blockDevices = new FakeBlockDevices();
  const quotas = new FakeQuotas((id) => [...store.instances.values()].filter((i) => i.accountId === id && i.state !== 'terminated').length);
  const sends: Array<{ instanceId: string; action: InstanceAction; force?: boolean }> = [];
  const lifecycle = {
    send: async (_zone: string, instanceId: string, _node: string, action: InstanceAction, force?: boolean) => {
      sends.push({ instanceId, action, ...(force ? { force } : {}) });
      return true;
    },
  };
  const service = new InstancesService(
    store,
    { maxInstancesPerRun: 4, terminatedRetentionMs: RETENTION_MS },
    quietLogger(),
    cluster,
    new FakeImages(),
    new InstanceTypesService({ instanceTypesFile: undefined }),
    new FakeGroups(),
    tags,
    lifecycle,
    blockDevices,
    network,
    publisher,
    { register: () => {} },
    quotas,
  );
  return { store, cluster, tags, network, publisher, quotas, sends, service };
}

const input = (over: Partial<RunInstancesInput> = {}): RunInstancesInput => ({
  imageId: IMAGE,
  minCount: 1,
  maxCount: 1,
  groupNames: [],
  groupIds: [],
  tagSpecifications: [],
  disableApiTermination: false,
  shutdownBehavior: 'stop',
  dryRun: false,
  ...over,
});

const states = (s: FakeInstancesStore) => Object.fromEntries([...s.instances.values()].map((i) => [i.id, i.state]));

describe('InstancesService.run (RunInstances)', () => {
  it('records a reservation of MaxCount pending instances, places them and keeps their nodes', async () => {
    const { store, cluster, publisher, tags, service } = setup();
    const tagSpecifications: TagSpecification[] = [{ resourceType: 'instance', tags: [{ key: 'k', value: 'v' }] }];
    const r = await service.run(alice, now, input({ minCount: 1, maxCount: 3, tagSpecifications }));
    expect(r.instances.map((v) => [v.instance.launchIndex, v.instance.state, v.instance.node, v.instance.accountId])).toEqual([
      [0, 'pending', 'n1', alice.id],
      [1, 'pending', 'n1', alice.id],
      [2, 'pending', 'n1', alice.id],
    ]);
    expect(r.reservation).toMatchObject({ accountId: alice.id, requesterId: alice.id });
    expect(r.instances[0]!.groups).toEqual([{ groupId: `sg-${alice.id}`, groupName: '' }]);
    expect(store.links.map((l) => l.groupId)).toEqual(Array(3).fill(`sg-${alice.id}`));
    expect(cluster.places).toHaveLength(1);
    expect(tags.applied).toHaveLength(3);
    expect(publisher.zones).toEqual(['zone-a']);
  });

  it.each([
    ['MinCount below 1', { minCount: 0, maxCount: 1 }],
    ['MaxCount below 1', { minCount: 1, maxCount: 0 }],
    ['MinCount above MaxCount', { minCount: 3, maxCount: 2 }],
    ['MinCount above the instances one request may launch', { minCount: 5, maxCount: 5 }],
    ['an unknown instance type', { instanceType: 'x9.huge' }],
    ['a ClientToken longer than 64', { clientToken: 'x'.repeat(65) }],
    ['user data above 16 KiB', { userData: Buffer.alloc(16 * 1024 + 1) }],
    ['an unknown zone', { zone: 'zone-z' }],
  ])('refuses %s with InvalidParameterValue, writing nothing', async (_what, over) => {
    const { store, cluster, service } = setup();
    expect(await codeOf(service.run(alice, now, input(over)))).toBe('InvalidParameterValue');
    expect(store.instances.size + store.reservationRows.size + store.transactions).toBe(0);
    expect(cluster.places).toEqual([]);
  });

  it('caps MaxCount at the instances one request may launch', async () => {
    const { service } = setup();
    expect((await service.run(alice, now, input({ minCount: 1, maxCount: 10 }))).instances).toHaveLength(4);
  });

  it('takes a private IP for one instance only', async () => {
    const { service } = setup();
    expect(await codeOf(service.run(alice, now, input({ maxCount: 2, privateIp: '10.0.0.50' })))).toBe('InvalidParameterCombination');
  });

  it('answers the image and key pair errors', async () => {
    const { store, service } = setup();
    expect(await codeOf(service.run(alice, now, input({ imageId: 'emi-00000000000000bad' })))).toBe('InvalidAMIID.NotFound');
    expect(await codeOf(service.run(alice, now, input({ keyName: 'nope' })))).toBe('InvalidKeyPair.NotFound');
    store.keyPairs.set(`${bob.id}/mine`, 'ssh-ed25519 AAAA');
    expect(await codeOf(service.run(alice, now, input({ keyName: 'mine' })))).toBe('InvalidKeyPair.NotFound'); // bob's, not alice's
  });

  it('answers InsufficientInstanceCapacity when no zone answers', async () => {
    const { cluster, service } = setup();
    cluster.zonesUp = [];
    expect(await codeOf(service.run(alice, now, input()))).toBe('InsufficientInstanceCapacity');
  });

  it('launches as many as the quota admits, at least MinCount; refuses below MinCount and writes nothing', async () => {
    const { store, cluster, quotas, service } = setup();
    quotas.limit = 3;
    store.put({ id: A, accountId: alice.id });
    expect((await service.run(alice, now, input({ minCount: 1, maxCount: 4 }))).instances).toHaveLength(2);
    const before = { instances: store.instances.size, reservations: store.reservationRows.size, places: cluster.places.length };
    expect(await codeOf(service.run(alice, now, input({ minCount: 1, maxCount: 1 })))).toBe('InstanceLimitExceeded');
    expect({ instances: store.instances.size, reservations: store.reservationRows.size, places: cluster.places.length }).toEqual(before);
    // The quota is per account.
    expect((await service.run(bob, now, input({ minCount: 2, maxCount: 2 }))).instances).toHaveLength(2);
  });

  it('DryRun: every check made, DryRunOperation, nothing written or placed', async () => {
    const { store, cluster, service } = setup();
    expect(await codeOf(service.run(alice, now, input({ dryRun: true, maxCount: 2 })))).toBe('DryRunOperation');
    expect(await codeOf(service.run(alice, now, input({ dryRun: true, imageId: 'emi-00000000000000bad' })))).toBe('InvalidAMIID.NotFound');
    expect(store.instances.size + store.reservationRows.size).toBe(0);
    expect(cluster.places).toEqual([]);
  });

  it('ClientToken: the same request answers the first reservation; other parameters are a mismatch', async () => {
    const { cluster, service } = setup();
    const first = await service.run(alice, now, input({ clientToken: 'tok', maxCount: 2 }));
    const again = await service.run(alice, now, input({ clientToken: 'tok', maxCount: 2 }));
    expect(again.reservation.id).toBe(first.reservation.id);
    expect(again.instances.map((v) => v.instance.id)).toEqual(first.instances.map((v) => v.instance.id));
    expect(cluster.places).toHaveLength(1);
    expect(await codeOf(service.run(alice, now, input({ clientToken: 'tok', maxCount: 3 })))).toBe('IdempotentParameterMismatch');
    // Another account's token is its own.
    expect((await service.run(bob, now, input({ clientToken: 'tok', maxCount: 2 }))).reservation.id).not.toBe(first.reservation.id);
  });

  it('keeps the instances the zone placed and drops the others (addresses, tags, rows)', async () => {
    const { store, cluster, network, tags, service } = setup();
    cluster.capacity = 1;
    const r = await service.run(alice, now, input({ minCount: 1, maxCount: 3 }));
    expect(r.instances).toHaveLength(1);
    expect(store.instances.size).toBe(1);
    expect(network.released).toHaveLength(2);
    expect(tags.deleted).toHaveLength(2);
  });

  it('nothing placed, or the zone failed: InsufficientInstanceCapacity and the reservation is gone', async () => {
    const { store, cluster, service } = setup();
    cluster.capacity = 0;
    expect(await codeOf(service.run(alice, now, input({ maxCount: 2 })))).toBe('InsufficientInstanceCapacity');
    expect(store.instances.size + store.reservationRows.size).toBe(0);
    cluster.capacity = Infinity;
    cluster.placeError = new Error('no answer');
    expect(await codeOf(service.run(alice, now, input({ maxCount: 2 })))).toBe('InsufficientInstanceCapacity');
    expect(store.instances.size + store.reservationRows.size).toBe(0);
  });
});

describe('InstancesService: who sees which instance', () => {
  function seeded() {
    const s = setup();
    s.store.put({ id: A, accountId: alice.id });
    s.store.put({ id: B, accountId: bob.id, reservationId: 'r-00000002' });
    s.store.put({ id: 'i-00000000000000c03', accountId: alice.id, state: 'terminated', stateCode: 48, terminatedAt: new Date(now.getTime() - RETENTION_MS - 1) });
    return s;
  }

  it('an instance of another account is InvalidInstanceID.NotFound, to describe and to change', async () => {
    const { store, service } = seeded();
    expect(await codeOf(service.describe(alice, now, { ids: [B], filters: [] }))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(service.terminate(alice, now, [B], false))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(service.stop(alice, now, [A, B], false, false))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(service.consoleOutput(alice, now, B, false, false))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(service.modifyAttribute(alice, now, B, { attribute: 'disableApiTermination', value: true }, false))).toBe('InvalidInstanceID.NotFound');
    expect(states(store)[A]).toBe('running'); // the visible one untouched too
  });

  it('describes the caller’s own, the admin every account’s, terminated ones only within retention', async () => {
    const { service } = seeded();
    const ids = async (c: Caller) => (await service.describe(c, now, { ids: [], filters: [] })).reservations.flatMap((r) => r.instances.map((v) => v.instance.id));
    expect(await ids(alice)).toEqual([A]);
    expect(await ids(admin)).toEqual([A, B]);
    expect(await codeOf(service.terminate(alice, now, ['i-00000000000000c03'], false))).toBe('InvalidInstanceID.NotFound');
  });

  it('the admin changes any account’s instance', async () => {
    const { store, service } = seeded();
    await service.stop(admin, now, [B], false, false);
    expect(states(store)[B]).toBe('stopping');
  });

  it('refuses missing and malformed ids', async () => {
    const { service } = seeded();
    expect(await codeOf(service.terminate(alice, now, [], false))).toBe('MissingParameter');
    expect(await codeOf(service.terminate(alice, now, ['i-nope'], false))).toBe('InvalidInstanceID.Malformed');
  });

  it('DescribeInstanceStatus: running instances only, unless IncludeAllInstances', async () => {
    const { store, service } = seeded();
    store.put({ id: 'i-00000000000000a04', accountId: alice.id, state: 'stopped', stateCode: 80 });
    const ids = async (includeAll: boolean) => (await service.describeStatus(alice, now, { ids: [], filters: [], includeAll })).statuses.map((s) => [s.instance.id, s.status]);
    expect(await ids(false)).toEqual([[A, 'initializing']]);
    expect(await ids(true)).toEqual([
      [A, 'initializing'],
      ['i-00000000000000a04', 'not-applicable'],
    ]);
  });
});

describe('InstancesService: state changes', () => {
  const at = (over: Partial<InstanceEntity>) => {
    const s = setup();
    s.store.put({ id: A, accountId: alice.id, ...over });
    return s;
  };

  it('TerminateInstances: running → shutting-down and the node is told; terminated stays terminated, nothing sent', async () => {
    const { store, sends, service } = at({});
    const [c] = await service.terminate(alice, now, [A], false);
    expect(c).toMatchObject({ previous: { name: 'running', code: 16 }, current: { name: 'shutting-down', code: 32 } });
    expect(store.get(A)!.stateReasonCode).toBe('Client.UserInitiatedShutdown');
    expect(sends).toEqual([{ instanceId: A, action: 'terminate' }]);
    store.get(A)!.state = 'terminated';
    store.get(A)!.stateCode = 48;
    store.get(A)!.terminatedAt = now;
    expect(await service.terminate(alice, now, [A], false)).toEqual([{ instanceId: A, previous: { code: 48, name: 'terminated' }, current: { code: 48, name: 'terminated' } }]);
    expect(sends).toHaveLength(1);
  });

  it('TerminateInstances: an instance never placed is terminated at once, its addresses released', async () => {
    const { store, network, publisher, sends, service } = at({ state: 'pending', stateCode: 0, node: null });
    await service.terminate(alice, now, [A], false);
    expect(store.get(A)).toMatchObject({ state: 'terminated', terminatedAt: now });
    expect(network.released).toEqual([A]);
    expect(publisher.zones).toEqual(['zone-a']);
    expect(sends).toEqual([]);
  });

  it('TerminateInstances: DisableApiTermination refuses all of them', async () => {
    const { store, service } = at({ disableApiTermination: true });
    store.put({ id: B, accountId: alice.id });
    expect(await codeOf(service.terminate(alice, now, [B, A], false))).toBe('OperationNotPermitted');
    expect(states(store)).toEqual({ [A]: 'running', [B]: 'running' });
  });

  it('StopInstances: running → stopping; stopped is IncorrectInstanceState; Force re-sends to a stopping one', async () => {
    const { store, sends, service } = at({});
    await service.stop(alice, now, [A], false, false);
    expect(states(store)[A]).toBe('stopping');
    await service.stop(alice, now, [A], true, false);
    expect(sends).toEqual([
      { instanceId: A, action: 'stop' },
      { instanceId: A, action: 'stop', force: true },
    ]);
    expect(await codeOf(service.stop(alice, now, [A], false, false))).toBe('IncorrectInstanceState');
    store.get(A)!.state = 'stopped';
    expect(await codeOf(service.stop(alice, now, [A], false, false))).toBe('IncorrectInstanceState');
  });

  it('StartInstances: stopped → pending; anything else is IncorrectInstanceState', async () => {
    const { store, sends, service } = at({ state: 'stopped', stateCode: 80 });
    const [c] = await service.start(alice, now, [A], false);
    expect(c!.current).toEqual({ code: 0, name: 'pending' });
    expect(sends).toEqual([{ instanceId: A, action: 'start' }]);
    expect(await codeOf(service.start(alice, now, [A], false))).toBe('IncorrectInstanceState');
    expect(states(store)[A]).toBe('pending');
  });

  it('DryRun: the state checks run, then DryRunOperation and nothing changes', async () => {
    const { store, sends, service } = at({});
    expect(await codeOf(service.stop(alice, now, [A], false, true))).toBe('DryRunOperation');
    expect(await codeOf(service.start(alice, now, [A], true))).toBe('IncorrectInstanceState');
    expect(await codeOf(service.terminate(alice, now, [A], true))).toBe('DryRunOperation');
    expect(states(store)[A]).toBe('running');
    expect(sends).toEqual([]);
  });

  it('RebootInstances: running only; a zone that does not answer is Unavailable', async () => {
    const { store, cluster, service } = at({});
    await service.reboot(alice, now, [A], false);
    expect(cluster.actions.map((a) => a.action)).toEqual(['reboot']);
    cluster.actionError = new Error('timeout');
    expect(await codeOf(service.reboot(alice, now, [A], false))).toBe('Unavailable');
    store.get(A)!.state = 'stopped';
    expect(await codeOf(service.reboot(alice, now, [A], false))).toBe('IncorrectInstanceState');
  });

  it('ModifyInstanceAttribute: instance type only while stopped and only a known one', async () => {
    const { store, service } = at({});
    expect(await codeOf(service.modifyAttribute(alice, now, A, { attribute: 'instanceType', value: 'm1.large' }, false))).toBe('IncorrectInstanceState');
    store.get(A)!.state = 'stopped';
    expect(await codeOf(service.modifyAttribute(alice, now, A, { attribute: 'instanceType', value: 'x9.huge' }, false))).toBe('InvalidParameterValue');
    expect(await codeOf(service.modifyAttribute(alice, now, A, { attribute: 'instanceType', value: 'm1.large' }, true))).toBe('DryRunOperation');
    expect(store.get(A)!.instanceType).toBe('m1.small');
    await service.modifyAttribute(alice, now, A, { attribute: 'instanceType', value: 'm1.large' }, false);
    expect(store.get(A)!.instanceType).toBe('m1.large');
  });

  it('GetConsoleOutput: empty while pending, the node’s output once running', async () => {
    const { store, service } = at({ state: 'pending', stateCode: 0 });
    expect((await service.consoleOutput(alice, now, A, false, false)).output).toBe('');
    store.get(A)!.state = 'running';
    expect((await service.consoleOutput(alice, now, A, false, false)).output).toBe('Ym9vdA==');
  });
});
