import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import {
  consoleOutput,
  EventSubjects,
  InstanceEvent,
  instanceAction,
  nodeConsoleOutput,
  nodeInstanceAction,
  placeInstances,
  QueueGroups,
  runInstance,
  type InstanceSpec,
  EVENTS_STREAM_SPEC,
} from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { codedError, type EventStream, type NatsBus } from '@koala/messaging';
import { BUS, CLOCK, LOGGER, type Clock } from '@koala/runtime';
import { nodeErrors } from '../node-errors.js';
import { SchedulerService } from '../scheduler/scheduler.service.js';

/**
 * The CC's side of the instance contract (libs/contracts/src/instances.ts): places launches,
 * sends each placed instance to its NC, and routes actions and console requests to the node
 * that runs the instance.
 */
@Injectable()
export class LaunchService implements OnModuleInit {
  private events!: EventStream;

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly scheduler: SchedulerService,
  ) {}

  async onModuleInit() {
    const zone = this.config.zone;
    const queue = QueueGroups.cluster(zone);
    this.events = this.bus.events(EVENTS_STREAM_SPEC);
    await this.events.ensure();

    this.bus.handle(placeInstances(zone), (req) => this.place(req.reservationId, req.instances, req.minCount), { queue });
    this.bus.handle(instanceAction(zone), (req) => this.bus.request(nodeInstanceAction(zone, req.node), req, { timeoutMs: 10_000 }).catch(nodeErrors(req.node)), { queue });
    this.bus.handle(consoleOutput(zone), (req) => this.bus.request(nodeConsoleOutput(zone, req.node), req, { timeoutMs: 10_000 }).catch(nodeErrors(req.node)), { queue });

    // Every CC replica of the zone watches outcomes to free reservations early.
    this.bus.subscribe(EventSubjects.instance(zone), InstanceEvent, (ev) => {
      if (ev.state === 'failed' || ev.state === 'terminated') this.scheduler.release(ev.instanceId);
    });
  }

  async place(reservationId: string, instances: InstanceSpec[], minCount: number) {
    const resources = instances[0].resources;
    if (instances.some((i) => JSON.stringify(i.resources) !== JSON.stringify(resources))) throw codedError('InvalidParameterValue', 'all instances of one launch must have the same resources');
    if (minCount > instances.length) throw codedError('InvalidParameterValue', `MinCount ${minCount} exceeds the ${instances.length} instances given`);

    const placements = await this.scheduler.reserve(
      instances.map((i) => i.instanceId),
      resources,
      minCount,
    );
    if (!placements.length) {
      throw codedError('InsufficientInstanceCapacity', `There is not enough capacity in zone ${this.config.zone} to launch ${minCount} instance(s) of ${instances[0].instanceType}.`);
    }
    this.logger.info({ reservationId, placements, policy: this.scheduler.policy }, 'placed');
    const byId = new Map(instances.map((i) => [i.instanceId, i]));
    // Answer the CLC first; deliveries go on in the background and report through events.
    setImmediate(() => {
      for (const p of placements) void this.dispatch(byId.get(p.instanceId)!, p.node);
    });
    return { placements };
  }

  private async dispatch(spec: InstanceSpec, node: string) {
    try {
      await this.bus.request(runInstance(this.config.zone, node), spec, { timeoutMs: 15_000 });
    } catch (err) {
      this.logger.error({ err, instanceId: spec.instanceId, node }, 'run-instance not delivered');
      this.scheduler.release(spec.instanceId);
      await this.events
        .publish(EventSubjects.instance(this.config.zone), InstanceEvent, {
          instanceId: spec.instanceId,
          zone: this.config.zone,
          node,
          state: 'failed',
          reason: { code: 'Server.InternalError', message: `node ${node} did not accept the instance: ${(err as Error).message}` },
          at: this.clock.now().toISOString(),
        })
        .catch((e) => this.logger.error({ err: e }, 'could not publish failure event'));
    }
  }
}
