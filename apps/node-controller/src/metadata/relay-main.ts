/**
 * koala-metadata-relay: accepts guests' metadata connections on the node address (TCP, in the
 * node's network namespace) and hands each to the NC's metadata server over its UNIX socket,
 * prefixed with a PROXY v1 line carrying the real peer address. No Nest, no Koala imports: it
 * runs as its own small process (`node relay-main.js --listen ADDR:PORT --socket PATH`).
 */
import { execFile } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';

export interface RelayOptions {
  host: string;
  port: number;
  socketPath: string;
  /** Connections at once; more are refused (closed at accept). */
  maxConnections?: number;
  /** A connection with no traffic either way for this long is closed. */
  idleMs?: number;
  /**
   * Called once per connection, before the request is passed on, when the guest's byte stream
   * holds an IMDSv2 token request: marks the connection so the node's TTL rule gives the answer
   * the instance's hop limit. A rejection closes the connection (no token without the limit).
   */
  markTokenConnection?: (peer: { address: string; port: number }) => Promise<void>;
}

/** The start of every token request the metadata server accepts (`PUT /latest/api/token[/][?…]`). */
export const TOKEN_REQUEST = Buffer.from('PUT /latest/api/token');

/** Finds TOKEN_REQUEST in a byte stream read in chunks, however the chunks split it. */
export class TokenRequestWatcher {
  private tail = Buffer.alloc(0);

  /** Whether the stream so far, up to and including `chunk`, holds a token request. */
  seen(chunk: Buffer): boolean {
    const joined = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    if (joined.includes(TOKEN_REQUEST)) return true;
    this.tail = Buffer.from(joined.subarray(Math.max(0, joined.length - (TOKEN_REQUEST.length - 1))));
    return false;
  }
}

/** Sets `mark` (a bit mask) on the conntrack entry of the guest's connection, in this namespace. */
export function conntrackMarker(mark: number): NonNullable<RelayOptions['markTokenConnection']> {
  const m = `0x${mark.toString(16)}`;
  return (peer) =>
    new Promise((resolve, reject) => {
      const args = ['-U', '-p', 'tcp', '-s', peer.address, '--sport', String(peer.port), '--mark', `${m}/${m}`];
      execFile('conntrack', args, { timeout: 5000 }, (err, _stdout, stderr) => (err ? reject(new Error(`conntrack ${args.join(' ')}: ${String(stderr).trim() || err.message}`)) : resolve()));
    });
}

export interface Relay {
  server: Server;
  /** The port actually bound (when asked for 0). */
  port: number;
  close(): Promise<void>;
}

const v4 = (a: string | undefined) => (a?.startsWith('::ffff:') ? a.slice(7) : a);

export async function startRelay(o: RelayOptions): Promise<Relay> {
  const live = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const src = v4(client.remoteAddress);
    const dst = v4(client.localAddress);
    if (!src || !dst || !/^[0-9.]+$/.test(src) || !/^[0-9.]+$/.test(dst)) {
      client.destroy();
      return;
    }
    const upstream = connect({ path: o.socketPath, allowHalfOpen: true });
    live.add(client);
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    client.once('close', () => {
      live.delete(client);
      upstream.destroy();
    });
    upstream.once('close', () => client.destroy());
    client.on('error', kill);
    upstream.on('error', kill);
    client.setTimeout(o.idleMs ?? 30_000, kill);
    upstream.setTimeout(o.idleMs ?? 30_000, kill);
    upstream.write(`PROXY TCP4 ${src} ${dst} ${client.remotePort} ${client.localPort}\r\n`);
    upstream.pipe(client);
    if (!o.markTokenConnection) {
      client.pipe(upstream);
      return;
    }
    // Pass the guest's bytes on by hand: the chunk that completes a token request waits until
    // the connection is marked, so the server's answer already leaves with the hop limit.
    const mark = o.markTokenConnection;
    const watcher = new TokenRequestWatcher();
    let marked = false;
    const forward = (chunk: Buffer) => {
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    };
    client.on('data', (chunk: Buffer) => {
      if (marked || !watcher.seen(chunk)) return forward(chunk);
      client.pause();
      mark({ address: src, port: client.remotePort! }).then(
        () => {
          marked = true;
          forward(chunk);
          if (!upstream.writableNeedDrain) client.resume();
        },
        (err: unknown) => {
          process.stderr.write(`koala-metadata-relay: token connection not marked, closed: ${(err as Error).message}\n`);
          kill();
        },
      );
    });
    client.on('end', () => upstream.end());
  });
  server.maxConnections = o.maxConnections ?? 128;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.host, port: o.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  return {
    server,
    port: typeof addr === 'object' && addr ? addr.port : o.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of live) s.destroy();
      }),
  };
}

/**
 * `--listen ADDR:PORT --socket PATH [--max-connections N] [--idle-ms N] [--token-mark HEX]`;
 * throws on bad input. `--token-mark`: the conntrack mark bit for token connections.
 */
export function parseRelayArgs(argv: readonly string[]): RelayOptions {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (!k.startsWith('--') || v === undefined) throw new Error(`bad argument ${JSON.stringify(k)}`);
    args.set(k.slice(2), v);
  }
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(args.get('listen') ?? '');
  if (!m || Number(m[2]) > 65535) throw new Error('--listen ADDR:PORT (IPv4) is required');
  const socketPath = args.get('socket');
  if (!socketPath?.startsWith('/')) throw new Error('--socket PATH (absolute) is required');
  const num = (k: string) => {
    const v = args.get(k);
    if (v === undefined) return undefined;
    if (!/^\d{1,9}$/.test(v) || Number(v) < 1) throw new Error(`--${k} must be a positive integer`);
    return Number(v);
  };
  const maxConnections = num('max-connections');
  const idleMs = num('idle-ms');
  const tokenMark = args.get('token-mark');
  if (tokenMark !== undefined && !/^0x[0-9a-f]{1,8}$/.test(tokenMark)) throw new Error('--token-mark must be a hexadecimal mark (0x…)');
  return {
    host: m[1]!,
    port: Number(m[2]),
    socketPath,
    ...(maxConnections ? { maxConnections } : {}),
    ...(idleMs ? { idleMs } : {}),
    ...(tokenMark ? { markTokenConnection: conntrackMarker(Number(tokenMark)) } : {}),
  };
}

async function main(): Promise<void> {
  let o: RelayOptions;
  try {
    o = parseRelayArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`koala-metadata-relay: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const relay = await startRelay(o);
  // The supervisor waits for this line before it calls the relay up.
  process.stdout.write(`listening ${o.host}:${relay.port}\n`);
  const quit = () => void relay.close().then(() => process.exit(0));
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`koala-metadata-relay: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
