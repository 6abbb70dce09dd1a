/**
 * Test helpers (not exported from the lib's index): an in-memory fake libvirtd connection and
 * a fake daemon on a temporary UNIX socket, both speaking the framed packet format.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION } from '../rpc.js';
import { MessageStatus, MessageType, PacketDecoder, encodePacket, type Dialer, type Packet, type PacketHeader } from '../transport.js';
import { XdrWriter } from '../xdr.js';

export type PeerHandler = (p: Packet, peer: PeerIo) => void;

export interface PeerIo {
  send(header: Partial<PacketHeader> & { procedure: number; serial: number }, payload?: Uint8Array): void;
  reply(p: Packet, payload?: Uint8Array): void;
  replyError(p: Packet, code: number, message: string): void;
  raw(bytes: Buffer): void;
  hangup(): void;
}

export function errorPayload(code: number, message: string, domain = 10): Buffer {
  const w = new XdrWriter();
  w.int(code)
    .int(domain)
    .optional(message, (x, m) => x.string(m))
    .int(2);
  w.bool(false).bool(false).bool(false).bool(false).int(0).int(0).bool(false);
  return w.toBuffer();
}

function makeIo(write: (b: Buffer) => void, hangup: () => void): PeerIo {
  const io: PeerIo = {
    send: (h, payload) => write(encodePacket({ program: REMOTE_PROGRAM, version: REMOTE_PROTOCOL_VERSION, type: MessageType.Reply, status: MessageStatus.Ok, ...h }, payload)),
    reply: (p, payload) => io.send({ procedure: p.header.procedure, serial: p.header.serial }, payload),
    replyError: (p, code, message) => io.send({ procedure: p.header.procedure, serial: p.header.serial, status: MessageStatus.Error }, errorPayload(code, message)),
    raw: write,
    hangup,
  };
  return io;
}

/** An in-memory connection: what the client writes is decoded and handed to `handler`. */
export class FakeConnection extends Duplex {
  readonly written: Buffer[] = [];
  readonly packets: Packet[] = [];
  private readonly decoder = new PacketDecoder();
  readonly io: PeerIo;

  constructor(private readonly handler: PeerHandler = () => undefined) {
    super();
    this.io = makeIo(
      (b) => this.push(b),
      () => this.push(null),
    );
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.written.push(chunk);
    try {
      for (const p of this.decoder.push(chunk)) {
        this.packets.push(p);
        this.handler(p, this.io);
      }
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }
}

export class FakeDialer implements Dialer {
  readonly description = 'fake';
  readonly connections: FakeConnection[] = [];
  constructor(private readonly handler: PeerHandler = () => undefined) {}
  async dial(): Promise<Duplex> {
    const c = new FakeConnection(this.handler);
    this.connections.push(c);
    return c;
  }
}

/** A fake daemon on a temporary UNIX socket. */
export class FakeDaemon {
  readonly dir = mkdtempSync(join(tmpdir(), 'koala-fake-libvirtd-'));
  readonly path = join(this.dir, 'sock');
  readonly sockets = new Set<Socket>();
  private server: Server;

  constructor(handler: PeerHandler) {
    this.server = createServer((sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
      sock.on('error', () => undefined);
      const dec = new PacketDecoder();
      const io = makeIo(
        (b) => sock.write(b),
        () => sock.destroy(),
      );
      sock.on('data', (chunk) => {
        for (const p of dec.push(chunk)) handler(p, io);
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((res) => this.server.listen(this.path, res));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Handler answering the connect handshake (auth list, open, supports feature, close). */
export function handshakeHandler(next: PeerHandler = () => undefined): PeerHandler {
  return (p, io) => {
    switch (p.header.procedure) {
      case 66: // AUTH_LIST -> [REMOTE_AUTH_NONE]
        io.reply(p, new XdrWriter().uint(1).int(0).toBuffer());
        return;
      case 1: // CONNECT_OPEN
      case 2: // CONNECT_CLOSE
        io.reply(p);
        return;
      case 60: // CONNECT_SUPPORTS_FEATURE -> no (keepalive off in fakes unless a test wants it)
        io.reply(p, new XdrWriter().int(0).toBuffer());
        return;
      default:
        next(p, io);
    }
  };
}
