// InstanceLifecycleService on in-memory fakes (testing/): how reported state changes are applied.
import type { InstanceEvent } from '@koala/contracts';
import { InstanceLifecycleService } from './instance-lifecycle.service.js';
import { FakeInstancesStore } from './testing/fake-instances-store.js';
import { FakeBlockDevices, FakeCluster, FakeNetwork, FakePublisher, quietLogger } from './testing/fake-ports.js';

const A = 'i-00000000000000a01';
const changedAt = new Date('2026-12-01T00:00:00Z');
const now = new Date('2026-12-01T00:05:00Z');
const after = (s: number) => new Date(changedAt.getTime() + s * 1000).toISOString();

function setup() {
  const store = new FakeInstancesStore();
  const cluster = new FakeCluster();
  const network = new FakeNetwork();
  const publisher = new FakePublisher();
  const blockDevices = new FakeBlockDevices();
  const service = new InstanceLifecycleService(store, { now: () => now }, quietLogger(), cluster, blockDevices, network, publisher);
  return { store, cluster, network, publisher, blockDevices, service };
}

const event = (over: Partial<InstanceEvent>) => ({ instanceId: A, node: 'n1', state: 'running' as const, at: after(10), ...over });

describe('InstanceLifecycleService.applyEvent', () => {
  it('pending → running: applied, the node kept, the zone republished, block devices attached', async () => {
    const { store, publisher, blockDevices, service } = setup();
    store.put({ id: A, accountId: 'a', state: 'pending', stateCode: 0, node: null, stateChangedAt: changedAt });
    const d = await service.applyEvent(event({}));
    expect(d.kind).toBe('apply');
    expect(store.get(A)).toMatchObject({ state: 'running', stateCode: 16, node: 'n1' });
    expect(publisher.zones).toEqual(['zone-a']); // the node changed: its network state must follow
    expect(blockDevices.stepped).toEqual([[A]]);
  });

  it('ignores an unknown instance, an older event, another node’s event and a terminated instance', async () => {
    const { store, service } = setup();
    expect(await service.applyEvent(event({}))).toEqual({ kind: 'ignore', why: 'unknown' });
    store.put({ id: A, accountId: 'a', state: 'running', stateChangedAt: changedAt });
    expect(await service.applyEvent(event({ state: 'stopped', at: after(-1) }))).toEqual({ kind: 'ignore', why: 'stale' });
    expect(await service.applyEvent(event({ state: 'stopped', node: 'n2' }))).toEqual({ kind: 'ignore', why: 'other-node' });
    store.get(A)!.state = 'terminated';
    expect(await service.applyEvent(event({ state: 'running' }))).toEqual({ kind: 'ignore', why: 'terminal' });
  });

  it('terminated: the addresses are released with it and the zone republished', async () => {
    const { store, network, publisher, service } = setup();
    store.put({ id: A, accountId: 'a', state: 'shutting-down', stateCode: 32, stateChangedAt: changedAt });
    await service.applyEvent(event({ state: 'terminated' }));
    expect(store.get(A)).toMatchObject({ state: 'terminated', stateCode: 48 });
    expect(network.released).toEqual([A]);
    expect(publisher.zones).toEqual(['zone-a']);
  });

  it('a guest-initiated stop of a terminate-on-shutdown instance: shutting-down, then terminate is sent', async () => {
    const { store, cluster, service } = setup();
    store.put({ id: A, accountId: 'a', shutdownBehavior: 'terminate', stateChangedAt: changedAt });
    await service.applyEvent(event({ state: 'stopped', guestInitiated: true }));
    expect(store.get(A)!.state).toBe('shutting-down');
    expect(cluster.actions).toEqual([{ zone: 'zone-a', instanceId: A, node: 'n1', action: 'terminate' }]);
  });

  it('`unless`: a correction from an older snapshot loses to a change applied meanwhile', async () => {
    const { store, service } = setup();
    store.put({ id: A, accountId: 'a', state: 'stopped', stateCode: 80, stateChangedAt: changedAt });
    const d = await service.applyEvent(event({ state: 'running' }), { unless: { state: 'stopping', stateChangedAt: new Date(changedAt.getTime() - 5000) } });
    expect(d).toEqual({ kind: 'ignore', why: 'stale' });
    expect(store.get(A)!.state).toBe('stopped');
  });
});

