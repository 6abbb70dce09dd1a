/**
 * RPC layer: serial numbers, the pending-call map, libvirt errors, keepalive and streams.
 *
 * Every call gets a fresh serial and a pending entry; the transport's single reader routes
 * each reply (or stream packet) to its entry by serial. When the connection drops, every
 * pending call and open stream fails with LibvirtConnectionClosedError: nothing hangs.
 */
import { EventEmitter } from 'node:events';
import { MessageStatus, MessageType, Transport, type Packet, type PacketHeader } from './transport.js';
import { REMOTE_STRING_MAX, VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX, VIR_UUID_BUFLEN, XdrReader, XdrWriter } from './xdr.js';

export const REMOTE_PROGRAM = 0x20008086;
export const REMOTE_PROTOCOL_VERSION = 1;
export const KEEPALIVE_PROGRAM = 0x6b656570;
export const KEEPALIVE_PROTOCOL_VERSION = 1;
export const KEEPALIVE_PROC_PING = 1;
export const KEEPALIVE_PROC_PONG = 2;

/** virErrorNumber values (libvirt's virterror.h) that callers commonly branch on. */
export const VIR_ERR_OK = 0;
export const VIR_ERR_INTERNAL_ERROR = 1;
export const VIR_ERR_NO_MEMORY = 2;
export const VIR_ERR_NO_SUPPORT = 3;
export const VIR_ERR_NO_CONNECT = 5;
export const VIR_ERR_INVALID_CONN = 6;
export const VIR_ERR_INVALID_DOMAIN = 7;
export const VIR_ERR_INVALID_ARG = 8;
export const VIR_ERR_OPERATION_FAILED = 9;
export const VIR_ERR_XML_ERROR = 27;
export const VIR_ERR_DOM_EXIST = 28;
export const VIR_ERR_SYSTEM_ERROR = 38;
export const VIR_ERR_RPC = 39;
export const VIR_ERR_NO_DOMAIN = 42;
export const VIR_ERR_NO_NETWORK = 43;
export const VIR_ERR_AUTH_FAILED = 45;
export const VIR_ERR_INVALID_STORAGE_POOL = 46;
export const VIR_ERR_INVALID_STORAGE_VOL = 47;
export const VIR_ERR_NO_STORAGE_POOL = 49;
export const VIR_ERR_NO_STORAGE_VOL = 50;
export const VIR_ERR_NO_NODE_DEVICE = 53;
export const VIR_ERR_OPERATION_INVALID = 55;
export const VIR_ERR_NO_NWFILTER = 62;
export const VIR_ERR_NO_SECRET = 66;
export const VIR_ERR_CONFIG_UNSUPPORTED = 67;
export const VIR_ERR_OPERATION_TIMEOUT = 68;
export const VIR_ERR_NO_DOMAIN_SNAPSHOT = 72;
export const VIR_ERR_ARGUMENT_UNSUPPORTED = 74;
export const VIR_ERR_STORAGE_PROBE_FAILED = 75;
export const VIR_ERR_STORAGE_POOL_BUILT = 76;
export const VIR_ERR_OPERATION_ABORTED = 78;
export const VIR_ERR_OPERATION_UNSUPPORTED = 84;
export const VIR_ERR_AGENT_UNRESPONSIVE = 86;
export const VIR_ERR_ACCESS_DENIED = 88;
export const VIR_ERR_STORAGE_VOL_EXIST = 90;

/** virErrorLevel */
export const VIR_ERR_NONE = 0;
export const VIR_ERR_WARNING = 1;
export const VIR_ERR_ERROR = 2;

/** An error reported by libvirtd (remote_error). */
export class LibvirtError extends Error {
  constructor(
    readonly code: number,
    readonly domain: number,
    message: string,
    readonly level: number = VIR_ERR_ERROR,
    readonly str1: string | null = null,
    readonly str2: string | null = null,
    readonly str3: string | null = null,
    readonly int1 = 0,
    readonly int2 = 0,
  ) {
    super(message);
    this.name = 'LibvirtError';
  }

