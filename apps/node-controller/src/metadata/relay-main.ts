/**
 * koala-metadata-relay: accepts guests' metadata connections on the node address (TCP, in the
 * node's network namespace) and hands each to the NC's metadata server over its UNIX socket,
 * prefixed with a PROXY v1 line carrying the real peer address. No Nest, no Koala imports: it
 * runs as its own small process (`node relay-main.js --listen ADDR:PORT --socket PATH`).
 */
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
    client.pipe(upstream);
    upstream.pipe(client);
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

/** `--listen ADDR:PORT --socket PATH [--max-connections N] [--idle-ms N]`; throws on bad input. */
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
  return { host: m[1]!, port: Number(m[2]), socketPath, ...(maxConnections ? { maxConnections } : {}), ...(idleMs ? { idleMs } : {}) };
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