describe('InstanceLifecycleService.applyEvents (a pull batch)', () => {
  const B = 'i-00000000000000b02';
  const C = 'i-00000000000000c03';

  it('one transaction and one state write for the batch; each event decided on what the previous left', async () => {
    const { store, network, publisher, blockDevices, service } = setup();
    store.put({ id: A, accountId: 'a', state: 'pending', stateCode: 0, node: null, stateChangedAt: changedAt });
    store.put({ id: B, accountId: 'a', state: 'shutting-down', stateCode: 32, stateChangedAt: changedAt });
    store.put({ id: C, accountId: 'a', state: 'running', stateChangedAt: changedAt });
    const before = store.transactions;
    const decisions = await service.applyEvents([
      event({ instanceId: A, state: 'running', at: after(10) }),
      event({ instanceId: B, state: 'terminated', at: after(11) }),
      event({ instanceId: A, state: 'stopped', at: after(12) }), // after A's running, in the same batch
      event({ instanceId: C, state: 'running', node: 'n9' }), // another node's: ignored
      event({ instanceId: 'i-00000000000000d04' }), // unknown
    ]);
    expect(decisions.map((d) => d.kind)).toEqual(['apply', 'apply', 'apply', 'ignore', 'ignore']);
    expect(store.transactions - before).toBe(1);
    expect(store.stateWrites).toEqual([[A, B]]);
    expect(store.get(A)).toMatchObject({ state: 'stopped', stateCode: 80, node: 'n1', stateChangedAt: new Date(after(12)) });
    expect(store.get(B)).toMatchObject({ state: 'terminated', stateCode: 48 });
    expect(store.get(C)!.state).toBe('running');
    expect(network.released).toEqual([B]);
    expect(publisher.zones).toEqual(['zone-a', 'zone-a']); // A got its node, B terminated
    expect(blockDevices.stepped).toEqual([[A]]);
  });

  it('the follow-ups run inside `within`, per event; a guest stop of terminate-on-shutdown sends terminate', async () => {
    const { store, cluster, service } = setup();
    store.put({ id: A, accountId: 'a', shutdownBehavior: 'terminate', stateChangedAt: changedAt });
    const seen: number[] = [];
    await service.applyEvents([event({ state: 'stopped', guestInitiated: true }), event({ instanceId: B })], async (n, work) => {
      seen.push(n);
      await work();
    });
    expect(seen).toEqual([0, 1]);
    expect(store.get(A)!.state).toBe('shutting-down');
    expect(cluster.actions).toEqual([{ zone: 'zone-a', instanceId: A, node: 'n1', action: 'terminate' }]);
  });

  it('an empty batch writes nothing', async () => {
    const { store, service } = setup();
    expect(await service.applyEvents([])).toEqual([]);
    expect(store.transactions).toBe(0);
  });
});

describe('InstanceLifecycleService.fail', () => {
  it('terminates with the reason, releases the addresses, republishes the zone', async () => {
    const { store, network, publisher, service } = setup();
    store.put({ id: A, accountId: 'a', state: 'pending', stateCode: 0, node: null, stateChangedAt: changedAt });
    expect(await service.fail(A, { code: 'Server.InternalError', message: 'x' })).toBe(true);
    expect(store.get(A)).toMatchObject({ state: 'terminated', stateReasonCode: 'Server.InternalError', terminatedAt: now });
    expect(network.released).toEqual([A]);
    expect(publisher.zones).toEqual(['zone-a']);
  });

  it('does nothing to an unknown or terminated instance, or one changed since the snapshot', async () => {
    const { store, network, service } = setup();
    expect(await service.fail(A, { code: 'Server.InternalError', message: 'x' })).toBe(false);
    store.put({ id: A, accountId: 'a', stateChangedAt: changedAt });
    expect(await service.fail(A, { code: 'Server.InternalError', message: 'x' }, { unless: { state: 'pending', stateChangedAt: changedAt } })).toBe(false);
    store.get(A)!.state = 'terminated';
    expect(await service.fail(A, { code: 'Server.InternalError', message: 'x' })).toBe(false);
    expect(network.released).toEqual([]);
  });
});

describe('InstanceLifecycleService.send', () => {
  it('answers whether the command reached the zone; a failure is not thrown (reconciliation re-sends)', async () => {
    const { cluster, service } = setup();
    expect(await service.send('zone-a', A, 'n1', 'stop', true)).toBe(true);
    expect(cluster.actions).toEqual([{ zone: 'zone-a', instanceId: A, node: 'n1', action: 'stop', force: true }]);
    cluster.actionError = new Error('timeout');
    expect(await service.send('zone-a', A, 'n1', 'stop')).toBe(false);
  });
});