  /** Decodes a remote_error payload. */
  static decode(payload: Buffer): LibvirtError {
    const r = new XdrReader(payload);
    const code = r.int();
    const domain = r.int();
    const message = r.optional((x) => x.string(REMOTE_STRING_MAX));
    const level = r.int();
    r.optional((x) => {
      x.string(REMOTE_STRING_MAX);
      x.opaqueFixed(VIR_UUID_BUFLEN);
      x.int();
    });
    const str1 = r.optional((x) => x.string(REMOTE_STRING_MAX));
    const str2 = r.optional((x) => x.string(REMOTE_STRING_MAX));
    const str3 = r.optional((x) => x.string(REMOTE_STRING_MAX));
    const int1 = r.int();
    const int2 = r.int();
    r.optional((x) => {
      x.string(REMOTE_STRING_MAX);
      x.opaqueFixed(VIR_UUID_BUFLEN);
    });
    return new LibvirtError(code, domain, message ?? `libvirt error ${code}`, level, str1, str2, str3, int1, int2);
  }
}

/** Raised for every pending call and stream when the connection is closed or lost. */
export class LibvirtConnectionClosedError extends Error {
  constructor(
    message = 'libvirt connection closed',
    readonly cause?: Error,
  ) {
    super(cause ? `${message}: ${cause.message}` : message);
    this.name = 'LibvirtConnectionClosedError';
  }
}

export function isLibvirtError(err: unknown, code?: number): err is LibvirtError {
  return err instanceof LibvirtError && (code === undefined || err.code === code);
}

interface Pending {
  onPacket(p: Packet): void;
  fail(err: Error): void;
}

export interface RpcOptions {
  /** Send a PING after this much silence; 0 disables keepalive. Default 5000 ms. */
  keepaliveIntervalMs?: number;
  /** Close the connection after this many intervals without any packet. Default 5. */
  keepaliveCount?: number;
}

export interface RpcEvents {
  /** An asynchronous message (type MESSAGE) of the remote program: a domain event etc. */
  event: [procedure: number, payload: Buffer];
  close: [LibvirtConnectionClosedError];
}

export class RpcClient extends EventEmitter<RpcEvents> {
  private serialCounter = 0;
  private readonly pending = new Map<number, Pending>();
  private closedError: LibvirtConnectionClosedError | undefined;
  private lastRx = Date.now();
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private unansweredPings = 0;
  private readonly keepaliveIntervalMs: number;
  private readonly keepaliveCount: number;

  constructor(
    readonly transport: Transport,
    opts: RpcOptions = {},
  ) {
    super();
    this.keepaliveIntervalMs = opts.keepaliveIntervalMs ?? 5000;
    this.keepaliveCount = opts.keepaliveCount ?? 5;
    transport.on('packet', (p) => this.onPacket(p));
    transport.on('close', (err) => this.onClose(err));
    if (transport.isClosed) this.onClose(transport.reason);
  }

