import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { InstanceEvent, EVENTS_STREAM_SPEC } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import type { EventStream, NatsBus } from '@koala/messaging';
import { BUS, LOGGER } from '@koala/runtime';
import { InstanceLifecycleService } from './instance-lifecycle.service.js';
import { CLC_ROLE, runsBackground, type ClcRole } from '../cluster/clc-role.js';

/** Subjects of instance events (every zone). */
export const INSTANCE_EVENTS_FILTER = 'koala.v1.events.instance.>';

/**
 * Consumes InstanceEvents durably from JetStream (consumer `KOALA_EVENTS_CONSUMER`, default
 * `clc-instances`): a restarted CLC replays what it missed; replicas share the consumer.
 */
@Injectable()
export class InstanceEventsConsumer implements OnApplicationBootstrap, OnModuleDestroy {
  private stream?: EventStream;

  constructor(
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(InstanceLifecycleService) private readonly lifecycle: InstanceLifecycleService,
    @Optional() @Inject(CLC_ROLE) private readonly role?: ClcRole,
  ) {}

  async onApplicationBootstrap() {
    if (!runsBackground(this.role)) return; // worker 0 runs it
    await this.start();
  }

  async start() {
    if (this.stream) return;
    const stream = this.bus.events(EVENTS_STREAM_SPEC);
    await stream.ensure();
    await stream.consume(this.config.eventsConsumer, INSTANCE_EVENTS_FILTER, InstanceEvent, async (ev) => {
      await this.lifecycle.applyEvent(ev);
    });
    this.stream = stream;
    this.logger.info({ consumer: this.config.eventsConsumer }, 'consuming instance events');
  }

  stop() {
    this.stream?.stop();
    this.stream = undefined;
  }

  onModuleDestroy() {
    this.stop();
  }
}
