/**
 * The instance state machine, pure: which transitions an event may cause, EC2's state reasons,
 * and how a domain state reported by a node maps onto instance states. No I/O here, so the
 * rules are unit-tested directly (instance-states.spec.ts).
 */
import { INSTANCE_STATE_CODES, type InstanceEvent, type InstanceState, type StateReason } from '@koala/contracts';
import type { ShutdownBehavior } from './instance.entity.js';

/** EC2's `stateReason`s. */
export const REASONS = {
  userShutdown: { code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown' },
  instanceShutdown: { code: 'Client.InstanceInitiatedShutdown', message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown' },
  internalError: { code: 'Server.InternalError', message: 'Server.InternalError: Internal error on launch' },
  insufficientCapacity: { code: 'Server.InsufficientInstanceCapacity', message: 'Server.InsufficientInstanceCapacity: Insufficient capacity to satisfy instance request' },
} as const satisfies Record<string, StateReason>;

/** States an instance may move to from each state (whoever reports it). `terminated` is final. */
export const NEXT_STATES: Readonly<Record<InstanceState, readonly InstanceState[]>> = {
  pending: ['running', 'stopping', 'stopped', 'shutting-down', 'terminated'],
  running: ['stopping', 'stopped', 'shutting-down', 'terminated'],
  stopping: ['stopped', 'shutting-down', 'terminated'],
  stopped: ['pending', 'running', 'shutting-down', 'terminated'],
  'shutting-down': ['terminated'],
  terminated: [],
};

export function stateCode(state: InstanceState): number {
  return INSTANCE_STATE_CODES[state];
}

const pad = (n: number) => String(n).padStart(2, '0');
/** `YYYY-MM-DD HH:MM:SS GMT`, as EC2 writes it in `reason`. */
export function gmt(d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} GMT`;
}
export const userInitiated = (d: Date) => `User initiated (${gmt(d)})`;
export const serviceInitiated = (d: Date) => `Service initiated (${gmt(d)})`;

/** The state fields of an instance the machine reads and writes. */
export interface StateFields {
  state: InstanceState;
  stateCode: number;
  stateReasonCode: string | null;
  stateReasonMessage: string | null;
  stateTransitionReason: string;
  stateChangedAt: Date;
  node: string | null;
  terminatedAt: Date | null;
}

export interface InstanceSnapshot extends StateFields {
  id: string;
  shutdownBehavior: ShutdownBehavior;
}

/** A change of state: the new fields, plus the command to send afterwards, if any. */
export type Decision = { kind: 'ignore'; why: 'unknown' | 'terminal' | 'stale' | 'same' | 'other-node' | 'not-allowed' } | { kind: 'apply'; patch: Partial<StateFields>; then?: 'terminate' };

/** Fields for a move to `state` at `at` (`reason`: undefined keeps the current one, null clears it). */
export function moveTo(state: InstanceState, at: Date, opts: { reason?: StateReason | null; transitionReason?: string; now?: Date } = {}): Partial<StateFields> {
  const patch: Partial<StateFields> = { state, stateCode: stateCode(state), stateChangedAt: at };
  if (opts.reason === null) {
    patch.stateReasonCode = null;
    patch.stateReasonMessage = null;
  } else if (opts.reason) {
    patch.stateReasonCode = opts.reason.code;
    patch.stateReasonMessage = opts.reason.message;
  }
  if (opts.transitionReason !== undefined) patch.stateTransitionReason = opts.transitionReason;
  if (state === 'terminated') patch.terminatedAt = opts.now ?? at;
  return patch;
}

/**
 * What an InstanceEvent does to an instance. Transitions are monotonic: an event older than the
 * instance's last change, a move `NEXT_STATES` does not allow (e.g. `running` after
 * `terminated`), or an event from another node than the instance's is ignored.
 * `failed` → terminated with the event's reason (default Server.InternalError). A guest-initiated
 * `stopped` applies InstanceInitiatedShutdownBehavior: `terminate` → shutting-down, then the
 * caller sends `terminate`.
 */
export function decideEvent(inst: InstanceSnapshot | undefined, ev: Pick<InstanceEvent, 'state' | 'node' | 'at' | 'reason' | 'guestInitiated'>, now: Date): Decision {
  if (!inst) return { kind: 'ignore', why: 'unknown' };
  if (inst.state === 'terminated') return { kind: 'ignore', why: 'terminal' };
  if (inst.node !== null && ev.node !== inst.node) return { kind: 'ignore', why: 'other-node' };
  const parsed = new Date(ev.at);
  const at = Number.isNaN(parsed.getTime()) ? now : parsed;
  if (at.getTime() < inst.stateChangedAt.getTime()) return { kind: 'ignore', why: 'stale' };
  const nodePatch: Partial<StateFields> = inst.node === null ? { node: ev.node } : {};
  const target: InstanceState = ev.state === 'failed' ? 'terminated' : ev.state;
  if (target === inst.state) return Object.keys(nodePatch).length ? { kind: 'apply', patch: nodePatch } : { kind: 'ignore', why: 'same' };
  if (!NEXT_STATES[inst.state].includes(target)) return { kind: 'ignore', why: 'not-allowed' };

  if (ev.state === 'failed') {
    return { kind: 'apply', patch: { ...nodePatch, ...moveTo('terminated', at, { reason: ev.reason ?? REASONS.internalError, transitionReason: serviceInitiated(at), now }) } };
  }
  if (target === 'stopped' && ev.guestInitiated && (inst.state === 'running' || inst.state === 'pending')) {
    const transitionReason = `${REASONS.instanceShutdown.code}: Instance initiated shutdown`;
    if (inst.shutdownBehavior === 'terminate') {
      return { kind: 'apply', patch: { ...nodePatch, ...moveTo('shutting-down', at, { reason: REASONS.instanceShutdown, transitionReason }) }, then: 'terminate' };
    }
    return { kind: 'apply', patch: { ...nodePatch, ...moveTo('stopped', at, { reason: REASONS.instanceShutdown, transitionReason }) } };
  }
  switch (target) {
    case 'running':
    case 'pending':
      return { kind: 'apply', patch: { ...nodePatch, ...moveTo(target, at, { reason: null, transitionReason: '' }) } };
    case 'terminated':
      return { kind: 'apply', patch: { ...nodePatch, ...moveTo('terminated', at, { reason: ev.reason, now }) } };
    default:
      return { kind: 'apply', patch: { ...nodePatch, ...moveTo(target, at, { reason: ev.reason }) } };
  }
}

/** How a node's domain state reads as an instance state (libvirt names and our own). */
export function domainState(s: string): 'running' | 'stopped' | 'pending' | 'gone' {
  const v = s.toLowerCase().replace(/[\s_]+/g, '-');
  if (['running', 'blocked', 'paused', 'idle', 'pmsuspended', 'stopping', 'shutting-down', 'in-shutdown'].includes(v)) return 'running';
  if (['shutoff', 'shut-off', 'shutdown', 'crashed', 'stopped'].includes(v)) return 'stopped';
  if (['terminated', 'undefined', 'gone'].includes(v)) return 'gone';
  return 'pending'; // nostate, pending, building, defining ...
}