  get isClosed(): boolean {
    return this.closedError !== undefined;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  private nextSerial(): number {
    this.serialCounter = (this.serialCounter + 1) >>> 0;
    if (this.serialCounter === 0) this.serialCounter = 1;
    return this.serialCounter;
  }

  private header(procedure: number, serial: number, type = MessageType.Call, status = MessageStatus.Ok): PacketHeader {
    return { program: REMOTE_PROGRAM, version: REMOTE_PROTOCOL_VERSION, procedure, type, serial, status };
  }

  /** Calls a remote procedure; resolves with the reply payload or rejects with LibvirtError. */
  call(procedure: number, payload?: Uint8Array): Promise<Buffer> {
    if (this.closedError) return Promise.reject(this.closedError);
    const serial = this.nextSerial();
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(serial, {
        onPacket: (p) => {
          this.pending.delete(serial);
          if (p.header.type !== MessageType.Reply) {
            reject(new LibvirtError(VIR_ERR_RPC, 0, `unexpected message type ${p.header.type} for call ${procedure}`));
          } else if (p.header.status === MessageStatus.Ok) {
            resolve(p.payload);
          } else {
            reject(safeDecodeError(p.payload));
          }
        },
        fail: (err) => {
          this.pending.delete(serial);
          reject(err);
        },
      });
      this.transport.send(this.header(procedure, serial), payload).catch((err: Error) => {
        const pend = this.pending.get(serial);
        if (pend) pend.fail(this.closedError ?? new LibvirtConnectionClosedError('write failed', err));
      });
    });
  }

  /**
   * Calls a procedure that opens a data stream (volume upload/download). Resolves once the
   * call's reply arrived, with a stream bound to the call's serial.
   */
  async openStream(procedure: number, payload?: Uint8Array, opts: RpcStreamOptions = {}): Promise<RpcStream> {
    if (this.closedError) throw this.closedError;
    const serial = this.nextSerial();
    const stream = new RpcStream(this, procedure, serial, opts);
    await new Promise<void>((resolve, reject) => {
      let replied = false;
      this.pending.set(serial, {
        onPacket: (p) => {
          if (!replied) {
            if (p.header.type === MessageType.Reply) {
              replied = true;
              if (p.header.status === MessageStatus.Ok) resolve();
              else {
                this.pending.delete(serial);
                reject(safeDecodeError(p.payload));
              }
              return;
            }
            // Stream data before the reply would be a protocol violation; deliver anyway.
          }
          stream.handlePacket(p);
        },
        fail: (err) => {
          this.pending.delete(serial);
          if (!replied) reject(err);
          stream.handleFailure(err);
        },
      });
      this.transport.send(this.header(procedure, serial), payload).catch((err: Error) => {
        const pend = this.pending.get(serial);
        if (pend) pend.fail(this.closedError ?? new LibvirtConnectionClosedError('write failed', err));
      });
    });
    return stream;
  }

  /** @internal used by RpcStream */
  sendStreamPacket(procedure: number, serial: number, status: MessageStatus, data?: Uint8Array, type = MessageType.Stream): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    return this.transport.send(this.header(procedure, serial, type, status), data);
  }

  /** @internal */
  releaseSerial(serial: number): void {
    this.pending.delete(serial);
  }

  /** Starts keepalive: answers the daemon's PINGs (always) and pings it after silence. */
  startKeepalive(): void {
    if (this.keepaliveIntervalMs <= 0 || this.keepaliveTimer || this.closedError) return;
    // As libvirt's own keepalive: after `interval` of silence send a PING; give up only once
    // `count` PINGs in a row went unanswered (anything received resets the count). Counting
    // PINGs rather than elapsed time keeps a stalled event loop from dropping a healthy peer.
    this.keepaliveTimer = setInterval(() => {
      // While a download holds the socket paused we read nothing, PONGs included: not the peer's
      // silence. Count afresh from the resume.
      if (this.transport.isPaused) {
        this.lastRx = Date.now();
        this.unansweredPings = 0;
        return;
      }
      const idle = Date.now() - this.lastRx;
      if (idle < this.keepaliveIntervalMs) return;
      if (this.unansweredPings >= this.keepaliveCount) {
        this.transport.close(new Error(`no answer to ${this.unansweredPings} keepalive PINGs (${idle} ms of silence)`));
        return;
      }
      this.unansweredPings++;
      this.sendKeepalive(KEEPALIVE_PROC_PING);
    }, this.keepaliveIntervalMs);
    this.keepaliveTimer.unref();
  }

  private sendKeepalive(procedure: number): void {
    this.transport
      .send({
        program: KEEPALIVE_PROGRAM,
        version: KEEPALIVE_PROTOCOL_VERSION,
        procedure,
        type: MessageType.Message,
        serial: 0,
        status: MessageStatus.Ok,
      })
      .catch(() => undefined);
  }

  close(): void {
    this.transport.close();
  }

  private onPacket(p: Packet): void {
    this.lastRx = Date.now();
    this.unansweredPings = 0;
    const h = p.header;
    if (h.program === KEEPALIVE_PROGRAM) {
      if (h.procedure === KEEPALIVE_PROC_PING) this.sendKeepalive(KEEPALIVE_PROC_PONG);
      return;
    }
    if (h.program !== REMOTE_PROGRAM || h.version !== REMOTE_PROTOCOL_VERSION) {
      this.transport.close(new Error(`unexpected program ${h.program.toString(16)} v${h.version}`));
      return;
    }
    if (h.type === MessageType.Message) {
      this.emit('event', h.procedure, p.payload);
      return;
    }
    const pend = this.pending.get(h.serial);
    if (!pend) return; // a late reply for a call nobody waits for any more
    pend.onPacket(p);
  }

  private onClose(err: Error | undefined): void {
    if (this.closedError) return;
    this.closedError = new LibvirtConnectionClosedError('libvirt connection closed', err);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.fail(this.closedError);
    this.emit('close', this.closedError);
  }
}

function safeDecodeError(payload: Buffer): LibvirtError {
  try {
    return LibvirtError.decode(payload);
  } catch (err) {
    return new LibvirtError(VIR_ERR_RPC, 0, `malformed error reply: ${(err as Error).message}`);
  }
}

const STREAM_CHUNK = VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX;
const STREAM_HIGH_WATER = 16;

/** One piece of an incoming sparse stream: bytes, or a hole (a run of zeros that did not travel). */
export type StreamChunk = { kind: 'data'; data: Buffer } | { kind: 'hole'; length: number };

