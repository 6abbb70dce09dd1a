import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { KOALA_CONFIG } from '@koala/config';
import type { NodeDomains } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import { CLOCK, every, LOGGER, type Clock, type Periodic } from '@koala/runtime';
import { TagsService } from '../tags/tags.service.js';
import { CLUSTER_GATEWAY, type ClusterGateway } from './cluster-gateway.js';
import type { InstanceEntity } from './instance.entity.js';
import type { InstanceTagsPort, ReconcilerConfig } from './instance-ports.js';
import { InstancesRepository, type InstancesStore } from './instances.repository.js';
import { InstanceLifecycleService } from './instance-lifecycle.service.js';
import { MismatchMemory, planZone, type ReconcileStep } from './reconcile-plan.js';
import { CLC_ROLE, runsBackground, type ClcRole } from '../cluster/clc-role.js';

/**
 * The periodic reconciliation of instances against the domains the nodes report (through the CC
 * of each zone this cloud has instances in): kills domains nobody owns, fails instances whose domain vanished, corrects states
 * whose event was lost, marks instances on down nodes impaired, and forgets terminated
 * instances once they are no longer shown.
 */
@Injectable()
export class InstanceReconcilerService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly memory = new MismatchMemory();
  private loop?: Periodic;

  constructor(
    @Inject(InstancesRepository) private readonly repo: InstancesStore,
    @Inject(KOALA_CONFIG) private readonly config: ReconcilerConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLUSTER_GATEWAY) private readonly cluster: Pick<ClusterGateway, 'domains'>,
    @Inject(InstanceLifecycleService) private readonly lifecycle: Pick<InstanceLifecycleService, 'send' | 'applyEvent' | 'fail'>,
    @Inject(TagsService) private readonly tags: Pick<InstanceTagsPort, 'deleteAllFor'>,
    @Optional() @Inject(CLC_ROLE) private readonly role?: ClcRole,
  ) {}

  onApplicationBootstrap() {
    if (!runsBackground(this.role)) return; // worker 0 runs it
    this.loop = every(this.config.reconcileIntervalMs, () => this.runOnce(), { onError: (err) => this.logger.error({ err }, 'reconciliation failed') });
  }

  async onModuleDestroy() {
    await this.loop?.stop();
  }

  /** One pass over every zone this cloud has launched into, a zone at a time. */
  async runOnce(): Promise<ReconcileStep[]> {
    // Zones this cloud has launched into (rows stay until purged). Not every zone answering on
    // NATS: clouds sharing a NATS server (tests) must never kill each other's domains.
    const all: ReconcileStep[] = [];
    for (const zone of (await this.repo.zones()).sort()) {
      const live = await this.repo.liveIn(zone);
      let nodes: NodeDomains[] | undefined;
      try {
        nodes = await this.cluster.domains(zone);
      } catch (err) {
        this.logger.debug({ err, zone }, 'zone did not answer; judging launches only');
      }
      const now = this.clock.now();
      const steps = planZone(zone, live, nodes, now, { graceMs: this.config.reconcileGraceMs, launchTimeoutMs: this.config.launchTimeoutMs }, this.memory);
      await this.execute(zone, steps, live, now);
      all.push(...steps);
    }
    await this.purge();
    return all;
  }

  private async execute(zone: string, steps: ReconcileStep[], live: InstanceEntity[], now: Date) {
    const seen: string[] = [];
    const byId = new Map(live.map((i) => [i.id, i]));
    for (const s of steps) {
      const inst = byId.get(s.instanceId);
      switch (s.kind) {
        case 'kill-domain':
          this.logger.warn({ zone, node: s.node, instanceId: s.instanceId }, 'terminating a domain no live instance owns');
          await this.lifecycle.send(zone, s.instanceId, s.node, 'terminate');
          break;
        case 'resend':
          this.logger.warn({ zone, node: s.node, instanceId: s.instanceId, action: s.action }, 're-sending a command that had no effect');
          await this.lifecycle.send(zone, s.instanceId, s.node, s.action);
          break;
        case 'observe':
          this.logger.warn({ zone, instanceId: s.instanceId, state: s.state }, 'correcting an instance state from its node (event lost)');
          await this.lifecycle.applyEvent({ instanceId: s.instanceId, node: s.node, state: s.state, guestInitiated: s.guestInitiated, at: now.toISOString() }, { unless: inst });
          break;
        case 'fail':
          await this.lifecycle.fail(s.instanceId, s.reason, { unless: inst });
          break;
        case 'impaired':
          if (inst && inst.impaired !== s.impaired) {
            await this.repo.setImpaired(s.instanceId, s.impaired, now);
            this.logger.warn({ zone, instanceId: s.instanceId, node: inst.node, impaired: s.impaired }, s.impaired ? 'instance impaired: node down' : 'instance reachable again');
          }
          break;
        case 'seen':
          seen.push(s.instanceId);
          break;
      }
    }
    if (seen.length) await this.repo.setLastSeen(seen, now);
  }

  /** Deletes instances terminated longer ago than KOALA_TERMINATED_RETENTION_MS, and emptied reservations. */
  private async purge() {
    const cutoff = new Date(this.clock.now().getTime() - this.config.terminatedRetentionMs);
    await this.repo.transaction(async (tx) => {
      const ids = await this.repo.terminatedBefore(tx, cutoff);
      if (!ids.length) return;
      for (const id of ids) await this.tags.deleteAllFor(id, tx);
      await this.repo.deleteInstances(tx, ids);
      await this.repo.deleteEmptyReservations(tx);
    });
  }
}
