import { EventSubjects, StorageEvent, EVENTS_STREAM_SPEC } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import type { EventStream, NatsBus } from '@koala/messaging';
import { metrics } from '@koala/metrics';
import type { Clock } from '@koala/runtime';

const storageEvents = metrics.counter({
  name: 'koala_storage_events_total',
  help: 'Volume and snapshot state changes an SC reported, by zone, kind and state (e.g. volume available, volume error).',
  labelNames: ['zone', 'kind', 'state'],
});

export type StorageEventBody = Omit<StorageEvent, 'zone' | 'at'>;

/** Where the SC reports volume and snapshot state changes (behind an interface for fakes). */
export interface StorageEventSink {
  ensure(): Promise<void>;
  publish(event: StorageEventBody): Promise<void>;
}

/** Durable events on KOALA_EVENTS, subject `koala.v1.events.volume.<zone>`. */
export class JetStreamStorageEvents implements StorageEventSink {
  private readonly stream: EventStream;

  constructor(
    bus: NatsBus,
    private readonly zone: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.stream = bus.events(EVENTS_STREAM_SPEC);
  }

  ensure() {
    return this.stream.ensure();
  }

  /** Retries for a while (NATS restarting); an event that still cannot be stored is logged. */
  async publish(event: StorageEventBody): Promise<void> {
    const payload = { ...event, zone: this.zone, at: this.clock.now().toISOString() };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.stream.publish(EventSubjects.volume(this.zone), StorageEvent, payload);
        storageEvents.inc({ zone: this.zone, kind: event.kind, state: event.state });
        return;
      } catch (err) {
        if (attempt >= 10) {
          this.logger.error({ err, event: payload }, 'storage event lost');
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
      }
    }
  }
}

export const STORAGE_EVENTS = Symbol('STORAGE_EVENTS');
