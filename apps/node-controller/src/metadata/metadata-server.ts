import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '@koala/logging';
import type { NetworkStateView } from '../network/network-state-view.js';
import { answerImds, errorResponse } from './imds-request.js';
import type { ImdsTokens } from './imds-tokens.js';
import type { LaunchSpecStore } from './launch-spec-store.js';
import { readProxyHeader } from './proxy-protocol.js';

export interface MetadataServerOptions {
  /** `$KOALA_HOME/run/metadata-<node>.sock`. */
  socketPath: string;
  node: string;
  region: string;
  view: NetworkStateView;
  store: LaunchSpecStore;
  tokens: ImdsTokens;
  logger?: Logger;
  /** Connections at once (the relay bounds them too). */
  maxConnections?: number;
  /** A connection must send its PROXY line within this. */
  proxyTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this. */
  idleTimeoutMs?: number;
}

/**
 * The instance metadata service of one node: HTTP over a UNIX socket (0600) that only the relay
 * connects to. Each connection starts with the relay's PROXY v1 line; its source address is the
 * caller's identity, and nothing the guest sends can change it.
 */
export class MetadataServer {
  private readonly http: HttpServer;
  private readonly net: NetServer;
  private readonly sources = new WeakMap<Socket, string>();
  private readonly sockets = new Set<Socket>();
  private listening = false;

  constructor(private readonly o: MetadataServerOptions) {
    this.http = createHttpServer({ maxHeaderSize: 8192, requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: o.idleTimeoutMs ?? 5_000 }, (req, res) => void this.onRequest(req, res));
    this.http.on('clientError', (_err, socket) => socket.destroy());
    this.net = createNetServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => void this.onConnection(socket));
    this.net.maxConnections = o.maxConnections ?? 256;
  }

  async start(): Promise<void> {
    const path = this.o.socketPath;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    rmSync(path, { force: true });
    // Bind with a umask so the socket is never reachable by others, not even for an instant.
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.net.once('error', reject);
        this.net.listen(path, () => {
          this.net.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(old);
    }
    chmodSync(path, 0o600);
    this.listening = true;
  }

  async stop(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.net.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.http.closeAllConnections();
    await closed;
    rmSync(this.o.socketPath, { force: true });
  }

  private async onConnection(socket: Socket): Promise<void> {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    // Stays for the socket's life: an error between the PROXY line and the HTTP parser is handled.
    socket.on('error', () => socket.destroy());
    let src: string;
    try {
      src = (await readProxyHeader(socket, this.o.proxyTimeoutMs ?? 5_000)).src;
    } catch (err) {
      this.o.logger?.warn({ err: (err as Error).message }, 'metadata: connection without a valid PROXY line dropped');
      socket.destroy();
      return;
    }
    this.sources.set(socket, src);
    this.http.emit('connection', socket);
    socket.resume();
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sourceIp = this.sources.get(req.socket);
    // Bodies are never used: drain them so keep-alive works, without buffering.
    req.resume();
    let r;
    try {
      r = sourceIp
        ? await answerImds(
            { method: req.method ?? '', url: req.url ?? '', headers: req.headers, sourceIp },
            { node: this.o.node, region: this.o.region, state: this.o.view.current(), record: (id) => this.o.store.get(id), tokens: this.o.tokens },
          )
        : errorResponse(404);
    } catch (err) {
      this.o.logger?.error({ err, sourceIp, url: req.url }, 'metadata: request failed');
      r = errorResponse(500);
    }
    res.writeHead(r.status, { ...r.headers, 'content-length': String(r.body.length) });
    res.end(r.body);
  }
}
