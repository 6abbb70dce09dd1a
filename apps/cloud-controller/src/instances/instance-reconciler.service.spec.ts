// InstanceReconcilerService on in-memory fakes (testing/): what a pass does with planZone's steps
// (the plan itself: reconcile-plan.spec.ts), which zones it asks, and the purge.
import type { InstanceAction, NodeDomains } from '@koala/contracts';
import type { ChangedSince } from './instance-lifecycle.service.js';
import { InstanceReconcilerService } from './instance-reconciler.service.js';
import { FakeInstancesStore } from './testing/fake-instances-store.js';
import { FakeCluster, FakeTags, quietLogger } from './testing/fake-ports.js';

const A = 'i-00000000000000a01';
const B = 'i-00000000000000b02';
const T0 = new Date('2026-12-01T00:00:00Z').getTime();
const t = (s: number) => new Date(T0 + s * 1000);
const config = { reconcileIntervalMs: 1000, reconcileGraceMs: 30_000, launchTimeoutMs: 300_000, terminatedRetentionMs: 3_600_000 };

const node = (name: string, domains: Array<[string, string]>, state: 'up' | 'down' = 'up'): NodeDomains => ({
  node: name,
  domains: domains.map(([id, s]) => ({ name: id, instanceId: id, state: s })),
  state,
  lastSeen: t(0).toISOString(),
});

function setup() {
  const store = new FakeInstancesStore();
  const cluster = new FakeCluster();
  const tags = new FakeTags();
  const clock = {
    at: t(0),
    now() {
      return this.at;
    },
  };
  const calls: Array<{ call: string; instanceId: string; action?: InstanceAction; state?: string; unless?: ChangedSince }> = [];
  const lifecycle = {
    send: async (_zone: string, instanceId: string, _node: string, action: InstanceAction) => {
      calls.push({ call: 'send', instanceId, action });
      return true;
    },
    applyEvent: async (ev: { instanceId: string; state: string }, opts: { unless?: ChangedSince } = {}) => {
      calls.push({ call: 'applyEvent', instanceId: ev.instanceId, state: ev.state, unless: opts.unless });
      return { kind: 'ignore' as const, why: 'same' as const };
    },
    fail: async (instanceId: string, _reason: unknown, opts: { unless?: ChangedSince } = {}) => {
      calls.push({ call: 'fail', instanceId, unless: opts.unless });
      return true;
    },
  };
  const service = new InstanceReconcilerService(store, config, clock, quietLogger(), cluster, lifecycle, tags);
  /** One pass at `s` seconds. */
  const pass = (s: number) => {
    clock.at = t(s);
    return service.runOnce();
  };
  return { store, cluster, tags, calls, pass };
}

describe('InstanceReconcilerService.runOnce', () => {
  it('asks only the zones this cloud has instances in, in order', async () => {
    const { store, cluster, pass } = setup();
    const asked: string[] = [];
    cluster.domains = async (zone: string) => {
      asked.push(zone);
      return [];
    };
    store.put({ id: A, accountId: 'a', zone: 'zone-b' });
    store.put({ id: B, accountId: 'a', zone: 'zone-a', state: 'terminated', stateCode: 48, terminatedAt: t(0) });
    await pass(1);
    expect(asked).toEqual(['zone-a', 'zone-b']);
  });

  it('marks instances seen on their node; kills a domain nobody owns once it lasted the grace period', async () => {
    const { store, cluster, calls, pass } = setup();
    store.put({ id: A, accountId: 'a', stateChangedAt: t(0) });
    cluster.domainsOf.set('zone-a', [
      node('n1', [
        [A, 'running'],
        [B, 'running'],
      ]),
    ]);
    await pass(100);
    expect(store.get(A)!.lastSeenAt).toEqual(t(100));
    expect(calls).toEqual([]);
    await pass(131);
    expect(calls).toEqual([{ call: 'send', instanceId: B, action: 'terminate' }]);
  });

  it('an instance on a down node: impaired once (not rewritten each pass), reachable again when it is back', async () => {
    const { store, cluster, pass } = setup();
    store.put({ id: A, accountId: 'a', stateChangedAt: t(0) });
    cluster.domainsOf.set('zone-a', [node('n1', [], 'down')]);
    await pass(100);
    expect(store.get(A)).toMatchObject({ impaired: true, impairedSince: t(100) });
    await pass(110);
    expect(store.get(A)!.impairedSince).toEqual(t(100));
    cluster.domainsOf.set('zone-a', [node('n1', [[A, 'running']])]);
    await pass(120);
    expect(store.get(A)).toMatchObject({ impaired: false, impairedSince: null, lastSeenAt: t(120) });
  });

  it('corrects a lost event and fails a vanished instance, each unless it changed since the snapshot', async () => {
    const { store, cluster, calls, pass } = setup();
    store.put({ id: A, accountId: 'a', state: 'pending', stateCode: 0, stateChangedAt: t(0) });
    store.put({ id: B, accountId: 'a', stateChangedAt: t(0) });
    cluster.domainsOf.set('zone-a', [node('n1', [[A, 'running']])]);
    await pass(100);
    await pass(131);
    expect(calls).toEqual([
      { call: 'applyEvent', instanceId: A, state: 'running', unless: expect.objectContaining({ state: 'pending', stateChangedAt: t(0) }) },
      { call: 'fail', instanceId: B, unless: expect.objectContaining({ state: 'running', stateChangedAt: t(0) }) },
    ]);
  });

  it('a zone that does not answer: only launches that never got a node are judged', async () => {
    const { store, calls, pass } = setup();
    store.put({ id: A, accountId: 'a', state: 'pending', stateCode: 0, node: null, stateChangedAt: t(0) });
    store.put({ id: B, accountId: 'a', stateChangedAt: t(0) });
    await pass(299);
    expect(calls).toEqual([]);
    await pass(301);
    expect(calls.map((c) => [c.call, c.instanceId])).toEqual([['fail', A]]);
    expect(store.get(B)!.impaired).toBe(false);
  });

  it('purges instances terminated longer ago than the retention, their tags and emptied reservations', async () => {
    const { store, tags, pass } = setup();
    store.put({ id: A, accountId: 'a', reservationId: 'r-old', state: 'terminated', stateCode: 48, terminatedAt: t(0) });
    store.put({ id: B, accountId: 'a', reservationId: 'r-new', state: 'terminated', stateCode: 48, terminatedAt: t(100) });
    await pass(3601);
    expect([...store.instances.keys()]).toEqual([B]);
    expect([...store.reservationRows.keys()]).toEqual(['r-new']);
    expect(tags.deleted).toEqual([A]);
  });
});
