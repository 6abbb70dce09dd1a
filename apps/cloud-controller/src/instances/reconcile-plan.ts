/**
 * Reconciliation, pure: compares what the CLC believes (instances of a zone) with what the
 * zone's nodes report (domains per node) and says what to do. The clock and the memory of
 * "first seen" times come from the caller, so a mismatch must last `graceMs` before anything
 * is done (events are usually just late).
 */
import type { DomainReport, InstanceAction, NodeDomains } from '@koala/contracts';
import { isValidId } from '@koala/ec2-query';
import { domainState, REASONS, type InstanceSnapshot } from './instance-states.js';

export interface ReconcileTimings {
  /** How long a mismatch must last before it is acted upon. */
  graceMs: number;
  /** How long a launch may stay pending without a domain before it is failed. */
  launchTimeoutMs: number;
}

export type ReconcileStep =
  /** A domain the CLC does not know (or whose instance is terminated): send `terminate`. */
  | { kind: 'kill-domain'; instanceId: string; node: string }
  /** Re-send a command whose effect never showed (stop/terminate/start lost). */
  | { kind: 'resend'; instanceId: string; node: string; action: InstanceAction }
  /** Apply what the node shows, as if the lost event had arrived. */
  | { kind: 'observe'; instanceId: string; node: string; state: 'running' | 'stopped' | 'terminated'; guestInitiated?: boolean }
  /** The instance is gone for good: terminated with Server.InternalError. */
  | { kind: 'fail'; instanceId: string; reason: { code: string; message: string } }
  | { kind: 'impaired'; instanceId: string; impaired: boolean }
  | { kind: 'seen'; instanceId: string };

/** Remembers when each mismatch was first noticed (one per CLC process). */
export class MismatchMemory {
  private readonly since = new Map<string, number>();
  private touched = new Set<string>();

  /** True once `key` has been noticed continuously for at least `ms`. */
  lasted(key: string, now: Date, ms: number): boolean {
    this.touched.add(key);
    const t = this.since.get(key);
    if (t === undefined) {
      this.since.set(key, now.getTime());
      return ms <= 0;
    }
    return now.getTime() - t >= ms;
  }

  /** Starts the clock of `key` again (after acting on it). */
  reset(key: string, now: Date) {
    this.since.set(key, now.getTime());
  }

  /** Forgets the mismatches of `scope` that were not noticed since the last sweep. */
  sweep(scope: string) {
    for (const k of this.since.keys()) if (k.startsWith(scope) && !this.touched.has(k)) this.since.delete(k);
    this.touched = new Set([...this.touched].filter((k) => !k.startsWith(scope)));
  }
}

const domainInstanceId = (d: { name: string; instanceId?: string }) => d.instanceId ?? (isValidId('i', d.name) ? d.name : undefined);

/**
 * Steps for one zone. `live`: the zone's non-terminated instances; `nodes`: every node of the
 * zone with its domains, or undefined when the CC did not answer (then only launches without a
 * node are judged).
 */
export function planZone(zone: string, live: readonly InstanceSnapshot[], nodes: readonly NodeDomains[] | undefined, now: Date, t: ReconcileTimings, memory: MismatchMemory): ReconcileStep[] {
  const steps: ReconcileStep[] = [];
  const age = (i: InstanceSnapshot) => now.getTime() - i.stateChangedAt.getTime();
  const key = (...parts: string[]) => `${zone}/${parts.join('/')}`;

  for (const i of live) {
    if (i.node === null && i.state === 'pending' && age(i) >= t.launchTimeoutMs) steps.push({ kind: 'fail', instanceId: i.id, reason: REASONS.internalError });
  }
  if (!nodes) {
    memory.sweep(`${zone}/`);
    return steps;
  }

  const byId = new Map(live.map((i) => [i.id, i]));
  const nodeByName = new Map(nodes.map((n) => [n.node, n]));
  const domainOf = new Map<string, DomainReport>(); // `${node}/${instance}`

  // Domains nobody should be running.
  for (const n of nodes) {
    if (n.state !== 'up') continue;
    for (const d of n.domains) {
      const id = domainInstanceId(d);
      if (id && !domainOf.has(`${n.node}/${id}`)) domainOf.set(`${n.node}/${id}`, d);
      if (!id || domainState(d.state) === 'gone') continue;
      const inst = byId.get(id);
      if (inst && (inst.node === n.node || inst.node === null)) continue;
      const k = key('unknown', n.node, id);
      if (memory.lasted(k, now, t.graceMs)) {
        steps.push({ kind: 'kill-domain', instanceId: id, node: n.node });
        memory.reset(k, now);
      }
    }
  }

  // Instances against their node's report.
  for (const i of live) {
    if (i.node === null) continue;
    const n = nodeByName.get(i.node);
    const up = n?.state === 'up';
    steps.push({ kind: 'impaired', instanceId: i.id, impaired: !up });
    if (!up || !n) continue;
    const d = domainOf.get(`${n.node}/${i.id}`);
    const ds = d ? domainState(d.state) : 'gone';
    if (ds !== 'gone') steps.push({ kind: 'seen', instanceId: i.id });
    const settled = age(i) >= t.graceMs;
    const mismatch = (what: string) => settled && memory.lasted(key(what, i.id), now, t.graceMs);

    if (ds === 'gone') {
      if (i.state === 'shutting-down' && mismatch('gone')) steps.push({ kind: 'observe', instanceId: i.id, node: i.node, state: 'terminated' });
      else if ((i.state === 'running' || i.state === 'stopping') && mismatch('gone')) steps.push({ kind: 'fail', instanceId: i.id, reason: REASONS.internalError });
      else if (i.state === 'pending' && age(i) >= t.launchTimeoutMs && memory.lasted(key('gone', i.id), now, t.graceMs)) steps.push({ kind: 'fail', instanceId: i.id, reason: REASONS.internalError });
      // stopped: a stopped instance's domain may legitimately be undefined by its node; left alone.
      continue;
    }
    switch (i.state) {
      case 'pending':
        if (ds === 'running' && mismatch('state')) steps.push({ kind: 'observe', instanceId: i.id, node: i.node, state: 'running' });
        else if (ds === 'stopped' && mismatch('state')) steps.push({ kind: 'resend', instanceId: i.id, node: i.node, action: 'start' });
        break;
      case 'running':
        if (ds === 'stopped' && mismatch('state')) steps.push({ kind: 'observe', instanceId: i.id, node: i.node, state: 'stopped', guestInitiated: true });
        break;
      case 'stopping':
        if (ds === 'stopped' && mismatch('state')) steps.push({ kind: 'observe', instanceId: i.id, node: i.node, state: 'stopped' });
        else if (ds !== 'stopped' && mismatch('state')) steps.push({ kind: 'resend', instanceId: i.id, node: i.node, action: 'stop' });
        break;
      case 'stopped':
        if (ds === 'running' && mismatch('state')) steps.push({ kind: 'observe', instanceId: i.id, node: i.node, state: 'running' });
        break;
      case 'shutting-down':
        if (mismatch('state')) steps.push({ kind: 'resend', instanceId: i.id, node: i.node, action: 'terminate' });
        break;
    }
    if (steps.at(-1)?.kind === 'resend') memory.reset(key('state', i.id), now);
  }
  memory.sweep(`${zone}/`);
  return steps;
}
