import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { InstanceResources } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { CLOCK, type Clock } from '@koala/runtime';
import { RegistryService } from '../registry/registry.service.js';
import { AsyncMutex } from './async-mutex.js';
import { demandOf, place, subtract, type NodeCapacity, type PlacementPolicy } from './placement.js';
import { ReservationBook } from './reservation-book.js';

/** A reservation not confirmed by a heartbeat within this time is dropped. */
const RESERVATION_TTL_MS = 10 * 60_000;

/**
 * Placement under one lock: capacity = each up node's heartbeat `free` minus open reservations;
 * the policy picks nodes; the chosen capacity is reserved before the lock is released, so two
 * concurrent launches never get the same capacity.
 */
@Injectable()
export class SchedulerService implements OnModuleInit {
  private readonly mutex = new AsyncMutex();
  readonly reservations = new ReservationBook(RESERVATION_TTL_MS);
  private cursor?: string;
  readonly policy: PlacementPolicy;

  constructor(
    @Inject(KOALA_CONFIG) config: KoalaConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly registry: RegistryService,
  ) {
    this.policy = config.schedulerPolicy;
  }

  onModuleInit() {
    this.registry.onHeartbeat((hb) => this.reservations.onHeartbeat(hb.node, hb.domains.flatMap((d) => (d.instanceId ? [d.instanceId] : []))));
  }

  /** Capacity the scheduler would offer now, per up node (sorted by node name). */
  capacity(): NodeCapacity[] {
    const now = this.clock.now();
    return this.registry.registry
      .list(now)
      .filter((n) => n.state === 'up')
      .map((n) => {
        const reserved = this.reservations.reservedOn(n.node, now.getTime());
        const free = subtract(n.free, reserved);
        return { node: n.node, free: { cores: Math.max(0, free.cores), memoryMiB: Math.max(0, free.memoryMiB), diskGiB: Math.max(0, free.diskGiB) } };
      });
  }

  /**
   * Reserves capacity for up to `instanceIds.length` instances of `resources`; returns the node
   * per placed instance (in order). Fewer than `minCount` placed -> nothing reserved, [] returned.
   */
  reserve(instanceIds: string[], resources: InstanceResources, minCount: number): Promise<{ instanceId: string; node: string }[]> {
    return this.mutex.run(() => {
      const need = demandOf(resources);
      const result = place(this.capacity(), need, instanceIds.length, this.policy, this.cursor);
      if (result.nodes.length < minCount) return [];
      this.cursor = result.cursor;
      const now = this.clock.now().getTime();
      return result.nodes.map((node, i) => {
        this.reservations.add({ instanceId: instanceIds[i], node, need, createdAt: now });
        return { instanceId: instanceIds[i], node };
      });
    });
  }

  release(instanceId: string) {
    this.reservations.release(instanceId);
  }
}
