import { EVENTS_STREAM, EventSubjects, InstanceEvent } from '@koala/contracts';
import type { NatsBus, EventStream } from '@koala/messaging';

/** Where instance state changes go (JetStream in production, an array in unit tests). */
export interface InstanceEventSink {
  ensure(): Promise<void>;
  publish(event: InstanceEvent): Promise<void>;
}
export const INSTANCE_EVENTS = Symbol('INSTANCE_EVENTS');

export const EVENTS_MAX_AGE_MS = 24 * 3600 * 1000;

/** Durable events on the JetStream stream KOALA_EVENTS (subject koala.v1.events.instance.<zone>). */
export class JetStreamInstanceEvents implements InstanceEventSink {
  private readonly stream: EventStream;

  constructor(bus: NatsBus) {
    this.stream = bus.events({ name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: EVENTS_MAX_AGE_MS });
  }

  ensure(): Promise<void> {
    return this.stream.ensure();
  }

  publish(event: InstanceEvent): Promise<void> {
    return this.stream.publish(EventSubjects.instance(event.zone), InstanceEvent, event);
  }
}
