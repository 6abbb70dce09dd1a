/**
 * `Libvirt`: the hand-written, Promise-based facade over the remote procedures.
 *
 *   const lv = await Libvirt.connect({ uri: 'test:///default' });
 *   const dom = await lv.lookupDomainByName('test');
 *   await lv.destroyDomain(dom);
 *   await lv.close();
 */
import { EventEmitter, once } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import {
  VIR_CONNECT_RO,
  VIR_DOMAIN_AFFECT_LIVE,
  VIR_DOMAIN_EVENT_ID_LIFECYCLE,
  domainEventName,
  type DomainEventName,
} from './constants.js';
import {
  Proc,
  Procedures,
  REMOTE_AUTH_NONE,
  REMOTE_AUTH_POLKIT,
  VIR_DRV_FEATURE_PROGRAM_KEEPALIVE,
  decodeLifecycleEvent,
  type Domain,
  type DomainInfo,
  type DomainStateInfo,
  type NodeInfo,
  type Secret,
  type StoragePool,
  type StoragePoolInfo,
  type StorageVol,
  type StorageVolInfo,
} from './procedures.js';
import { LibvirtConnectionClosedError, LibvirtError, RpcClient, VIR_ERR_AUTH_FAILED, withRetry, type RetryOptions } from './rpc.js';
import { Transport, UnixDialer, type Dialer } from './transport.js';

export interface LibvirtConnectOptions {
  /** Connection URI; default `qemu:///system`. */
  uri?: string;
  /** How to reach the daemon; default a UNIX socket at `socketPath`. */
  dialer?: Dialer;
  /** Default `/var/run/libvirt/libvirt-sock`. */
  socketPath?: string;
  readonly?: boolean;
  /** Keepalive interval (ms); 0 disables. Default 5000. */
  keepaliveIntervalMs?: number;
  keepaliveCount?: number;
  /** Per-subscriber event queue bound (oldest events are dropped beyond it). Default 10000. */
  eventQueueMax?: number;
}

export interface DomainLifecycleEvent {
  domain: Domain;
  event: number;
  eventName: DomainEventName;
  detail: number;
}

export interface StreamRange {
  offset?: number;
  /** 0 = to the end. */
  length?: number;
  flags?: number;
}

export interface LibvirtEvents {
  close: [LibvirtConnectionClosedError];
}

/** Splits libvirt's packed version number (major * 1e6 + minor * 1e3 + release). */
export function formatLibvirtVersion(v: number | bigint): string {
  const n = Number(v);
  return `${Math.floor(n / 1_000_000)}.${Math.floor(n / 1000) % 1000}.${n % 1000}`;
}

export class Libvirt extends EventEmitter<LibvirtEvents> {
  readonly procedures: Procedures;
  private readonly subscriptions = new Map<number, DomainEventSubscription>();
  private closing: Promise<void> | undefined;

  private constructor(
    readonly rpc: RpcClient,
    readonly uri: string,
    private readonly eventQueueMax: number,
  ) {
    super();
    this.procedures = new Procedures(rpc);
    rpc.on('event', (proc, payload) => this.onEvent(proc, payload));
    rpc.on('close', (err) => {
      for (const s of this.subscriptions.values()) s.fail(err);
      this.subscriptions.clear();
      this.emit('close', err);
    });
  }

  /** Dials the daemon, authenticates (none/polkit), opens `uri` and turns on keepalive. */
  static async connect(opts: LibvirtConnectOptions = {}): Promise<Libvirt> {
    const dialer = opts.dialer ?? new UnixDialer(opts.socketPath);
    const stream = await dialer.dial();
    const rpc = new RpcClient(new Transport(stream), {
      keepaliveIntervalMs: opts.keepaliveIntervalMs,
      keepaliveCount: opts.keepaliveCount,
    });
    const uri = opts.uri ?? 'qemu:///system';
    const lv = new Libvirt(rpc, uri, opts.eventQueueMax ?? 10_000);
    try {
      const types = await lv.procedures.authList();
      if (!types.includes(REMOTE_AUTH_NONE)) {
        if (types.includes(REMOTE_AUTH_POLKIT)) {
          if (!(await lv.procedures.authPolkit())) throw new LibvirtError(VIR_ERR_AUTH_FAILED, 0, 'polkit authentication failed');
        } else {
          throw new LibvirtError(VIR_ERR_AUTH_FAILED, 0, `unsupported authentication types offered: ${types.join(',')}`);
        }
      }
      await lv.procedures.connectOpen(uri, opts.readonly ? VIR_CONNECT_RO : 0);
      if (await lv.procedures.connectSupportsFeature(VIR_DRV_FEATURE_PROGRAM_KEEPALIVE)) rpc.startKeepalive();
    } catch (err) {
      rpc.close();
      throw err;
    }
    return lv;
  }

