/**
 * Durable events over JetStream: state changes that must not be lost when a consumer is down
 * (an NC's "instance running" while the CLC restarts). Producers publish with an ack from the
 * server; consumers use a durable pull consumer and ack after handling, so a restarted
 * consumer replays what it missed and a failed handler gets the message again.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';
import { CORRELATION_HEADER, currentCorrelationId, withCorrelationId, type Logger } from '@koala/logging';

export interface StreamSpec {
  name: string;
  subjects: readonly string[];
  /** How long events are kept (ms); consumers offline longer than this lose them (heartbeats reconcile). */
  maxAgeMs: number;
}

/** An event of a batch (consumeBatches) with the correlation id it was published under. */
export interface BatchedEvent<T> {
  event: T;
  correlationId?: string;
}

export class EventStream {
  private js?: JetStreamClient;
  private readonly stopped = new Set<() => void>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly spec: StreamSpec,
    private readonly logger?: Logger,
  ) {}

  /** Creates the stream, or updates its subjects/retention when they differ; safe to call from every component. */
  async ensure(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    const config = { name: this.spec.name, subjects: [...this.spec.subjects], max_age: this.spec.maxAgeMs * 1_000_000 };
    try {
      const { config: current } = await jsm.streams.info(this.spec.name);
      // Only a stream that differs is updated: on a server with permissions only the CLC may.
      const same = current.max_age === config.max_age && JSON.stringify([...(current.subjects ?? [])].sort()) === JSON.stringify([...config.subjects].sort());
      if (!same) await jsm.streams.update(this.spec.name, config);
    } catch (e) {
      if (!/not found/i.test(String((e as Error).message))) throw e;
      await jsm.streams.add(config).catch(async (err) => {
        // Another component created it in between.
        if (!/already in use|exists/i.test(String(err.message))) throw err;
      });
    }
    this.js = jetstream(this.nc);
  }

  /** Publishes a validated event and waits for the server to store it. */
  async publish<S extends z.ZodType>(subject: string, schema: S, payload: z.input<S>): Promise<void> {
    if (!this.js) await this.ensure();
    const h = natsHeaders();
    const id = currentCorrelationId();
    if (id) h.set(CORRELATION_HEADER, id);
    await this.js!.publish(subject, JSON.stringify(schema.parse(payload)), { headers: h });
  }

  /**
   * Consumes events with a durable consumer named `durable` (one per consuming role: replicas
   * of the same role share it, so each event is handled once per role). Invalid payloads are
   * logged and acked (they would never become valid); a throwing handler's event is redelivered.
   */
  async consume<S extends z.ZodType>(durable: string, filterSubject: string, schema: S, handler: (event: z.output<S>) => Promise<void> | void, opts: { from?: 'new' | 'all' } = {}): Promise<void> {
    const messages = await this.messages(durable, filterSubject, opts);
    void (async () => {
      for await (const m of messages) {
        const parsed = this.parse(m, schema);
        if (!parsed) continue;
        try {
          await withCorrelationId(parsed.correlationId, () => handler(parsed.event));
          m.ack();
        } catch (err) {
          this.logger?.error({ err, subject: m.subject }, 'event handler failed; will be redelivered');
          m.nak(1000);
        }
      }
    })();
  }

  /**
   * As `consume`, but the handler gets the events that arrived while it was busy (up to
   * `maxBatch`, in delivery order) at once, so it can apply them in one transaction. All of a
   * batch are acked when it returns; when it throws, all are redelivered.
   */
  async consumeBatches<S extends z.ZodType>(
    durable: string,
    filterSubject: string,
    schema: S,
    handler: (events: Array<BatchedEvent<z.output<S>>>) => Promise<void> | void,
    opts: { from?: 'new' | 'all'; maxBatch?: number } = {},
  ): Promise<void> {
    const maxBatch = opts.maxBatch ?? 64;
    const messages = await this.messages(durable, filterSubject, opts);
    const queue: JsMsg[] = [];
    let done = false;
    let wakeWorker: (() => void) | undefined;
    let wakeReader: (() => void) | undefined;
    // Reader: moves delivered messages into the queue, pausing while two batches wait.
    void (async () => {
      for await (const m of messages) {
        queue.push(m);
        wakeWorker?.();
        if (queue.length >= 2 * maxBatch) await new Promise<void>((r) => (wakeReader = r));
      }
      done = true;
      wakeWorker?.();
    })();
    // Worker: one batch at a time.
    void (async () => {
      for (;;) {
        if (!queue.length) {
          if (done) return;
          await new Promise<void>((r) => (wakeWorker = r));
          wakeWorker = undefined;
          continue;
        }
        // Let the messages already received reach the queue (each is a turn of the reader) first.
        await new Promise<void>((r) => setImmediate(r));
        const batch = queue.splice(0, maxBatch);
        wakeReader?.();
        wakeReader = undefined;
        const events: Array<BatchedEvent<z.output<S>>> = [];
        const handled: JsMsg[] = [];
        for (const m of batch) {
          const parsed = this.parse(m, schema);
          if (parsed) {
            events.push(parsed);
            handled.push(m);
          }
        }
        if (!events.length) continue;
        try {
          await handler(events);
          for (const m of handled) m.ack();
        } catch (err) {
          this.logger?.error({ err, events: events.length }, 'event batch handler failed; will be redelivered');
          for (const m of handled) m.nak(1000);
        }
      }
    })();
  }

  /** The durable pull consumer's message iterator (created when missing). */
  private async messages(durable: string, filterSubject: string, opts: { from?: 'new' | 'all' }) {
    const jsm = await jetstreamManager(this.nc);
    // An existing durable consumer is resumed as it is (from its ack floor); only a missing one
    // is created. A new one starts with events published from now on unless `from: 'all'`: it
    // must not replay other clouds' history from a shared stream (reconciliation covers older).
    const exists = await jsm.consumers.info(this.spec.name, durable).then(
      () => true,
      (e) => {
        if (/not found/i.test(String((e as Error).message))) return false;
        throw e;
      },
    );
    if (!exists) {
      await jsm.consumers
        .add(this.spec.name, {
          durable_name: durable,
          ack_policy: AckPolicy.Explicit,
          filter_subject: filterSubject,
          deliver_policy: opts.from === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
          ack_wait: 30_000_000_000,
          max_deliver: 20,
        })
        .catch(async (e) => {
          // Another replica created it in between.
          if (!/already in use|exists/i.test(String(e.message))) throw e;
        });
    }
    const js = this.js ?? jetstream(this.nc);
    const consumer = await js.consumers.get(this.spec.name, durable);
    const messages = await consumer.consume({ max_messages: 64 });
    this.stopped.add(() => void messages.stop());
    return messages;
  }

  /** The event and its correlation id; an invalid payload is logged and acked (undefined). */
  private parse<S extends z.ZodType>(m: JsMsg, schema: S): BatchedEvent<z.output<S>> | undefined {
    let json: unknown;
    try {
      json = m.json();
    } catch {
      json = undefined; // not JSON: invalid like any other payload
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      this.logger?.warn({ subject: m.subject, issues: parsed.error.issues }, 'dropped invalid event');
      m.ack();
      return undefined;
    }
    return { event: parsed.data, correlationId: m.headers?.get(CORRELATION_HEADER) || undefined };
  }

  stop() {
    for (const s of this.stopped) s();
    this.stopped.clear();
  }
}
