import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { NodeDomains } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import { CLOCK, every, LOGGER, type Clock, type Periodic } from '@koala/runtime';
import { DataSource, In, LessThan, Not } from 'typeorm';
import { TagsService } from '../tags/tags.service.js';
import { CLUSTER_GATEWAY, type ClusterGateway } from './cluster-gateway.js';
import { InstanceEntity } from './instance.entity.js';
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
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLUSTER_GATEWAY) private readonly cluster: ClusterGateway,
    @Inject(InstanceLifecycleService) private readonly lifecycle: InstanceLifecycleService,
    @Inject(TagsService) private readonly tags: TagsService,
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
    const rows: Array<{ zone: string }> = await this.ds.query('SELECT DISTINCT zone FROM instances');
    const all: ReconcileStep[] = [];
    for (const zone of rows.map((r) => r.zone).sort()) {
      const live = await this.ds.getRepository(InstanceEntity).find({ where: { zone, state: Not('terminated') } });
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
    const repo = this.ds.getRepository(InstanceEntity);
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
            await repo.update({ id: s.instanceId, state: Not('terminated') }, { impaired: s.impaired, impairedSince: s.impaired ? now : null });
            this.logger.warn({ zone, instanceId: s.instanceId, node: inst.node, impaired: s.impaired }, s.impaired ? 'instance impaired: node down' : 'instance reachable again');
          }
          break;
        case 'seen':
          seen.push(s.instanceId);
          break;
      }
    }
    if (seen.length) await repo.update({ id: In(seen) }, { lastSeenAt: now });
  }

  /** Deletes instances terminated longer ago than KOALA_TERMINATED_RETENTION_MS, and emptied reservations. */
  private async purge() {
    const cutoff = new Date(this.clock.now().getTime() - this.config.terminatedRetentionMs);
    await this.ds.transaction(async (em) => {
      const old = await em.getRepository(InstanceEntity).find({ where: { state: 'terminated', terminatedAt: LessThan(cutoff) }, select: { id: true } });
      if (!old.length) return;
      const ids = old.map((o) => o.id);
      for (const id of ids) await this.tags.deleteAllFor(id, em);
      await em.getRepository(InstanceEntity).delete({ id: In(ids) });
      await em.query('DELETE FROM reservations r WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.reservation_id = r.id)');
    });
  }
}
