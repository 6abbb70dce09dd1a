/**
 * Transport layer: how bytes reach libvirtd and how they are cut into packets.
 *
 * Wire format (virnetprotocol.x): a 4-byte big-endian length (counting itself), a 24-byte
 * header (program, version, procedure, type, serial, status) and an XDR payload. One reader
 * per connection decodes packets and hands them to a single listener (the RPC layer), which
 * matches replies to calls by serial; writes are queued so many calls can be in flight.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { VIR_NET_MESSAGE_HEADER_MAX, VIR_NET_MESSAGE_LEN_MAX, VIR_NET_MESSAGE_MAX } from './xdr.js';

export const DEFAULT_SOCKET_PATH = '/var/run/libvirt/libvirt-sock';
export const DEFAULT_TCP_PORT = 16509;

export enum MessageType {
  Call = 0,
  Reply = 1,
  Message = 2,
  Stream = 3,
  CallWithFds = 4,
  ReplyWithFds = 5,
  StreamHole = 6,
}

export enum MessageStatus {
  Ok = 0,
  Error = 1,
  Continue = 2,
}

export interface PacketHeader {
  program: number;
  version: number;
  procedure: number;
  type: MessageType;
  serial: number;
  status: MessageStatus;
}

export interface Packet {
  header: PacketHeader;
  payload: Buffer;
}

const FRAME_HEADER = VIR_NET_MESSAGE_LEN_MAX + VIR_NET_MESSAGE_HEADER_MAX; // 28

export class LibvirtProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibvirtProtocolError';
  }
}

/** Serialises one packet (length word + header + payload). */
export function encodePacket(header: PacketHeader, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const total = FRAME_HEADER + payload.length;
  if (total - VIR_NET_MESSAGE_LEN_MAX > VIR_NET_MESSAGE_MAX) {
    throw new LibvirtProtocolError(`packet of ${total} bytes exceeds VIR_NET_MESSAGE_MAX (${VIR_NET_MESSAGE_MAX})`);
  }
  const buf = Buffer.allocUnsafe(total);
  buf.writeUInt32BE(total, 0);
  buf.writeUInt32BE(header.program >>> 0, 4);
  buf.writeUInt32BE(header.version >>> 0, 8);
  buf.writeInt32BE(header.procedure | 0, 12);
  buf.writeInt32BE(header.type, 16);
  buf.writeUInt32BE(header.serial >>> 0, 20);
  buf.writeInt32BE(header.status, 24);
  buf.set(payload, FRAME_HEADER);
  return buf;
}

/**
 * Incremental packet decoder. Feed it socket chunks; it returns complete packets and throws a
 * LibvirtProtocolError on a length word that is too small or above VIR_NET_MESSAGE_MAX (the
 * oversized body is never buffered).
 */
export class PacketDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Packet[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Packet[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len < FRAME_HEADER) throw new LibvirtProtocolError(`packet length ${len} smaller than the header`);
      if (len - VIR_NET_MESSAGE_LEN_MAX > VIR_NET_MESSAGE_MAX) {
        throw new LibvirtProtocolError(`packet length ${len} exceeds VIR_NET_MESSAGE_MAX (${VIR_NET_MESSAGE_MAX})`);
      }
      if (this.buffered < len) break;
      const frame = this.take(len);
      const type = frame.readInt32BE(16);
      const status = frame.readInt32BE(24);
      if (!(type in MessageType)) throw new LibvirtProtocolError(`unknown message type ${type}`);
      if (!(status in MessageStatus)) throw new LibvirtProtocolError(`unknown message status ${status}`);
      out.push({
        header: {
          program: frame.readUInt32BE(4),
          version: frame.readUInt32BE(8),
          procedure: frame.readInt32BE(12),
          type,
          serial: frame.readUInt32BE(20),
          status,
        },
        payload: frame.subarray(FRAME_HEADER),
      });
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  private take(n: number): Buffer {
    let buf: Buffer;
    if (this.chunks[0].length >= n) {
      buf = this.chunks[0].subarray(0, n);
      const rest = this.chunks[0].subarray(n);
      if (rest.length) this.chunks[0] = rest;
      else this.chunks.shift();
    } else {
      const all = Buffer.concat(this.chunks);
      buf = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return buf;
  }
}

/** Opens a byte stream to libvirtd. Tests pass a fake; production uses the UNIX socket. */
export interface Dialer {
  dial(): Promise<Duplex>;
  readonly description: string;
}

function connectSocket(make: () => Socket, timeoutMs: number, what: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = make();
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`timed out connecting to ${what}`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeListener('error', onError);
      resolve(sock);
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    sock.once('error', onError);
  });
}

