import { spawn, type ChildProcess } from 'node:child_process';
import type { ZoneNetworkState } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import type { NetworkStateView } from '../network/network-state-view.js';

export interface RelaySupervisorOptions {
  node: string;
  view: NetworkStateView;
  /** The compiled relay (`dist/apps/node-controller/src/metadata/relay-main.js`). */
  entry: string;
  socketPath: string;
  port: number;
  /** `KOALA_NODE_NETNS`: the relay runs inside it (`ip netns exec NS node ...`); empty: here. */
  netns?: string;
  nodeBinary?: string;
  /** The conntrack mark bit for IMDSv2 token connections (the hop limit); unset: not marked. */
  tokenMark?: number;
  /** Delay before restarting a relay that died; doubles up to 30 s, reset once one runs 10 s. */
  restartDelayMs?: number;
  logger?: Logger;
}

/** The command line of the relay for an address (pure, for the spec and the logs). */
export function relayCommand(o: Pick<RelaySupervisorOptions, 'entry' | 'socketPath' | 'port' | 'netns' | 'nodeBinary' | 'tokenMark'>, address: string): string[] {
  const node = [o.nodeBinary ?? process.execPath, o.entry, '--listen', `${address}:${o.port}`, '--socket', o.socketPath];
  if (o.tokenMark !== undefined) node.push('--token-mark', `0x${o.tokenMark.toString(16)}`);
  return o.netns ? ['ip', 'netns', 'exec', o.netns, ...node] : node;
}

/**
 * Keeps one relay process running on this node's address: (re)started when an applied network
 * state gives the node an address (or a new one), restarted when it dies, stopped with the NC.
 */
export class RelaySupervisor {
  private child?: ChildProcess;
  private address?: string;
  private stopped = false;
  private unsubscribe?: () => void;
  private restartTimer?: NodeJS.Timeout;
  private delay: number;
  private startedAt = 0;
  private readyWaiters: (() => void)[] = [];
  private isReady = false;
  /** How many relays have been spawned (tests watch restarts). */
  spawned = 0;

  constructor(private readonly o: RelaySupervisorOptions) {
    this.delay = o.restartDelayMs ?? 500;
  }

  start(): void {
    this.unsubscribe = this.o.view.onApplied((s) => this.onState(s));
    const now = this.o.view.current();
    if (now) this.onState(now);
  }

  /** Resolves once a relay has said it listens (the current one). */
  ready(): Promise<void> {
    if (this.isReady) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.restartTimer);
    await this.kill();
  }

  private onState(state: ZoneNetworkState): void {
    if (this.stopped) return;
    const address = state.nodes.find((n) => n.node === this.o.node)?.address;
    if (!address || address === this.address) return;
    this.address = address;
    void this.kill().then(() => this.spawn());
  }

  private spawn(): void {
    if (this.stopped || !this.address || this.child) return;
    const [cmd, ...args] = relayCommand(this.o, this.address);
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.spawned++;
    this.isReady = false;
    this.startedAt = Date.now();
    this.o.logger?.info({ pid: child.pid, address: this.address, port: this.o.port, netns: this.o.netns || undefined }, 'metadata relay started');
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      if (this.isReady || this.child !== child) return;
      out += d.toString();
      if (out.includes('listening ')) {
        this.isReady = true;
        for (const w of this.readyWaiters.splice(0)) w();
      }
    });
    child.stderr!.on('data', (d: Buffer) => this.o.logger?.warn({ pid: child.pid, stderr: d.toString().slice(0, 2000) }, 'metadata relay says'));
    child.on('error', (err) => this.o.logger?.error({ err }, 'metadata relay could not be spawned'));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.isReady = false;
      if (this.stopped) return;
      if (Date.now() - this.startedAt > 10_000) this.delay = this.o.restartDelayMs ?? 500;
      this.o.logger?.warn({ code, signal, restartInMs: this.delay }, 'metadata relay exited; restarting');
      this.restartTimer = setTimeout(() => this.spawn(), this.delay);
      this.delay = Math.min(this.delay * 2, 30_000);
    });
  }

  private async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    this.isReady = false;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  }
}
