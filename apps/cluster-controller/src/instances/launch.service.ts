import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import {
  consoleOutput,
  EVENTS_STREAM,
  EventSubjects,
  InstanceEvent,
  instanceAction,
  nodeConsoleOutput,
  nodeInstanceAction,
  placeInstances,
  QueueGroups,
  runInstance,
  type InstanceSpec,
} from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { BusRemoteError, type EventStream, type NatsBus } from '@koala/messaging';
import { BUS, CLOCK, LOGGER, type Clock } from '@koala/runtime';
import { SchedulerService } from '../scheduler/scheduler.service.js';

const codeError = (code: string, message: string) => Object.assign(new Error(message), { code });

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
    this.events = this.bus.events({ name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: 24 * 3600_000 });
    await this.events.ensure();

    this.bus.handle(placeInstances(zone), (req) => this.place(req.reservationId, req.instances, req.minCount), { queue });
    this.bus.handle(instanceAction(zone), (req) => this.bus.request(nodeInstanceAction(zone, req.node), req, { timeoutMs: 10_000 }).catch(this.unavailable(req.node)), { queue });
    this.bus.handle(consoleOutput(zone), (req) => this.bus.request(nodeConsoleOutput(zone, req.node), req, { timeoutMs: 10_000 }).catch(this.unavailable(req.node)), { queue });

    // Every CC replica of the zone watches outcomes to free reservations early.
    this.bus.subscribe(EventSubjects.instance(zone), InstanceEvent, (ev) => {
      if (ev.state === 'failed' || ev.state === 'terminated') this.scheduler.release(ev.instanceId);
    });
  }

  private unavailable(node: string) {
    return (e: unknown): never => {
      if (e instanceof BusRemoteError) throw codeError(e.code, e.message);
      throw codeError('Unavailable', `node ${node} does not answer: ${(e as Error).message}`);
    };
  }

  async place(reservationId: string, instances: InstanceSpec[], minCount: number) {
    const resources = instances[0].resources;
    if (instances.some((i) => JSON.stringify(i.resources) !== JSON.stringify(resources))) throw codeError('InvalidParameterValue', 'all instances of one launch must have the same resources');
    if (minCount > instances.length) throw codeError('InvalidParameterValue', `MinCount ${minCount} exceeds the ${instances.length} instances given`);

    const placements = await this.scheduler.reserve(
      instances.map((i) => i.instanceId),
      resources,
      minCount,
    );
    if (!placements.length) {
      throw codeError('InsufficientInstanceCapacity', `There is not enough capacity in zone ${this.config.zone} to launch ${minCount} instance(s) of ${instances[0].instanceType}.`);
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
