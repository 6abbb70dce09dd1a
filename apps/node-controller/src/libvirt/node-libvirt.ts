import { LibvirtReconnector, type Libvirt } from '@koala/libvirt';
import type { Logger } from '@koala/logging';

export interface NodeLibvirtOptions {
  uri: string;
  socketPath: string;
}

/**
 * The node controller's one long-lived libvirt connection (shared by the host probe, the image
 * cache and the instances). Built on the lib's LibvirtReconnector: when libvirtd restarts, a
 * background loop dials again until it answers, and `onConnected` listeners run for every new
 * connection (re-subscribe to events, re-sync state).
 */
export class NodeLibvirt {
  private readonly reconnector: LibvirtReconnector;
  private readonly listeners: ((lv: Libvirt) => unknown)[] = [];
  private current?: Libvirt;
  private closed = false;
  private redialing = false;

  constructor(
    readonly opts: NodeLibvirtOptions,
    private readonly logger?: Logger,
  ) {
    this.reconnector = new LibvirtReconnector({ uri: opts.uri, socketPath: opts.socketPath }, { attempts: 5, initialDelayMs: 200, maxDelayMs: 5000 });
    this.reconnector.on('connected', (lv) => {
      this.current = lv;
      this.logger?.info({ uri: opts.uri }, 'libvirt connected');
      for (const l of this.listeners) this.notify(l, lv);
    });
    this.reconnector.on('disconnected', (err) => {
      this.current = undefined;
      if (this.closed) return;
      this.logger?.warn({ err: err.message, uri: opts.uri }, 'libvirt connection lost; reconnecting');
      void this.redial();
    });
  }

  get uri(): string {
    return this.opts.uri;
  }

  get isConnected(): boolean {
    return !!this.current && !this.current.isClosed;
  }

  /** Connects (a few attempts); on failure keeps dialing in the background. Returns whether it is connected. */
  async start(): Promise<boolean> {
    try {
      await this.reconnector.get();
      return true;
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message, uri: this.opts.uri }, 'libvirt not reachable; will keep trying');
      void this.redial();
      return false;
    }
  }

  /** The open connection (dials one if needed). */
  get(): Promise<Libvirt> {
    return this.reconnector.get();
  }

  /** Runs `fn` on the connection, once more on a fresh one if it dropped under it. */
  run<T>(fn: (lv: Libvirt) => Promise<T>): Promise<T> {
    return this.reconnector.run(fn);
  }

  /** Called for every new connection, and now if one is open. */
  onConnected(listener: (lv: Libvirt) => unknown): void {
    this.listeners.push(listener);
    if (this.current && !this.current.isClosed) this.notify(listener, this.current);
  }

  private notify(listener: (lv: Libvirt) => unknown, lv: Libvirt) {
    Promise.resolve()
      .then(() => listener(lv))
      .catch((err) => this.logger?.error({ err }, 'libvirt connected listener failed'));
  }

  private async redial() {
    if (this.redialing) return;
    this.redialing = true;
    try {
      while (!this.closed && !this.isConnected) {
        try {
          await this.reconnector.get();
        } catch {
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    } finally {
      this.redialing = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.reconnector.close();
  }
}
