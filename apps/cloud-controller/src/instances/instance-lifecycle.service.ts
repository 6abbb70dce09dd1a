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
 * Applies state changes reported by the zones (events, reconciliation) to instances, one row
 * at a time under a row lock, following the state machine of instance-states.ts.
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
  async applyEvent(event: Pick<InstanceEvent, 'instanceId' | 'node' | 'state' | 'at' | 'reason' | 'guestInitiated'>, opts: { unless?: ChangedSince } = {}): Promise<Decision> {
    const now = this.clock.now();
    const reason = publicReason(event.reason, (ref, detail) => this.logger.warn({ instanceId: event.instanceId, ref, code: detail.code, detail: detail.message }, 'instance failure reported by the node'));
    const ev = { ...event, reason };
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
    const { decision, inst } = result;
    if (decision.kind === 'ignore') {
      if (decision.why !== 'unknown' && decision.why !== 'same') this.logger.debug({ instanceId: ev.instanceId, state: ev.state, why: decision.why }, 'instance event ignored');
    } else {
      this.logger.info({ instanceId: ev.instanceId, from: inst?.state, to: decision.patch.state ?? inst?.state }, 'instance state');
      if (inst && (decision.patch.state === 'terminated' || (decision.patch.node !== undefined && decision.patch.node !== inst.node))) this.publisher.changed([inst.zone]);
      if (decision.then && inst) await this.send(inst.zone, ev.instanceId, inst.node ?? ev.node, decision.then);
      // Running: attach the volumes of its block-device mappings (in the background; the volume
      // sweep retries whatever is not attached yet).
      if (decision.patch.state === 'running') {
        void this.blockDevices.step([ev.instanceId]).catch((err) => this.logger.warn({ err, instanceId: ev.instanceId }, 'block-device mappings not attached yet; the volume sweep retries'));
      }
    }
    return decision;
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
