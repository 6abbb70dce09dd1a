import { decideEvent, domainState, gmt, REASONS, userInitiated, type InstanceSnapshot } from './instance-states.js';

const T0 = new Date('2026-11-26T03:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000).toISOString();
const inst = (over: Partial<InstanceSnapshot> = {}): InstanceSnapshot => ({
  id: 'i-0123456789abcdef0',
  state: 'pending',
  stateCode: 0,
  stateReasonCode: null,
  stateReasonMessage: null,
  stateTransitionReason: '',
  stateChangedAt: T0,
  node: 'n1',
  terminatedAt: null,
  shutdownBehavior: 'stop',
  ...over,
});
const ev = (state: string, s: number, over: object = {}) => ({ state: state as never, node: 'n1', at: at(s), ...over });
const now = new Date(T0.getTime() + 60_000);

describe('instance state machine', () => {
  it('moves pending → running and clears the reason', () => {
    const d = decideEvent(inst(), ev('running', 5), now);
    expect(d).toEqual({ kind: 'apply', patch: expect.objectContaining({ state: 'running', stateCode: 16, stateReasonCode: null }) });
  });

  it('ignores stale and impossible events (running after terminated, older than the last change)', () => {
    expect(decideEvent(inst({ state: 'terminated', stateCode: 48 }), ev('running', 5), now)).toEqual({ kind: 'ignore', why: 'terminal' });
    expect(decideEvent(inst({ state: 'stopping', stateCode: 64, stateChangedAt: new Date(T0.getTime() + 10_000) }), ev('running', 5), now)).toEqual({ kind: 'ignore', why: 'stale' });
    expect(decideEvent(inst({ state: 'shutting-down', stateCode: 32 }), ev('running', 5), now)).toEqual({ kind: 'ignore', why: 'not-allowed' });
    expect(decideEvent(inst({ state: 'running', stateCode: 16 }), ev('pending', 5), now)).toEqual({ kind: 'ignore', why: 'not-allowed' });
    expect(decideEvent(undefined, ev('running', 5), now)).toEqual({ kind: 'ignore', why: 'unknown' });
    expect(decideEvent(inst(), ev('running', 5, { node: 'other' }), now)).toEqual({ kind: 'ignore', why: 'other-node' });
  });

  it('takes the node from the first event when the placement is not recorded yet', () => {
    const d = decideEvent(inst({ node: null }), ev('running', 5, { node: 'n7' }), now);
    expect(d.kind === 'apply' && d.patch.node).toBe('n7');
  });

  it('failed → terminated with the reason (default Server.InternalError)', () => {
    const d = decideEvent(inst(), ev('failed', 5), now);
    expect(d).toEqual({ kind: 'apply', patch: expect.objectContaining({ state: 'terminated', stateReasonCode: 'Server.InternalError', terminatedAt: now }) });
    const d2 = decideEvent(inst(), ev('failed', 5, { reason: REASONS.insufficientCapacity }), now);
    expect(d2.kind === 'apply' && d2.patch.stateReasonCode).toBe('Server.InsufficientInstanceCapacity');
  });

  it('applies InstanceInitiatedShutdownBehavior to a guest-initiated stop', () => {
    const stop = decideEvent(inst({ state: 'running', stateCode: 16 }), ev('stopped', 5, { guestInitiated: true }), now);
    expect(stop).toEqual({ kind: 'apply', patch: expect.objectContaining({ state: 'stopped', stateReasonCode: 'Client.InstanceInitiatedShutdown' }) });
    const term = decideEvent(inst({ state: 'running', stateCode: 16, shutdownBehavior: 'terminate' }), ev('stopped', 5, { guestInitiated: true }), now);
    expect(term).toEqual({ kind: 'apply', patch: expect.objectContaining({ state: 'shutting-down', stateReasonCode: 'Client.InstanceInitiatedShutdown' }), then: 'terminate' });
  });

  it('keeps the user-initiated reason through shutting-down → terminated', () => {
    const d = decideEvent(inst({ state: 'shutting-down', stateCode: 32, stateReasonCode: REASONS.userShutdown.code }), ev('terminated', 5), now);
    expect(d.kind === 'apply' && d.patch).toEqual(expect.objectContaining({ state: 'terminated', terminatedAt: now }));
    expect(d.kind === 'apply' && 'stateReasonCode' in d.patch).toBe(false);
  });

  it('writes EC2 reasons and maps domain states', () => {
    expect(gmt(new Date('2026-01-02T03:04:05Z'))).toBe('2026-01-02 03:04:05 GMT');
    expect(userInitiated(new Date('2026-01-02T03:04:05Z'))).toBe('User initiated (2026-01-02 03:04:05 GMT)');
    expect(domainState('running')).toBe('running');
    expect(domainState('shutoff')).toBe('stopped');
    expect(domainState('nostate')).toBe('pending');
  });
});