export class UnixDialer implements Dialer {
  constructor(
    readonly path: string = DEFAULT_SOCKET_PATH,
    private readonly timeoutMs = 5000,
  ) {}
  get description(): string {
    return `unix:${this.path}`;
  }
  dial(): Promise<Duplex> {
    return connectSocket(() => netConnect({ path: this.path }), this.timeoutMs, this.description);
  }
}

export class TcpDialer implements Dialer {
  constructor(
    readonly host: string,
    readonly port: number = DEFAULT_TCP_PORT,
    private readonly timeoutMs = 5000,
  ) {}
  get description(): string {
    return `tcp:${this.host}:${this.port}`;
  }
  async dial(): Promise<Duplex> {
    const sock = await connectSocket(() => netConnect({ host: this.host, port: this.port }), this.timeoutMs, this.description);
    sock.setNoDelay(true);
    return sock;
  }
}

/** A dialer that hands out an already-open stream once (tests, or sockets opened elsewhere). */
export class StreamDialer implements Dialer {
  private used = false;
  constructor(private readonly stream: Duplex) {}
  get description(): string {
    return 'stream';
  }
  async dial(): Promise<Duplex> {
    if (this.used) throw new Error('StreamDialer can only dial once');
    this.used = true;
    return this.stream;
  }
}

export interface TransportEvents {
  packet: [Packet];
  close: [Error | undefined];
}

/**
 * A framed connection: `send` writes packets (honouring socket back-pressure), the one reader
 * emits `packet` for each decoded packet, and `close` exactly once with the reason.
 */
export class Transport extends EventEmitter<TransportEvents> {
  private readonly decoder = new PacketDecoder();
  private closed = false;
  private closeReason: Error | undefined;
  private blocked = false;
  private paused = false;
  private drainWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(private readonly stream: Duplex) {
    super();
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err) => this.shutdown(err));
    stream.on('close', () => this.shutdown(undefined));
    stream.on('end', () => this.shutdown(undefined));
    stream.on('drain', () => {
      this.blocked = false;
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w.resolve();
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get reason(): Error | undefined {
    return this.closeReason;
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let packets: Packet[];
    try {
      packets = this.decoder.push(chunk);
    } catch (err) {
      this.shutdown(err as Error);
      return;
    }
    for (const p of packets) {
      if (this.closed) return;
      this.emit('packet', p);
    }
  }

  /**
   * Writes one packet. Resolves once the socket accepted it, or, under back-pressure, once it
   * drained; rejects if the connection closes first.
   */
  send(header: PacketHeader, payload?: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(this.closeReason ?? new Error('connection closed'));
    const frame = encodePacket(header, payload);
    const ok = this.stream.write(frame);
    if (ok && !this.blocked) return Promise.resolve();
    this.blocked = true;
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  /** Stops reading from the socket (download back-pressure). */
  pause(): void {
    this.paused = true;
    this.stream.pause();
  }

  resume(): void {
    this.paused = false;
    this.stream.resume();
  }

  /** Whether we stopped reading (then the peer's silence is ours, not its). */
  get isPaused(): boolean {
    return this.paused;
  }

  close(err?: Error): void {
    this.shutdown(err);
  }

  private shutdown(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = err;
    this.stream.destroy();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.reject(err ?? new Error('connection closed'));
    this.emit('close', err);
  }
}