export interface RpcStreamOptions {
  /**
   * The call asked for a sparse stream (VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM or
   * VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM): VIR_NET_STREAM_HOLE packets may then travel. On any
   * other stream an incoming hole is a protocol error, and sending one is refused (libvirtd
   * drops a client that sends a hole it did not ask for).
   */
  sparse?: boolean;
}

/** Encodes a virNetStreamHole payload (virnetprotocol.x: hyper length; unsigned int flags). */
export function encodeStreamHole(length: number, flags = 0): Buffer {
  return new XdrWriter().hyper(length).uint(flags).toBuffer();
}

/**
 * Decodes a virNetStreamHole payload. The length must be a non-negative safe integer and flags 0
 * (libvirt defines none and its own client refuses others); the payload must be exactly 12 bytes.
 */
export function decodeStreamHole(payload: Buffer): number {
  const r = new XdrReader(payload);
  const length = r.hyper();
  const flags = r.uint();
  r.end();
  if (length < 0n || length > BigInt(Number.MAX_SAFE_INTEGER)) throw new LibvirtError(VIR_ERR_RPC, 0, `stream hole of invalid length ${length}`);
  if (flags !== 0) throw new LibvirtError(VIR_ERR_RPC, 0, `stream hole with unknown flags 0x${flags.toString(16)}`);
  return Number(length);
}

/**
 * A libvirt data stream bound to one call serial. Outgoing: `write` (and, on a sparse stream,
 * `sendHole`) then `finish` (or `abort`). Incoming: iterate `chunks()` (data and holes) or the
 * stream itself (bytes only: holes are handed out as zero-filled buffers) until the daemon's
 * end-of-stream.
 *
 * Flow control: incoming packets (data or hole) queue up to STREAM_HIGH_WATER, then the socket
 * is paused until the consumer has taken half of them. While paused, no reply on this
 * connection is read either, so a consumer must not wait for another call, nor feed an upload,
 * on the same connection in the middle of a download (finish reading, or abort, first; or use a
 * second connection).
 */
export class RpcStream {
  private readonly queue: StreamChunk[] = [];
  private ended = false;
  private error: Error | undefined;
  private waiter: (() => void) | undefined;
  private paused = false;
  private readonly endPromise: Promise<void>;
  private resolveEnd!: () => void;
  private rejectEnd!: (e: Error) => void;
  readonly sparse: boolean;

  constructor(
    private readonly rpc: RpcClient,
    readonly procedure: number,
    readonly serial: number,
    opts: RpcStreamOptions = {},
  ) {
    this.sparse = opts.sparse ?? false;
    this.endPromise = new Promise((res, rej) => {
      this.resolveEnd = res;
      this.rejectEnd = rej;
    });
    this.endPromise.catch(() => undefined);
  }

  /** @internal */
  handlePacket(p: Packet): void {
    if (this.ended) return;
    const h = p.header;
    if (h.type === MessageType.Reply && h.status === MessageStatus.Error) {
      this.handleFailure(safeDecodeError(p.payload));
    } else if (h.type === MessageType.StreamHole) {
      this.handleHole(p);
    } else if (h.type !== MessageType.Stream) {
      this.handleFailure(new LibvirtError(VIR_ERR_RPC, 0, `unexpected message type ${h.type} on stream`));
    } else if (h.status === MessageStatus.Error) {
      this.handleFailure(safeDecodeError(p.payload));
    } else if (h.status === MessageStatus.Ok || p.payload.length === 0) {
      this.handleEnd();
    } else {
      this.enqueue({ kind: 'data', data: p.payload });
    }
  }

  private handleHole(p: Packet): void {
    if (!this.sparse) {
      this.handleFailure(new LibvirtError(VIR_ERR_RPC, 0, 'unexpected stream hole (the stream was not opened sparse)'));
      return;
    }
    switch (p.header.status) {
      case MessageStatus.Error:
        this.handleFailure(safeDecodeError(p.payload));
        return;
      case MessageStatus.Ok: // virnetprotocol.x: STREAM_HOLE with OK carries nothing; treat as the end
        this.handleEnd();
        return;
      default: {
        let length: number;
        try {
          length = decodeStreamHole(p.payload);
        } catch (err) {
          this.handleFailure(err instanceof LibvirtError ? err : new LibvirtError(VIR_ERR_RPC, 0, `malformed stream hole: ${(err as Error).message}`));
          return;
        }
        if (length > 0) this.enqueue({ kind: 'hole', length });
      }
    }
  }

  private enqueue(chunk: StreamChunk): void {
    this.queue.push(chunk);
    if (this.queue.length >= STREAM_HIGH_WATER && !this.paused) {
      this.paused = true;
      this.rpc.transport.pause();
    }
    this.wake();
  }

