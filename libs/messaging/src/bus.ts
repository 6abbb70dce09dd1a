/**
 * NatsBus: the one way Koala components talk. A thin layer over @nats-io/transport-node that
 *  - reconnects forever (components must survive a NATS restart by themselves),
 *  - validates every payload against its contract (libs/contracts) on send and on receipt,
 *  - carries the correlation id in a header so logs follow a request across processes,
 *  - turns a handler's thrown error into a `RemoteError` reply (code + message), re-thrown
 *    on the caller's side as `BusRemoteError` so EC2 error codes survive the hop.
 *
 * Why not @nestjs/microservices' NATS transport: it wraps this same client, but its
 * decorators take static patterns (our subjects carry the zone and node name, known only at
 * run time), and it hides headers and JetStream, which we need.
 */
import { connect, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { z } from 'zod';
import { RemoteError, type RequestContract } from '@koala/contracts';
import { metrics } from '@koala/metrics';
import { CORRELATION_HEADER, currentCorrelationId, withCorrelationId, type Logger } from '@koala/logging';
import { EventStream, type StreamSpec } from './events.js';
import { natsEndpoint, redactNatsUrl } from './nats-url.js';

/** A first connect that may succeed later: the server is down, restarting or not routable yet. */
function isUnreachable(err: unknown): boolean {
  const e = err as { name?: string; code?: unknown; cause?: { code?: unknown } };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : '';
  // System network errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EHOSTUNREACH, EAI_AGAIN, ...), not
  // EPROTO (TLS spoken to a plain server) nor TLS verification codes (ERR_TLS_*, *_CERT*).
  if (/^E[A-Z]+(_[A-Z]+)?$/.test(code) && code !== 'EPROTO') return true;
  return e.name === 'TimeoutError';
}

/** Request/reply latency by contract name (not subject: subjects carry zone and node names). */
const requestSeconds = metrics.histogram({
  name: 'koala_nats_request_duration_seconds',
  help: 'NATS request/reply latency by contract and outcome (ok, remote_error, unavailable), in seconds.',
  labelNames: ['contract', 'outcome'],
});

export class BusRemoteError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'BusRemoteError';
  }
}

/**
 * The error a handler throws to answer with an EC2-style code: the bus carries `code` and the
 * message back, and the requester gets them as a BusRemoteError.
 */
export function codedError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

/** No component answered (nobody subscribed, or the request timed out). */
export class BusUnavailableError extends Error {
  constructor(
    readonly subject: string,
    reason: string,
  ) {
    super(`no answer on ${subject}: ${reason}`);
    this.name = 'BusUnavailableError';
  }
}

export interface BusOptions {
  /** KOALA_NATS_URL: `nats://` or `tls://`, credentials in the URL (see nats-url.ts). */
  url: string;
  /** CA that signed the server's certificate (TLS); default: the system's CAs. */
  caFile?: string;
  /** Connection name shown by the NATS server (component and id). */
  name: string;
  logger?: Logger;
  /** Delay between reconnect attempts. */
  reconnectWaitMs?: number;
  /** Give up a first connect to an unreachable server after this long (default: wait forever). */
  connectTimeoutMs?: number;
}

type Handler<Req, Res> = (request: Req, msg: Msg) => Promise<Res> | Res;

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const decode = (msg: Msg): unknown => (msg.data.length ? JSON.parse(new TextDecoder().decode(msg.data)) : undefined);

export class NatsBus {
  private readonly subscriptions = new Set<Subscription>();
  private connected = true;
  private readonly streams = new Set<EventStream>();

  private constructor(
    readonly connection: NatsConnection,
    private readonly logger?: Logger,
  ) {
    void this.watchStatus();
  }

