import type { NodeDomains } from '@koala/contracts';
import type { InstanceSnapshot } from './instance-states.js';
import { MismatchMemory, planZone, type ReconcileStep } from './reconcile-plan.js';

const T0 = new Date('2026-11-26T03:00:00Z').getTime();
const t = (s: number) => new Date(T0 + s * 1000);
const timings = { graceMs: 30_000, launchTimeoutMs: 300_000 };
const inst = (id: string, over: Partial<InstanceSnapshot> = {}): InstanceSnapshot => ({
  id,
  state: 'running',
  stateCode: 16,
  stateReasonCode: null,
  stateReasonMessage: null,
  stateTransitionReason: '',
  stateChangedAt: t(0),
  node: 'n1',
  terminatedAt: null,
  shutdownBehavior: 'stop',
  ...over,
});
const node = (name: string, domains: Array<[string, string]>, state: 'up' | 'down' = 'up'): NodeDomains => ({
  node: name,
  domains: domains.map(([n, s]) => ({ name: n, instanceId: n, state: s })),
  state,
  lastSeen: t(0).toISOString(),
});
const A = 'i-00000000000000a01';
const B = 'i-00000000000000b02';
const kinds = (steps: ReconcileStep[], kind: string) => steps.filter((s) => s.kind === kind);

describe('planZone (reconciliation)', () => {
  it('terminates an unknown domain only after it has been seen for the grace period', () => {
    const m = new MismatchMemory();
    expect(kinds(planZone('z', [], [node('n1', [[B, 'running']])], t(100), timings, m), 'kill-domain')).toEqual([]);
    expect(kinds(planZone('z', [], [node('n1', [[B, 'running']])], t(120), timings, m), 'kill-domain')).toEqual([]);
    expect(kinds(planZone('z', [], [node('n1', [[B, 'running']])], t(131), timings, m), 'kill-domain')).toEqual([{ kind: 'kill-domain', instanceId: B, node: 'n1' }]);
    // Not re-sent at every pass.
    expect(kinds(planZone('z', [], [node('n1', [[B, 'running']])], t(132), timings, m), 'kill-domain')).toEqual([]);
  });

  it('forgets a mismatch that went away', () => {
    const m = new MismatchMemory();
    planZone('z', [], [node('n1', [[B, 'running']])], t(100), timings, m);
    planZone('z', [], [node('n1', [])], t(110), timings, m);
    expect(kinds(planZone('z', [], [node('n1', [[B, 'running']])], t(135), timings, m), 'kill-domain')).toEqual([]);
  });

  it('fails a running instance whose domain is missing on an up node after the grace period', () => {
    const m = new MismatchMemory();
    const live = [inst(A)];
    expect(kinds(planZone('z', live, [node('n1', [])], t(100), timings, m), 'fail')).toEqual([]);
    expect(kinds(planZone('z', live, [node('n1', [])], t(131), timings, m), 'fail')).toEqual([{ kind: 'fail', instanceId: A, reason: expect.objectContaining({ code: 'Server.InternalError' }) }]);
  });

  it('marks instances on a down node impaired, changes nothing else, and recovers', () => {
    const m = new MismatchMemory();
    const down = planZone('z', [inst(A)], [node('n1', [], 'down')], t(500), timings, m);
    expect(down).toEqual([{ kind: 'impaired', instanceId: A, impaired: true }]);
    const up = planZone('z', [inst(A)], [node('n1', [[A, 'running']])], t(501), timings, m);
    expect(up).toEqual([
      { kind: 'impaired', instanceId: A, impaired: false },
      { kind: 'seen', instanceId: A },
    ]);
  });

  it('fails launches that never got a node or a domain (CC died mid-launch)', () => {
    const m = new MismatchMemory();
    const live = [inst(A, { state: 'pending', stateCode: 0, node: null }), inst(B, { state: 'pending', stateCode: 0 })];
    expect(kinds(planZone('z', live, undefined, t(100), timings, m), 'fail')).toEqual([]);
    expect(kinds(planZone('z', live, undefined, t(301), timings, m), 'fail').map((s) => (s as { instanceId: string }).instanceId)).toEqual([A]);
    planZone('z', live, [node('n1', [])], t(302), timings, m);
    expect(kinds(planZone('z', live, [node('n1', [])], t(340), timings, m), 'fail').map((s) => (s as { instanceId: string }).instanceId)).toEqual([A, B]);
  });

  it('corrects states whose events were lost, and re-sends commands that had no effect', () => {
    const m = new MismatchMemory();
    const live = [inst(A, { state: 'pending', stateCode: 0 }), inst(B, { state: 'shutting-down', stateCode: 32 })];
    const nodes = [
      node('n1', [
        [A, 'running'],
        [B, 'running'],
      ]),
    ];
    planZone('z', live, nodes, t(40), timings, m);
    const steps = planZone('z', live, nodes, t(71), timings, m);
    expect(kinds(steps, 'observe')).toEqual([{ kind: 'observe', instanceId: A, node: 'n1', state: 'running' }]);
    expect(kinds(steps, 'resend')).toEqual([{ kind: 'resend', instanceId: B, node: 'n1', action: 'terminate' }]);
    // A running instance whose domain shut off: a guest-initiated stop.
    const m2 = new MismatchMemory();
    planZone('z', [inst(A)], [node('n1', [[A, 'shutoff']])], t(40), timings, m2);
    expect(kinds(planZone('z', [inst(A)], [node('n1', [[A, 'shutoff']])], t(71), timings, m2), 'observe')).toEqual([
      { kind: 'observe', instanceId: A, node: 'n1', state: 'stopped', guestInitiated: true },
    ]);
  });

  it('does not judge instances that changed state recently', () => {
    const m = new MismatchMemory();
    const live = [inst(A, { stateChangedAt: t(100) })];
    planZone('z', live, [node('n1', [])], t(101), timings, m);
    expect(kinds(planZone('z', live, [node('n1', [])], t(125), timings, m), 'fail')).toEqual([]);
  });
});