  get isClosed(): boolean {
    return this.rpc.isClosed;
  }

  /** Closes the libvirt connection (CONNECT_CLOSE) and the socket. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.rpc.isClosed) {
        try {
          await this.procedures.connectClose();
        } catch {
          // the socket goes away anyway
        }
      }
      this.rpc.close();
    })();
    return this.closing;
  }

  // --- host -----------------------------------------------------------------------------------
  getHostname(): Promise<string> {
    return this.procedures.connectGetHostname();
  }
  /** Hypervisor version, packed (e.g. 7002000 for QEMU 7.2.0; see formatLibvirtVersion). */
  async getVersion(): Promise<number> {
    return Number(await this.procedures.connectGetVersion());
  }
  async getLibVersion(): Promise<number> {
    return Number(await this.procedures.connectGetLibVersion());
  }
  getType(): Promise<string> {
    return this.procedures.connectGetType();
  }
  getCapabilities(): Promise<string> {
    return this.procedures.connectGetCapabilities();
  }
  getNodeInfo(): Promise<NodeInfo> {
    return this.procedures.nodeGetInfo();
  }
  /** Free host memory in bytes. */
  async getNodeFreeMemory(): Promise<number> {
    return Number(await this.procedures.nodeGetFreeMemory());
  }

  // --- domains --------------------------------------------------------------------------------
  async listAllDomains(flags = 0): Promise<Domain[]> {
    return (await this.procedures.connectListAllDomains(flags)).domains;
  }
  lookupDomainByName(name: string): Promise<Domain> {
    return this.procedures.domainLookupByName(name);
  }
  lookupDomainByUuid(uuid: string): Promise<Domain> {
    return this.procedures.domainLookupByUuid(uuid);
  }
  lookupDomainById(id: number): Promise<Domain> {
    return this.procedures.domainLookupById(id);
  }
  defineDomain(xml: string, flags = 0): Promise<Domain> {
    return flags ? this.procedures.domainDefineXmlFlags(xml, flags) : this.procedures.domainDefineXml(xml);
  }
  /** Creates and starts a transient domain. */
  createDomainXml(xml: string, flags = 0): Promise<Domain> {
    return this.procedures.domainCreateXml(xml, flags);
  }
  /** Starts a defined domain; returns it with its new runtime id. */
  startDomain(dom: Domain, flags = 0): Promise<Domain> {
    return this.procedures.domainCreateWithFlags(dom, flags);
  }
  shutdownDomain(dom: Domain, flags = 0): Promise<void> {
    return flags ? this.procedures.domainShutdownFlags(dom, flags) : this.procedures.domainShutdown(dom);
  }
  rebootDomain(dom: Domain, flags = 0): Promise<void> {
    return this.procedures.domainReboot(dom, flags);
  }
  destroyDomain(dom: Domain, flags = 0): Promise<void> {
    return flags ? this.procedures.domainDestroyFlags(dom, flags) : this.procedures.domainDestroy(dom);
  }
  suspendDomain(dom: Domain): Promise<void> {
    return this.procedures.domainSuspend(dom);
  }
  resumeDomain(dom: Domain): Promise<void> {
    return this.procedures.domainResume(dom);
  }
  undefineDomain(dom: Domain, flags = 0): Promise<void> {
    return flags ? this.procedures.domainUndefineFlags(dom, flags) : this.procedures.domainUndefine(dom);
  }
  isDomainActive(dom: Domain): Promise<boolean> {
    return this.procedures.domainIsActive(dom);
  }
  getDomainInfo(dom: Domain): Promise<DomainInfo> {
    return this.procedures.domainGetInfo(dom);
  }
  getDomainState(dom: Domain): Promise<DomainStateInfo> {
    return this.procedures.domainGetState(dom);
  }
  getDomainXml(dom: Domain, flags = 0): Promise<string> {
    return this.procedures.domainGetXmlDesc(dom, flags);
  }
  /** Attaches a device; flags are VIR_DOMAIN_AFFECT_* (default LIVE). */
  attachDevice(dom: Domain, xml: string, flags = VIR_DOMAIN_AFFECT_LIVE): Promise<void> {
    return this.procedures.domainAttachDeviceFlags(dom, xml, flags);
  }
  detachDevice(dom: Domain, xml: string, flags = VIR_DOMAIN_AFFECT_LIVE): Promise<void> {
    return this.procedures.domainDetachDeviceFlags(dom, xml, flags);
  }

