import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect as tcpConnect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitForPort(port: number, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open`);
}

/** A private nats-server on a free loopback port, so tests may stop and restart it. */
export class TestNatsServer {
  private proc?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'koala-nats-'));
  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[],
  ) {}

  /** `extraArgs`: more nats-server flags, e.g. `--user u --pass p` or `--tls --tlscert ...`. */
  static async start(extraArgs: readonly string[] = []): Promise<TestNatsServer> {
    const s = new TestNatsServer(await freePort(), extraArgs);
    await s.restart();
    return s;
  }

  get url() {
    return `nats://127.0.0.1:${this.port}`;
  }

  async restart() {
    // A configuration file (`-c`) brings its own JetStream store (nats-server refuses it twice).
    const js = this.extraArgs.includes('-c') ? [] : ['-js', '-sd', this.dir];
    this.proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(this.port), ...js, ...this.extraArgs], { stdio: 'ignore' });
    await waitForPort(this.port);
  }

  async stop() {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  async dispose() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