  private handleEnd(): void {
    // End of stream (libvirtd may also signal it with an empty CONTINUE packet).
    this.ended = true;
    this.rpc.releaseSerial(this.serial);
    this.resolveEnd();
    this.wake();
  }

  /** @internal */
  handleFailure(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = err;
    this.rpc.releaseSerial(this.serial);
    this.rejectEnd(err);
    this.resumeTransport();
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private resumeTransport(): void {
    if (this.paused) {
      this.paused = false;
      this.rpc.transport.resume();
    }
  }

  /** Whether the stream is over (ended, failed or aborted). */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Sends data to the daemon, in packets no larger than the legacy payload maximum. */
  async write(data: Uint8Array): Promise<void> {
    for (let off = 0; off < data.length; off += STREAM_CHUNK) {
      this.checkWritable();
      await this.rpc.sendStreamPacket(this.procedure, this.serial, MessageStatus.Continue, data.subarray(off, off + STREAM_CHUNK));
    }
  }

  /**
   * Sends a hole of `length` bytes (one VIR_NET_STREAM_HOLE packet): the daemon skips that many
   * bytes of the target instead of receiving zeros. Only on a stream opened sparse.
   */
  async sendHole(length: number): Promise<void> {
    if (!this.sparse) throw new LibvirtError(VIR_ERR_OPERATION_INVALID, 0, 'cannot send a hole on a stream that was not opened sparse');
    if (!Number.isSafeInteger(length) || length < 0) throw new LibvirtError(VIR_ERR_INVALID_ARG, 0, `invalid hole length ${length}`);
    if (length === 0) return;
    this.checkWritable();
    await this.rpc.sendStreamPacket(this.procedure, this.serial, MessageStatus.Continue, encodeStreamHole(length), MessageType.StreamHole);
  }

  private checkWritable(): void {
    if (this.error) throw this.error;
    if (this.ended) throw new LibvirtError(VIR_ERR_RPC, 0, 'stream already finished');
  }

  /** Ends an outgoing stream and waits for the daemon's confirmation. */
  async finish(): Promise<void> {
    if (this.error) throw this.error;
    await this.rpc.sendStreamPacket(this.procedure, this.serial, MessageStatus.Ok);
    await this.endPromise;
  }

  /** Aborts the stream (best effort) and frees its serial; packets still in flight are dropped. */
  async abort(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.rpc.releaseSerial(this.serial);
    this.queue.length = 0;
    this.resumeTransport();
    this.resolveEnd();
    this.wake();
    await this.rpc.sendStreamPacket(this.procedure, this.serial, MessageStatus.Error).catch(() => undefined);
  }

  /** Resolves at end of stream; rejects on a stream error or a lost connection. */
  done(): Promise<void> {
    return this.endPromise;
  }

  /** The next incoming chunk, or undefined at the end of the stream. */
  private async next(): Promise<StreamChunk | undefined> {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk) {
        if (this.queue.length < STREAM_HIGH_WATER / 2) this.resumeTransport();
        return chunk;
      }
      if (this.error) throw this.error;
      if (this.ended) return undefined;
      await new Promise<void>((res) => (this.waiter = res));
    }
  }

  /** Incoming data and holes, in order, until the end of the stream. */
  async *chunks(): AsyncGenerator<StreamChunk, void, undefined> {
    for (let c = await this.next(); c; c = await this.next()) yield c;
  }

  /** Incoming bytes; a hole is handed out as zero-filled buffers (at most 256 KiB each). */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (let c = await this.next(); c; c = await this.next()) {
      if (c.kind === 'data') {
        yield c.data;
        continue;
      }
      for (let left = c.length; left > 0; left -= STREAM_CHUNK) yield Buffer.alloc(Math.min(left, STREAM_CHUNK));
    }
  }
}

export interface RetryOptions {
  attempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Return false to stop retrying on an error (default: retry every error). */
  retryOn?: (err: unknown) => boolean;
}

/** Runs `fn` until it succeeds, with exponential back-off between attempts. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 5;
  let delay = opts.initialDelayMs ?? 100;
  const maxDelay = opts.maxDelayMs ?? 5000;
  let last: unknown;
  for (let i = 1; i <= attempts; i++) {
    try {
      return await fn(i);
    } catch (err) {
      last = err;
      if (opts.retryOn && !opts.retryOn(err)) throw err;
      if (i === attempts) break;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, maxDelay);
    }
  }
  throw last;
}
