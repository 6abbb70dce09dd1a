/** Snapshot state machine (pure): what a StorageEvent from the SC does to a snapshot row. */
import type { StorageEvent } from '@koala/contracts';
import type { SnapshotEntity } from './snapshot.entity.js';

export type SnapshotDecision = { kind: 'apply'; patch: Partial<SnapshotEntity> } | { kind: 'ignore'; why: string };

/**
 * pending → pending (progress only grows), pending → completed (100%), pending → error.
 * Completed and error are final; events of other zones or unknown snapshots are ignored.
 */
export function decideSnapshotEvent(s: Pick<SnapshotEntity, 'state' | 'progress' | 'zone'> | undefined, ev: Pick<StorageEvent, 'state' | 'progress' | 'zone' | 'reason'>): SnapshotDecision {
  if (!s) return { kind: 'ignore', why: 'unknown' };
  if (s.zone !== ev.zone) return { kind: 'ignore', why: 'other-zone' };
  if (s.state !== 'pending') return { kind: 'ignore', why: `final ${s.state}` };
  switch (ev.state) {
    case 'pending': {
      const p = Math.min(99, ev.progress ?? 0);
      return p > s.progress ? { kind: 'apply', patch: { progress: p } } : { kind: 'ignore', why: 'no progress' };
    }
    case 'completed':
      return { kind: 'apply', patch: { state: 'completed', progress: 100, stateReasonCode: null, stateReasonMessage: null } };
    case 'error': {
      const r = ev.reason ?? { code: 'Server.InternalError', message: 'the snapshot could not be taken' };
      return { kind: 'apply', patch: { state: 'error', stateReasonCode: r.code, stateReasonMessage: r.message.slice(0, 512) } };
    }
    default:
      return { kind: 'ignore', why: `not a snapshot state: ${ev.state}` };
  }
}
