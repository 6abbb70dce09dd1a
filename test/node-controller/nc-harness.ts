// Helpers for the node controller's integration tests: an NC in-process (wired by nodeModule as
// in production), a NATS watcher for its heartbeats and instance events, and a tiny HTTP server
// on 127.0.0.1 the image cache downloads from.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { EventSubjects, InstanceEvent, NodeHeartbeat, nodeConsoleOutput, nodeInstanceAction, runInstance, type ImageBlob, type InstanceAction, type InstanceSpec } from '@koala/contracts';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { nodeModule, type NodeModuleOverrides } from '../../apps/node-controller/src/node.module.js';

export const newInstanceId = () => `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function ncConfig(env: Record<string, string>): KoalaConfig {
  return loadConfig({ KOALA_LOG_LEVEL: 'warn', KOALA_HEARTBEAT_MS: '300', ...env });
}

export async function startNc(config: KoalaConfig, overrides: NodeModuleOverrides = {}) {
  const { app, ctx } = await startDaemon('node-controller', (c) => nodeModule(c, overrides), { zoned: true, config });
  return { app, ctx, close: () => app.close() };
}

/** Watches one zone: heartbeats of a node and instance events, and drives the NC's commands. */
export class ZoneWatcher {
  readonly events: InstanceEvent[] = [];
  readonly heartbeats: NodeHeartbeat[] = [];
  private constructor(
    readonly bus: NatsBus,
    readonly zone: string,
    readonly node: string,
  ) {
    bus.subscribe(EventSubjects.instance(zone), InstanceEvent, (e) => void this.events.push(e));
    bus.subscribe(`koala.v1.zone.${zone}.node.heartbeat`, NodeHeartbeat, (h) => {
      if (h.node === node) this.heartbeats.push(h);
    });
  }

  static async open(natsUrl: string, zone: string, node: string) {
    const bus = await NatsBus.connect({ url: natsUrl, name: 'nc-test-watcher' });
    const w = new ZoneWatcher(bus, zone, node);
    await bus.flush();
    return w;
  }

  states(id: string) {
    return this.events.filter((e) => e.instanceId === id).map((e) => e.state);
  }

  async waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events: ${JSON.stringify(this.events.map((e) => [e.instanceId, e.state, e.reason?.message]))}`);
      await sleep(100);
    }
  }

  /** Waits until the instance's events end with `states` (after `from` events of it). */
  waitForStates(id: string, states: string[], timeoutMs = 30_000) {
    return this.waitFor(
      `${id} -> ${states.join(',')}`,
      () => {
        const s = this.states(id);
        if (s.includes('failed')) throw new Error(`${id} failed: ${JSON.stringify(this.events.filter((e) => e.instanceId === id).at(-1)?.reason)}`);
        return s.length >= states.length && s.slice(-states.length).join() === states.join() && s;
      },
      timeoutMs,
    );
  }

  /** The next heartbeat (sent after now) satisfying pred. */
  async heartbeat(pred: (h: NodeHeartbeat) => boolean, timeoutMs = 15_000): Promise<NodeHeartbeat> {
    const from = this.heartbeats.length;
    return this.waitFor('heartbeat', () => this.heartbeats.slice(from).find(pred), timeoutMs);
  }

  run(spec: InstanceSpec) {
    return this.bus.request(runInstance(this.zone, this.node), spec, { timeoutMs: 15_000 });
  }
  action(instanceId: string, action: InstanceAction, force?: boolean) {
    return this.bus.request(nodeInstanceAction(this.zone, this.node), { instanceId, node: this.node, action, ...(force ? { force } : {}) }, { timeoutMs: 15_000 });
  }
  async consoleText(instanceId: string): Promise<string> {
    const r = await this.bus.request(nodeConsoleOutput(this.zone, this.node), { instanceId, node: this.node }, { timeoutMs: 15_000 });
    return Buffer.from(r.output, 'base64').toString('utf8').replace(/\r/g, '');
  }
  close() {
    return this.bus.close();
  }
}

/** Serves files (path on disk or bytes) on 127.0.0.1 for the image cache. */
export class BlobServer {
  private constructor(
    private readonly server: Server,
    private readonly files: Map<string, string | Buffer>,
    readonly port: number,
  ) {}

  static async start(): Promise<BlobServer> {
    const files = new Map<string, string | Buffer>();
    const server = createServer((req, res) => {
      const f = files.get((req.url ?? '').split('?')[0].slice(1));
      if (f === undefined) return void res.writeHead(404).end();
      if (Buffer.isBuffer(f)) return void res.writeHead(200, { 'content-length': f.length }).end(f);
      res.writeHead(200, { 'content-length': statSync(f).size });
      createReadStream(f).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return new BlobServer(server, files, (server.address() as { port: number }).port);
  }

  /** Publishes a file or bytes and returns its ImageBlob. */
  add(imageId: string, content: string | Buffer, format: 'raw' | 'qcow2' = 'raw'): ImageBlob {
    const bytes = Buffer.isBuffer(content) ? content : readFileSync(content);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    this.files.set(sha256, content);
    return { imageId, sha256, sizeBytes: bytes.length, format, url: `http://127.0.0.1:${this.port}/${sha256}` };
  }

  close() {
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}
