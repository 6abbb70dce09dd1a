import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { InstanceResources } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { metrics } from '@koala/metrics';
import { CLOCK, type Clock } from '@koala/runtime';
import { RegistryService } from '../registry/registry.service.js';
import { AsyncMutex } from './async-mutex.js';
import { demandOf, place, subtract, type NodeCapacity, type PlacementPolicy } from './placement.js';
import { ReservationBook } from './reservation-book.js';

/** A reservation not confirmed by a heartbeat within this time is dropped. */
const RESERVATION_TTL_MS = 10 * 60_000;

const decisions = metrics.counter({
  name: 'koala_scheduler_decisions_total',
  help: 'Placement decisions of a CC by zone, policy and result (placed: at least MinCount placed; insufficient: none reserved).',
  labelNames: ['zone', 'policy', 'result'],
});
const placedInstances = metrics.counter({ name: 'koala_scheduler_placed_instances_total', help: 'Instances a CC placed, by zone.', labelNames: ['zone'] });
const decisionSeconds = metrics.histogram({
  name: 'koala_scheduler_decision_duration_seconds',
  help: 'Time of a placement decision including the wait for the scheduler lock, by zone, in seconds.',
  labelNames: ['zone'],
});
const nodeCapacity = metrics.gauge({
  name: 'koala_node_capacity',
  help: 'Node capacity as the CC schedules it: total, free (heartbeat free minus open reservations) and used, by zone, node and resource (cores, memory_mib, disk_gib).',
  labelNames: ['zone', 'node', 'resource', 'kind'],
});
const nodesByState = metrics.gauge({ name: 'koala_nodes', help: 'Nodes a CC knows, by zone and state (up, down).', labelNames: ['zone', 'state'] });

/**
 * Placement under one lock: capacity = each up node's heartbeat `free` minus open reservations;
 * the policy picks nodes; the chosen capacity is reserved before the lock is released, so two
 * concurrent launches never get the same capacity.
 */
@Injectable()
export class SchedulerService implements OnModuleInit, OnModuleDestroy {
  private removeCollector?: () => void;
  private readonly zone: string;
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
    this.zone = config.zone;
  }

  onModuleInit() {
    this.registry.onHeartbeat((hb) =>
      this.reservations.onHeartbeat(
        hb.node,
        hb.domains.flatMap((d) => (d.instanceId ? [d.instanceId] : [])),
      ),
    );
    this.removeCollector = metrics.addCollector(() => this.collect());
  }

  onModuleDestroy() {
    this.removeCollector?.();
  }

  /** Refreshes this zone's capacity and node gauges (at scrape time). */
  private collect() {
    const now = this.clock.now();
    const nodes = this.registry.registry.list(now);
    const free = new Map(this.capacity().map((c) => [c.node, c.free]));
    for (const state of ['up', 'down']) nodesByState.set({ zone: this.zone, state }, nodes.filter((n) => n.state === state).length);
    for (const n of nodes) {
      const f = free.get(n.node) ?? { cores: 0, memoryMiB: 0, diskGiB: 0 };
      for (const [resource, key] of [
        ['cores', 'cores'],
        ['memory_mib', 'memoryMiB'],
        ['disk_gib', 'diskGiB'],
      ] as const) {
        nodeCapacity.set({ zone: this.zone, node: n.node, resource, kind: 'total' }, n.total[key]);
        nodeCapacity.set({ zone: this.zone, node: n.node, resource, kind: 'free' }, f[key]);
        nodeCapacity.set({ zone: this.zone, node: n.node, resource, kind: 'used' }, n.total[key] - f[key]);
      }
    }
  }

  /** Capacity the scheduler would offer now, per up node (sorted by node name). */
  capacity(): NodeCapacity[] {
    const now = this.clock.now();
    return this.registry.registry.upFree(now).map((n) => {
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
    const timer = decisionSeconds.startTimer({ zone: this.zone });
    return this.mutex.run(() => {
      const need = demandOf(resources);
      const result = place(this.capacity(), need, instanceIds.length, this.policy, this.cursor);
      timer();
      const placed = result.nodes.length >= minCount;
      decisions.inc({ zone: this.zone, policy: this.policy, result: placed ? 'placed' : 'insufficient' });
      if (!placed) return [];
      placedInstances.inc({ zone: this.zone }, result.nodes.length);
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
