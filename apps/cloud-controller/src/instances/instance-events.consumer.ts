import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { InstanceEvent, EVENTS_STREAM_SPEC } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { withCorrelationId, type Logger } from '@koala/logging';
import type { BatchedEvent, EventStream, NatsBus } from '@koala/messaging';
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
    // The events that arrived while the last batch was applied go in one transaction (an event
    // a transaction each kept the CLC behind the nodes at hundreds of launches).
    await stream.consumeBatches(this.config.eventsConsumer, INSTANCE_EVENTS_FILTER, InstanceEvent, (batch) => this.apply(batch));
    this.stream = stream;
    this.logger.info({ consumer: this.config.eventsConsumer }, 'consuming instance events');
  }

  /** A batch in one transaction; should that fail, one event at a time (one bad event must not hold back the others). */
  async apply(batch: ReadonlyArray<BatchedEvent<InstanceEvent>>): Promise<void> {
    try {
      await this.lifecycle.applyEvents(
        batch.map((b) => b.event),
        (n, work) => withCorrelationId(batch[n]!.correlationId, work),
      );
      return;
    } catch (err) {
      this.logger.warn({ err, events: batch.length }, 'event batch not applied; applying its events one at a time');
    }
    let failed: unknown;
    for (const b of batch) {
      await withCorrelationId(b.correlationId, () => this.lifecycle.applyEvent(b.event)).catch((err) => (failed ??= err));
    }
    if (failed) throw failed; // the batch is redelivered; what was applied is ignored then ('same' or stale)
  }

  stop() {
    this.stream?.stop();
    this.stream = undefined;
  }

  onModuleDestroy() {
    this.stop();
  }
}