  // --- storage pools --------------------------------------------------------------------------
  async listAllStoragePools(flags = 0): Promise<StoragePool[]> {
    return (await this.procedures.connectListAllStoragePools(flags)).pools;
  }
  lookupStoragePoolByName(name: string): Promise<StoragePool> {
    return this.procedures.storagePoolLookupByName(name);
  }
  lookupStoragePoolByUuid(uuid: string): Promise<StoragePool> {
    return this.procedures.storagePoolLookupByUuid(uuid);
  }
  lookupStoragePoolByVolume(vol: StorageVol): Promise<StoragePool> {
    return this.procedures.storagePoolLookupByVolume(vol);
  }
  defineStoragePool(xml: string, flags = 0): Promise<StoragePool> {
    return this.procedures.storagePoolDefineXml(xml, flags);
  }
  buildStoragePool(pool: StoragePool, flags = 0): Promise<void> {
    return this.procedures.storagePoolBuild(pool, flags);
  }
  /** Starts (activates) a defined pool. */
  createStoragePool(pool: StoragePool, flags = 0): Promise<void> {
    return this.procedures.storagePoolCreate(pool, flags);
  }
  destroyStoragePool(pool: StoragePool): Promise<void> {
    return this.procedures.storagePoolDestroy(pool);
  }
  /** Deletes the pool's underlying storage (e.g. removes the directory). */
  deleteStoragePool(pool: StoragePool, flags = 0): Promise<void> {
    return this.procedures.storagePoolDelete(pool, flags);
  }
  undefineStoragePool(pool: StoragePool): Promise<void> {
    return this.procedures.storagePoolUndefine(pool);
  }
  refreshStoragePool(pool: StoragePool, flags = 0): Promise<void> {
    return this.procedures.storagePoolRefresh(pool, flags);
  }
  getStoragePoolInfo(pool: StoragePool): Promise<StoragePoolInfo> {
    return this.procedures.storagePoolGetInfo(pool);
  }
  getStoragePoolXml(pool: StoragePool, flags = 0): Promise<string> {
    return this.procedures.storagePoolGetXmlDesc(pool, flags);
  }
  getStoragePoolAutostart(pool: StoragePool): Promise<boolean> {
    return this.procedures.storagePoolGetAutostart(pool);
  }
  setStoragePoolAutostart(pool: StoragePool, autostart: boolean): Promise<void> {
    return this.procedures.storagePoolSetAutostart(pool, autostart);
  }

  // --- storage volumes ------------------------------------------------------------------------
  async listAllVolumes(pool: StoragePool, flags = 0): Promise<StorageVol[]> {
    return (await this.procedures.storagePoolListAllVolumes(pool, flags)).vols;
  }
  lookupVolumeByName(pool: StoragePool, name: string): Promise<StorageVol> {
    return this.procedures.storageVolLookupByName(pool, name);
  }
  lookupVolumeByPath(path: string): Promise<StorageVol> {
    return this.procedures.storageVolLookupByPath(path);
  }
  lookupVolumeByKey(key: string): Promise<StorageVol> {
    return this.procedures.storageVolLookupByKey(key);
  }
  createVolume(pool: StoragePool, xml: string, flags = 0): Promise<StorageVol> {
    return this.procedures.storageVolCreateXml(pool, xml, flags);
  }
  /** Creates a volume as a copy (clone) of `source`. */
  createVolumeFrom(pool: StoragePool, xml: string, source: StorageVol, flags = 0): Promise<StorageVol> {
    return this.procedures.storageVolCreateXmlFrom(pool, xml, source, flags);
  }
  deleteVolume(vol: StorageVol, flags = 0): Promise<void> {
    return this.procedures.storageVolDelete(vol, flags);
  }
  getVolumeInfo(vol: StorageVol): Promise<StorageVolInfo> {
    return this.procedures.storageVolGetInfo(vol);
  }
  getVolumePath(vol: StorageVol): Promise<string> {
    return this.procedures.storageVolGetPath(vol);
  }
  getVolumeXml(vol: StorageVol, flags = 0): Promise<string> {
    return this.procedures.storageVolGetXmlDesc(vol, flags);
  }
  resizeVolume(vol: StorageVol, capacity: number | bigint, flags = 0): Promise<void> {
    return this.procedures.storageVolResize(vol, capacity, flags);
  }

