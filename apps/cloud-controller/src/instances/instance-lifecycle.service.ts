import { Inject, Injectable } from '@nestjs/common';
import { publicReason } from '../clusters/zone-error.js';
import type { InstanceAction, InstanceEvent, StateReason } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import { CLOCK, LOGGER, type Clock } from '@koala/runtime';
import { BlockDevicesService } from '../volumes/block-devices.service.js';
import { NetworkPublisher } from '../network/network-publisher.js';
import { NetworkService } from '../network/network.service.js';
import { CLUSTER_GATEWAY, type ClusterGateway } from './cluster-gateway.js';
import type { InstanceEntity } from './instance.entity.js';
import type { BlockDevicesPort, InstanceNetworkPort, NetworkChangesPort } from './instance-ports.js';
import { InstancesRepository, type InstancesStore } from './instances.repository.js';
import { decideEvent, moveTo, serviceInitiated, type Decision } from './instance-states.js';

/**
 * Applies state changes reported by the zones (events, reconciliation) to instances under row
 * locks, following the state machine of instance-states.ts: one event at a time, or the events
 * of one JetStream pull batch in one transaction.
 */
@Injectable()
export class InstanceLifecycleService {
  constructor(
    @Inject(InstancesRepository) private readonly repo: InstancesStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLUSTER_GATEWAY) private readonly cluster: Pick<ClusterGateway, 'action'>,
    @Inject(BlockDevicesService) private readonly blockDevices: Pick<BlockDevicesPort, 'step'>,
    @Inject(NetworkService) private readonly network: Pick<InstanceNetworkPort, 'release'>,
    @Inject(NetworkPublisher) private readonly publisher: NetworkChangesPort,
  ) {}

  /** An InstanceEvent (from JetStream or synthesized by reconciliation). Returns what was decided. */
  async applyEvent(event: EventFields, opts: { unless?: ChangedSince } = {}): Promise<Decision> {
    const now = this.clock.now();
    const ev = this.withPublicReason(event);
    const result = await this.repo.transaction(async (tx) => {
      const inst = await this.repo.lockOne(tx, ev.instanceId);
      const decision: Decision = inst && opts.unless && changedSince(inst, opts.unless) ? { kind: 'ignore', why: 'stale' } : decideEvent(inst ?? undefined, ev, now);
      if (decision.kind === 'apply') {
        await this.repo.update(tx, [ev.instanceId], decision.patch);
        // Terminated: its addresses are free again in the same transaction.
        if (decision.patch.state === 'terminated') await this.network.release(tx, [ev.instanceId]);
      }
      return { decision, inst };
    });
    await this.afterDecision(ev, result.decision, result.inst);
    return result.decision;
  }

  /**
   * Events of one pull batch, in delivery order, in one transaction: the instances locked at once
   * (id order), each event decided on the state the previous ones left, then one statement for
   * every changed row and one release for the terminated ones. The follow-ups (logs, republish,
   * commands, volumes) run per event afterwards, as applyEvent's, each inside `within` (e.g. the
   * event's correlation id). Returns the decisions in order.
   */
  async applyEvents(events: ReadonlyArray<EventFields>, within: (index: number, work: () => Promise<void>) => Promise<void> = (_n, work) => work()): Promise<Decision[]> {
    if (!events.length) return [];
    const now = this.clock.now();
    const evs = events.map((e) => this.withPublicReason(e));
    const decided = await this.repo.transaction(async (tx) => {
      const rows = new Map((await this.repo.lockByIds(tx, [...new Set(evs.map((e) => e.instanceId))])).map((r) => [r.id, r]));
      const out: Array<{ decision: Decision; inst: InstanceEntity | undefined }> = [];
      const changed = new Set<InstanceEntity>();
      for (const ev of evs) {
        const inst = rows.get(ev.instanceId);
        const before = inst && ({ ...inst } as InstanceEntity); // as it was before this event, for the follow-ups
        const decision = decideEvent(inst, ev, now);
        if (decision.kind === 'apply' && inst) {
          Object.assign(inst, decision.patch);
          changed.add(inst);
        }
        out.push({ decision, inst: before });
      }
      await this.repo.writeStates(tx, [...changed]);
      // Terminated: their addresses are free again in the same transaction.
      await this.network.release(
        tx,
        [...changed].filter((i) => i.state === 'terminated').map((i) => i.id),
      );
      return out;
    });
    for (const [n, ev] of evs.entries()) {
      const { decision, inst } = decided[n]!;
      await within(n, () => this.afterDecision(ev, decision, inst)).catch((err) => this.logger.warn({ err, instanceId: ev.instanceId }, 'follow-up of an instance event failed'));
    }
    return decided.map((d) => d.decision);
  }

  private withPublicReason<E extends EventFields>(event: E): E {
    const reason = publicReason(event.reason, (ref, detail) =>
      this.logger.warn({ instanceId: event.instanceId, ref, code: detail.code, detail: detail.message }, 'instance failure reported by the node'),
    );
    return { ...event, reason };
  }

  /** What follows a decision once committed: log, republish the zone's network, send a command, attach volumes. */
  private async afterDecision(ev: EventFields, decision: Decision, inst: InstanceEntity | undefined): Promise<void> {
    if (decision.kind === 'ignore') {
      if (decision.why !== 'unknown' && decision.why !== 'same') this.logger.debug({ instanceId: ev.instanceId, state: ev.state, why: decision.why }, 'instance event ignored');
      return;
    }
    this.logger.info({ instanceId: ev.instanceId, from: inst?.state, to: decision.patch.state ?? inst?.state }, 'instance state');
    if (inst && (decision.patch.state === 'terminated' || (decision.patch.node !== undefined && decision.patch.node !== inst.node))) this.publisher.changed([inst.zone]);
    if (decision.then && inst) await this.send(inst.zone, ev.instanceId, inst.node ?? ev.node, decision.then);
    // Running: attach the volumes of its block-device mappings (in the background; the volume
    // sweep retries whatever is not attached yet).
    if (decision.patch.state === 'running') {
      void this.blockDevices.step([ev.instanceId]).catch((err) => this.logger.warn({ err, instanceId: ev.instanceId }, 'block-device mappings not attached yet; the volume sweep retries'));
    }
  }

  /** Terminated for good (`reason`, e.g. Server.InternalError): the instance is gone from its node. */
  async fail(instanceId: string, reason: StateReason, opts: { unless?: ChangedSince } = {}): Promise<boolean> {
    const now = this.clock.now();
    const zone = await this.repo.transaction(async (tx) => {
      const inst = await this.repo.lockOne(tx, instanceId);
      if (!inst || inst.state === 'terminated') return undefined;
      if (opts.unless && changedSince(inst, opts.unless)) return undefined;
      await this.repo.update(tx, [instanceId], moveTo('terminated', now, { reason, transitionReason: serviceInitiated(now), now }));
      await this.network.release(tx, [instanceId]);
      this.logger.warn({ instanceId, from: inst.state, reason: reason.code }, 'instance failed');
      return inst.zone;
    });
    if (zone === undefined) return false;
    this.publisher.changed([zone]);
    return true;
  }

  /** Sends a command to an instance's node through its zone's CC; failures are logged (reconciliation re-sends). */
  async send(zone: string, instanceId: string, node: string, action: InstanceAction, force?: boolean): Promise<boolean> {
    try {
      await this.cluster.action(zone, { instanceId, node, action, force });
      return true;
    } catch (err) {
      this.logger.warn({ err, zone, instanceId, node, action }, 'instance command not delivered; reconciliation will retry');
      return false;
    }
  }
}

/** What an instance event carries that its application reads. */
type EventFields = Pick<InstanceEvent, 'instanceId' | 'node' | 'state' | 'at' | 'reason' | 'guestInitiated'>;

/**
 * The state a decision was based on. Reconciliation judges from a snapshot of the instances
 * taken before it asked the nodes; an event applied meanwhile (a stop that just completed) must
 * win over a correction computed from the older snapshot.
 */
export interface ChangedSince {
  state: InstanceEntity['state'];
  stateChangedAt: Date;
}

function changedSince(inst: InstanceEntity, seen: ChangedSince): boolean {
  return inst.state !== seen.state || inst.stateChangedAt.getTime() !== seen.stateChangedAt.getTime();
}
