import type { Resources } from '@koala/contracts';

export interface Reservation {
  instanceId: string;
  node: string;
  need: Resources;
  createdAt: number;
}

/**
 * Capacity promised to instances that their node's heartbeat does not show yet. Heartbeats
 * carry the node's own accounting (the domains it runs); between placement and the first
 * heartbeat that lists the new domain, the CC must not promise the same capacity twice.
 * A reservation ends when a heartbeat lists its instance, when the launch fails or the
 * instance is terminated, or after `ttlMs` (a lost NC must not pin capacity forever).
 */
export class ReservationBook {
  private readonly byInstance = new Map<string, Reservation>();
  /** Sum of the open reservations per node, kept current: a placement reads it per node in O(1). */
  private readonly byNode = new Map<string, Resources>();
  private lastSweep = -Infinity;

  constructor(private readonly ttlMs: number) {}

  add(r: Reservation) {
    this.release(r.instanceId);
    this.byInstance.set(r.instanceId, r);
    const sum = this.byNode.get(r.node) ?? { cores: 0, memoryMiB: 0, diskGiB: 0 };
    sum.cores += r.need.cores;
    sum.memoryMiB += r.need.memoryMiB;
    sum.diskGiB += r.need.diskGiB;
    this.byNode.set(r.node, sum);
  }

  release(instanceId: string): boolean {
    const r = this.byInstance.get(instanceId);
    if (!r) return false;
    this.byInstance.delete(instanceId);
    const sum = this.byNode.get(r.node)!;
    sum.cores -= r.need.cores;
    sum.memoryMiB -= r.need.memoryMiB;
    sum.diskGiB -= r.need.diskGiB;
    if (sum.cores === 0 && sum.memoryMiB === 0 && sum.diskGiB === 0) this.byNode.delete(r.node);
    return true;
  }

  /** Drops reservations the node now accounts for itself (its heartbeat lists the instance). */
  onHeartbeat(node: string, instanceIds: Iterable<string>) {
    for (const id of instanceIds) {
      const r = this.byInstance.get(id);
      if (r && r.node === node) this.release(id);
    }
  }

  /**
   * Resources still reserved on `node`. Expired reservations are dropped by a sweep over all of
   * them at most every ttl/10 (≤ 1 s), so a reservation may outlive its ttl by that much.
   */
  reservedOn(node: string, now: number): Resources {
    this.expire(now);
    const sum = this.byNode.get(node);
    return sum ? { ...sum } : { cores: 0, memoryMiB: 0, diskGiB: 0 };
  }

  private expire(now: number) {
    if (now - this.lastSweep < Math.min(1000, this.ttlMs / 10)) return;
    this.lastSweep = now;
    for (const [id, r] of this.byInstance) if (now - r.createdAt > this.ttlMs) this.release(id);
  }

  get size() {
    return this.byInstance.size;
  }
}