  /** Writes `source` into the volume through a libvirt stream. */
  async uploadVolume(
    vol: StorageVol,
    source: Uint8Array | Readable | AsyncIterable<Uint8Array>,
    range: StreamRange = {},
  ): Promise<void> {
    const length = range.length ?? (source instanceof Uint8Array ? source.length : 0);
    const stream = await this.procedures.storageVolUpload(vol, range.offset ?? 0, length, range.flags ?? 0);
    try {
      if (source instanceof Uint8Array) {
        await stream.write(source);
      } else {
        for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
          await stream.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
        }
      }
    } catch (err) {
      await stream.abort();
      throw err;
    }
    await stream.finish();
  }

  /** Reads the volume (or a range of it) into a Buffer. */
  async downloadVolume(vol: StorageVol, range: StreamRange = {}): Promise<Buffer> {
    const stream = await this.procedures.storageVolDownload(vol, range.offset ?? 0, range.length ?? 0, range.flags ?? 0);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c);
    return Buffer.concat(chunks);
  }

  /** Streams the volume into `target` (honouring its back-pressure); returns the byte count. */
  async downloadVolumeTo(vol: StorageVol, target: Writable, range: StreamRange = {}): Promise<number> {
    const stream = await this.procedures.storageVolDownload(vol, range.offset ?? 0, range.length ?? 0, range.flags ?? 0);
    let n = 0;
    try {
      for await (const c of stream) {
        n += c.length;
        if (!target.write(c)) await once(target, 'drain');
      }
    } catch (err) {
      await stream.abort();
      throw err;
    }
    return n;
  }

  // --- secrets --------------------------------------------------------------------------------
  async listAllSecrets(flags = 0): Promise<Secret[]> {
    return (await this.procedures.connectListAllSecrets(flags)).secrets;
  }
  defineSecret(xml: string, flags = 0): Promise<Secret> {
    return this.procedures.secretDefineXml(xml, flags);
  }
  getSecretXml(secret: Secret, flags = 0): Promise<string> {
    return this.procedures.secretGetXmlDesc(secret, flags);
  }
  setSecretValue(secret: Secret, value: Uint8Array | string, flags = 0): Promise<void> {
    return this.procedures.secretSetValue(secret, typeof value === 'string' ? Buffer.from(value) : value, flags);
  }
  getSecretValue(secret: Secret, flags = 0): Promise<Buffer> {
    return this.procedures.secretGetValue(secret, flags);
  }
  lookupSecretByUuid(uuid: string): Promise<Secret> {
    return this.procedures.secretLookupByUuid(uuid);
  }
  lookupSecretByUsage(usageType: number, usageId: string): Promise<Secret> {
    return this.procedures.secretLookupByUsage(usageType, usageId);
  }
  undefineSecret(secret: Secret): Promise<void> {
    return this.procedures.secretUndefine(secret);
  }

  // --- events ---------------------------------------------------------------------------------
  /**
   * Subscribes to domain lifecycle events (all domains, or only `domain`). Each subscription
   * has its own server-side callback id and its own queue; call `close()` to deregister.
   */
  async subscribeDomainLifecycle(domain: Domain | null = null): Promise<DomainEventSubscription> {
    const id = await this.procedures.connectDomainEventCallbackRegisterAny(VIR_DOMAIN_EVENT_ID_LIFECYCLE, domain);
    const sub = new DomainEventSubscription(this, id, this.eventQueueMax);
    this.subscriptions.set(id, sub);
    return sub;
  }

  /** @internal */
  async unsubscribe(sub: DomainEventSubscription): Promise<void> {
    if (!this.subscriptions.delete(sub.callbackId)) return;
    if (!this.rpc.isClosed) await this.procedures.connectDomainEventCallbackDeregisterAny(sub.callbackId);
  }

  private onEvent(proc: number, payload: Buffer): void {
    if (proc !== Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE) return; // other events are not subscribed to
    let msg;
    try {
      msg = decodeLifecycleEvent(payload);
    } catch {
      return; // a malformed event must not take the reader down
    }
    const sub = this.subscriptions.get(msg.callbackId);
    sub?.push({ domain: msg.domain, event: msg.event, eventName: domainEventName(msg.event), detail: msg.detail });
  }
}

