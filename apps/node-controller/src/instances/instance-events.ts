import { EventSubjects, InstanceEvent, EVENTS_STREAM_SPEC } from '@koala/contracts';
import type { NatsBus, EventStream } from '@koala/messaging';

/** Where instance state changes go (JetStream in production, an array in unit tests). */
export interface InstanceEventSink {
  ensure(): Promise<void>;
  publish(event: InstanceEvent): Promise<void>;
}
export const INSTANCE_EVENTS = Symbol('INSTANCE_EVENTS');

/** Durable events on the JetStream stream KOALA_EVENTS (subject koala.v1.events.instance.<zone>). */
export class JetStreamInstanceEvents implements InstanceEventSink {
  private readonly stream: EventStream;

  constructor(bus: NatsBus) {
    this.stream = bus.events(EVENTS_STREAM_SPEC);
  }

  ensure(): Promise<void> {
    return this.stream.ensure();
  }

  publish(event: InstanceEvent): Promise<void> {
    return this.stream.publish(EventSubjects.instance(event.zone), InstanceEvent, event);
  }
}
