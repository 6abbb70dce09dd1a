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

  constructor(private readonly ttlMs: number) {}

  add(r: Reservation) {
    this.byInstance.set(r.instanceId, r);
  }

  release(instanceId: string): boolean {
    return this.byInstance.delete(instanceId);
  }

  /** Drops reservations the node now accounts for itself (its heartbeat lists the instance). */
  onHeartbeat(node: string, instanceIds: Iterable<string>) {
    for (const id of instanceIds) {
      const r = this.byInstance.get(id);
      if (r && r.node === node) this.byInstance.delete(id);
    }
  }

  /** Resources still reserved on `node` (expired reservations are dropped first). */
  reservedOn(node: string, now: number): Resources {
    const sum = { cores: 0, memoryMiB: 0, diskGiB: 0 };
    for (const [id, r] of this.byInstance) {
      if (now - r.createdAt > this.ttlMs) {
        this.byInstance.delete(id);
        continue;
      }
      if (r.node !== node) continue;
      sum.cores += r.need.cores;
      sum.memoryMiB += r.need.memoryMiB;
      sum.diskGiB += r.need.diskGiB;
    }
    return sum;
  }

  get size() {
    return this.byInstance.size;
  }
}