export interface DomainEventSubscriptionEvents {
  event: [DomainLifecycleEvent];
  close: [Error | undefined];
}

/**
 * One subscriber's view of lifecycle events: an EventEmitter (`event`) and an async iterator.
 * Events are queued and delivered asynchronously, so a slow consumer never stalls the socket
 * reader; past `queueMax` undelivered events the oldest are dropped (`dropped` counts them).
 */
export class DomainEventSubscription extends EventEmitter<DomainEventSubscriptionEvents> implements AsyncIterable<DomainLifecycleEvent> {
  private readonly queue: DomainLifecycleEvent[] = [];
  private waiter: (() => void) | undefined;
  private finished = false;
  private error: Error | undefined;
  dropped = 0;

  constructor(
    private readonly owner: Libvirt,
    readonly callbackId: number,
    private readonly queueMax: number,
  ) {
    super();
  }

  /** @internal called by the connection's reader */
  push(ev: DomainLifecycleEvent): void {
    if (this.finished) return;
    if (this.listenerCount('event') > 0) setImmediate(() => this.emit('event', ev));
    this.queue.push(ev);
    if (this.queue.length > this.queueMax) {
      this.queue.shift();
      this.dropped++;
    }
    this.wake();
  }

  /** @internal */
  fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.error = err;
    this.wake();
    setImmediate(() => this.emit('close', err));
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Waits for the next event matching `pred` (consuming events from the iterator queue). */
  async next(pred: (ev: DomainLifecycleEvent) => boolean = () => true, timeoutMs = 10_000): Promise<DomainLifecycleEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex(pred);
      if (i >= 0) return this.queue.splice(i, 1)[0];
      if (this.error) throw this.error;
      if (this.finished) throw new Error('subscription closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching domain event within ${timeoutMs} ms`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiter = () => {
          clearTimeout(t);
          res();
        };
      });
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<DomainLifecycleEvent> {
    for (;;) {
      const ev = this.queue.shift();
      if (ev) {
        yield ev;
        continue;
      }
      if (this.error) throw this.error;
      if (this.finished) return;
      await new Promise<void>((res) => (this.waiter = res));
    }
  }

  /** Deregisters the callback on the daemon and ends the iterator. */
  async close(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.wake();
    await this.owner.unsubscribe(this);
    this.emit('close', undefined);
  }
}

/** Connects, retrying with exponential back-off (e.g. while libvirtd is restarting). */
export function connectWithRetry(opts: LibvirtConnectOptions = {}, retry: RetryOptions = {}): Promise<Libvirt> {
  return withRetry(() => Libvirt.connect(opts), retry);
}

export interface LibvirtReconnectorEvents {
  connected: [Libvirt];
  disconnected: [LibvirtConnectionClosedError];
}

/**
 * Keeps one live connection for callers that outlive daemon restarts: `get()` returns the
 * open connection or dials a new one (one dial at a time); `run(fn)` retries `fn` once on a
 * fresh connection when the connection dropped under it.
 */
export class LibvirtReconnector extends EventEmitter<LibvirtReconnectorEvents> {
  private current: Libvirt | undefined;
  private dialing: Promise<Libvirt> | undefined;
  private stopped = false;

  constructor(
    private readonly opts: LibvirtConnectOptions = {},
    private readonly retry: RetryOptions = {},
  ) {
    super();
  }

  async get(): Promise<Libvirt> {
    if (this.stopped) throw new LibvirtConnectionClosedError('reconnector closed');
    if (this.current && !this.current.isClosed) return this.current;
    this.dialing ??= connectWithRetry(this.opts, this.retry)
      .then((lv) => {
        this.current = lv;
        lv.once('close', (err) => this.emit('disconnected', err));
        this.emit('connected', lv);
        return lv;
      })
      .finally(() => (this.dialing = undefined));
    return this.dialing;
  }

  async run<T>(fn: (lv: Libvirt) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.get());
    } catch (err) {
      if (!(err instanceof LibvirtConnectionClosedError) || this.stopped) throw err;
      return fn(await this.get());
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.current?.close();
  }
}