  /**
   * Connects, waiting for a NATS server that is not up yet (components may start first) but
   * failing at once on what waiting cannot fix: refused credentials, an untrusted certificate,
   * TLS on one side only. Once connected, reconnects forever.
   */
  static async connect(options: BusOptions): Promise<NatsBus> {
    const endpoint = natsEndpoint(options.url, options.caFile);
    const waitMs = options.reconnectWaitMs ?? 1000;
    const deadline = options.connectTimeoutMs === undefined ? Infinity : Date.now() + options.connectTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const connection = await connect({ ...endpoint, name: options.name, maxReconnectAttempts: -1, reconnectTimeWait: waitMs, waitOnFirstConnect: false, pingInterval: 10_000 });
        return new NatsBus(connection, options.logger);
      } catch (err) {
        const message = (err as Error).message;
        if (!isUnreachable(err)) throw new Error(`cannot connect to NATS ${redactNatsUrl(options.url)}: ${message}`, { cause: err });
        if (Date.now() + waitMs > deadline) throw new Error(`NATS ${redactNatsUrl(options.url)} not reachable: ${message}`, { cause: err });
        if (attempt === 1 || attempt % 30 === 0) options.logger?.warn({ nats: redactNatsUrl(options.url), err: message, attempt }, 'NATS not reachable yet; waiting');
        await new Promise((r) => setTimeout(r, waitMs));
      }
    }
  }

  private async watchStatus() {
    for await (const s of this.connection.status()) {
      if (s.type === 'disconnect') this.connected = false;
      if (s.type === 'reconnect') this.connected = true;
      if (s.type === 'disconnect' || s.type === 'reconnect') this.logger?.warn({ nats: s.type, server: (s as { server?: string }).server }, `NATS ${s.type}`);
    }
  }

  get isConnected(): boolean {
    return this.connected && !this.connection.isClosed();
  }

  private headers() {
    const h = natsHeaders();
    const id = currentCorrelationId();
    if (id) h.set(CORRELATION_HEADER, id);
    return h;
  }

  /** Request/reply with validation on both ends. */
  async request<Req extends z.ZodType, Res extends z.ZodType>(contract: RequestContract<Req, Res>, payload: z.input<Req>, opts: { timeoutMs?: number } = {}): Promise<z.output<Res>> {
    const body = contract.request.parse(payload);
    const done = requestSeconds.startTimer({ contract: contract.name });
    let reply: Msg;
    try {
      reply = await this.connection.request(contract.subject, encode(body), { timeout: opts.timeoutMs ?? 5000, headers: this.headers() });
    } catch (e) {
      done({ outcome: 'unavailable' });
      throw new BusUnavailableError(contract.subject, (e as Error).message);
    }
    const data = decode(reply) as { ok?: unknown; error?: unknown };
    if (data && typeof data === 'object' && 'error' in data) {
      done({ outcome: 'remote_error' });
      const err = RemoteError.parse(data.error);
      throw new BusRemoteError(err.code, err.message);
    }
    done({ outcome: 'ok' });
    return contract.response.parse(data.ok);
  }

  /** Serves a contract. Handlers run inside the caller's correlation id. */
  handle<Req extends z.ZodType, Res extends z.ZodType>(contract: RequestContract<Req, Res>, handler: Handler<z.output<Req>, z.input<Res>>, opts: { queue?: string } = {}): Subscription {
    return this.subscribeRaw(contract.subject, opts.queue, async (msg) => {
      let reply: unknown;
      try {
        const req = contract.request.parse(decode(msg));
        const res = await handler(req, msg);
        reply = { ok: contract.response.parse(res) };
      } catch (e) {
        const err = e as Error & { code?: string };
        if (!err.code) this.logger?.error({ err, subject: contract.subject }, 'handler failed');
        reply = { error: { code: typeof err.code === 'string' ? err.code : 'InternalError', message: err.message ?? String(e) } };
      }
      if (msg.reply) msg.respond(encode(reply));
    });
  }

  /** Fire-and-forget publication of a validated payload (heartbeats, events). */
  publish<S extends z.ZodType>(subject: string, schema: S, payload: z.input<S>): void {
    this.connection.publish(subject, encode(schema.parse(payload)), { headers: this.headers() });
  }

  /** Subscribes to validated publications; invalid payloads are logged and dropped. */
  subscribe<S extends z.ZodType>(subject: string, schema: S, handler: (payload: z.output<S>, msg: Msg) => unknown, opts: { queue?: string } = {}): Subscription {
    return this.subscribeRaw(subject, opts.queue, async (msg) => {
      const parsed = schema.safeParse(decode(msg));
      if (!parsed.success) {
        this.logger?.warn({ subject, issues: parsed.error.issues }, 'dropped invalid message');
        return;
      }
      await handler(parsed.data, msg);
    });
  }

  /**
   * Scatter-gather: publish one request and collect every answer that arrives within
   * `timeoutMs` (used for "who is out there" questions such as status and zones).
   */
  async gather<S extends z.ZodType>(subject: string, schema: S, payload: unknown = {}, opts: { timeoutMs?: number; stallMs?: number } = {}): Promise<z.output<S>[]> {
    const out: z.output<S>[] = [];
    try {
      // 'stall': wait up to timeoutMs for the first answer, then stop once answers pause for
      // stallMs — callers rarely know how many responders exist, and a fixed timer makes every
      // status or zone question as slow as its timeout.
      const replies = await this.connection.requestMany(subject, encode(payload), { maxWait: opts.timeoutMs ?? 1000, strategy: 'stall', stall: opts.stallMs ?? 150, headers: this.headers() });
      for await (const msg of replies) {
        const data = decode(msg) as { ok?: unknown };
        const parsed = schema.safeParse(data?.ok);
        if (parsed.success) out.push(parsed.data);
      }
    } catch (e) {
      // No responders at all is an empty answer, not a failure.
      if (!/no responders|503/i.test(String((e as Error).message))) throw e;
    }
    return out;
  }

  /** Answers scatter-gather requests (see `gather`). */
  answer(subject: string, responder: () => unknown | Promise<unknown>): Subscription {
    return this.subscribeRaw(subject, undefined, async (msg) => {
      if (msg.reply) msg.respond(encode({ ok: await responder() }));
    });
  }

  private subscribeRaw(subject: string, queue: string | undefined, onMessage: (msg: Msg) => Promise<void>): Subscription {
    const sub = this.connection.subscribe(subject, { queue });
    this.subscriptions.add(sub);
    void (async () => {
      try {
        for await (const msg of sub) {
          const correlationId = msg.headers?.get(CORRELATION_HEADER) || undefined;
          // Each message is handled concurrently; the loop only dispatches.
          void withCorrelationId(correlationId, () => onMessage(msg).catch((err) => this.logger?.error({ err, subject }, 'message handling failed')));
        }
      } catch (err) {
        // The server refused the subscription (permissions): say so instead of crashing.
        this.logger?.error({ err, subject }, 'subscription closed by the server');
      }
    })();
    return sub;
  }

  /** A durable JetStream event stream on this connection (see events.ts). */
  events(spec: StreamSpec): EventStream {
    const stream = new EventStream(this.connection, spec, this.logger);
    this.streams.add(stream);
    return stream;
  }

  async flush(): Promise<void> {
    await this.connection.flush();
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.stop();
    for (const s of this.subscriptions) s.unsubscribe();
    if (!this.connection.isClosed()) await this.connection.drain().catch(() => this.connection.close());
  }
}
