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
  VIR_NETWORK_EVENT_ID_LIFECYCLE,
  VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM,
  VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM,
  domainEventName,
  networkEventName,
  type DomainEventName,
  type NetworkEventName,
} from './constants.js';
import {
  Proc,
  Procedures,
  REMOTE_AUTH_NONE,
  REMOTE_AUTH_POLKIT,
  VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER,
  VIR_DRV_FEATURE_PROGRAM_KEEPALIVE,
  decodeLifecycleEvent,
  decodeNetworkLifecycleEvent,
  type Domain,
  type DomainInfo,
  type DomainStateInfo,
  type Network,
  type NodeInfo,
  type NwFilter,
  type Secret,
  type StoragePool,
  type StoragePoolInfo,
  type StorageVol,
  type StorageVolInfo,
} from './procedures.js';
import { LibvirtConnectionClosedError, LibvirtError, RpcClient, VIR_ERR_AUTH_FAILED, VIR_ERR_INVALID_ARG, VIR_ERR_RPC, withRetry, type RetryOptions } from './rpc.js';
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

export interface NetworkLifecycleEvent {
  network: Network;
  event: number;
  eventName: NetworkEventName;
  detail: number;
}

export interface StreamRange {
  offset?: number;
  /** 0 = to the end. */
  length?: number;
  flags?: number;
}

/** A byte range of a volume for the sparse transfers. */
export interface SparseRange {
  offset?: number;
  /** 0 = to the end of the volume. */
  length?: number;
}

/**
 * A piece of a volume in a sparse transfer: bytes at `offset`, or a hole of `length` bytes that
 * read as zeros and do not travel. Offsets are absolute positions in the volume.
 */
export type VolumeSegment = { kind: 'data'; offset: number; data: Buffer } | { kind: 'hole'; offset: number; length: number };

/** What `uploadVolumeSparse` accepts: the segments `downloadVolumeSparse` yields, or any bytes. */
export type UploadSegment = { kind: 'data'; offset: number; data: Uint8Array } | { kind: 'hole'; offset: number; length: number };

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
  // Network callback ids are counted apart from domain ones on the daemon, so a map of their own.
  private readonly networkSubscriptions = new Map<number, NetworkEventSubscription>();
  private closing: Promise<void> | undefined;
  /** The daemon's answer to VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER, asked once. */
  private networkUpdateOrder: Promise<boolean> | undefined;

  private constructor(
    readonly rpc: RpcClient,
    readonly uri: string,
    private readonly eventQueueMax: number,
    private readonly connectOptions: LibvirtConnectOptions,
  ) {
    super();
    this.procedures = new Procedures(rpc);
    rpc.on('event', (proc, payload) => this.onEvent(proc, payload));
    rpc.on('close', (err) => {
      for (const s of this.subscriptions.values()) s.fail(err);
      this.subscriptions.clear();
      for (const s of this.networkSubscriptions.values()) s.fail(err);
      this.networkSubscriptions.clear();
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
    const lv = new Libvirt(rpc, uri, opts.eventQueueMax ?? 10_000, opts);
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

  /**
   * Opens a second, independent connection with the options this one was opened with (same
   * daemon, URI, read-only flag, keepalive). For a long download whose consumer talks to libvirtd
   * meanwhile (see `uploadVolumeSparse`): a download pauses its whole socket while its consumer
   * lags. The caller closes it.
   */
  connectAgain(): Promise<Libvirt> {
    return Libvirt.connect(this.connectOptions);
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
  /** CONNECT_SUPPORTS_FEATURE: asks the daemon about a VIR_DRV_FEATURE_* number. */
  supportsFeature(feature: number): Promise<boolean> {
    return this.procedures.connectSupportsFeature(feature);
  }
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
  async uploadVolume(vol: StorageVol, source: Uint8Array | Readable | AsyncIterable<Uint8Array>, range: StreamRange = {}): Promise<void> {
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

  /**
   * Reads the volume (or a range of it) through a sparse stream
   * (VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM): data segments (at most 256 KiB each) and holes, in
   * order and without gaps from `range.offset`; a hole costs one 40-byte packet whatever its
   * length. The daemon decides what is a hole: on a file, what the file system reports through
   * SEEK_HOLE/SEEK_DATA (block-sized granularity, so a data segment may carry some zeros); a
   * block device is all data. The stream ends early at the end of the volume. Breaking out of the
   * loop aborts the stream (bytes still in flight are dropped). As with every download, do not
   * wait for another call or stream on this connection between two segments (read on, or break):
   * a lagging consumer pauses the socket. Pipe into an upload from a second connection.
   */
  async *downloadVolumeSparse(vol: StorageVol, range: SparseRange = {}): AsyncGenerator<VolumeSegment, void, undefined> {
    const start = range.offset ?? 0;
    const end = range.length ? start + range.length : Number.MAX_SAFE_INTEGER;
    const stream = await this.procedures.storageVolDownload(vol, start, range.length ?? 0, VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM);
    let offset = start;
    try {
      for await (const c of stream.chunks()) {
        const length = c.kind === 'data' ? c.data.length : c.length;
        if (offset + length > end) throw new LibvirtError(VIR_ERR_RPC, 0, `sparse stream went past the requested range (${offset} + ${length} > ${end})`);
        yield c.kind === 'data' ? { kind: 'data', offset, data: c.data } : { kind: 'hole', offset, length };
        offset += length;
      }
    } finally {
      await stream.abort(); // nothing once the stream has ended; stops it when the consumer broke off or failed
    }
  }

  /**
   * Writes a volume through a sparse stream (VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM): data segments
   * travel as bytes (in packets of at most 256 KiB), holes and the gaps between segments as hole
   * packets (adjacent ones merged), and the daemon skips them instead of writing zeros. Segments
   * come in order, from `range.offset` on and, if `range.length` is given, within it; the range
   * left after the last segment is sent as a hole. Returns the data bytes sent.
   *
   * What a hole does is libvirt's: on a block device it writes zeros; on a file it seeks forward
   * and truncates the file at that position (later data extends it again). A sparse upload into
   * a file is therefore right only when it runs to the end of the volume: one that ends with a
   * hole short of the end shortens the file. Upload whole volumes (offset 0, length = capacity),
   * into a volume that reads as zeros where the holes are (a new sparse one).
   *
   * To copy a volume, feed this from `downloadVolumeSparse` of *another* connection (see
   * `connectAgain`). On one connection the two streams deadlock: libvirtd acknowledges each
   * upload packet through the same outgoing queue that carries the download's data, and stops
   * reading a client with too many unacknowledged packets; a download whose consumer lags stops
   * reading its socket (flow control), so neither side moves again.
   */
  async uploadVolumeSparse(vol: StorageVol, segments: Iterable<UploadSegment> | AsyncIterable<UploadSegment>, range: SparseRange = {}): Promise<number> {
    const start = range.offset ?? 0;
    const end = range.length ? start + range.length : undefined;
    const stream = await this.procedures.storageVolUpload(vol, start, range.length ?? 0, VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM);
    let written = start; // bytes before this are on their way
    let hole = 0; // a hole pending after `written`, sent before the next data or at the end
    let sent = 0;
    try {
      for await (const seg of segments) {
        const length = seg.kind === 'data' ? seg.data.length : seg.length;
        if (!Number.isSafeInteger(seg.offset) || seg.offset < written + hole) {
          throw new LibvirtError(VIR_ERR_INVALID_ARG, 0, `segment at ${seg.offset} is out of order (the stream is at ${written + hole})`);
        }
        if (end !== undefined && seg.offset + length > end) throw new LibvirtError(VIR_ERR_INVALID_ARG, 0, `segment at ${seg.offset} (${length} bytes) ends past the range end ${end}`);
        hole = seg.offset - written + (seg.kind === 'hole' ? length : 0);
        if (seg.kind === 'hole' || length === 0) continue;
        if (hole > 0) await stream.sendHole(hole);
        hole = 0;
        await stream.write(seg.data);
        written = seg.offset + length;
        sent += length;
      }
      if (end !== undefined) hole = end - written;
      if (hole > 0) await stream.sendHole(hole);
    } catch (err) {
      await stream.abort();
      throw err;
    }
    await stream.finish();
    return sent;
  }

  // --- networks -------------------------------------------------------------------------------
  async listAllNetworks(flags = 0): Promise<Network[]> {
    return (await this.procedures.connectListAllNetworks(flags)).networks;
  }
  /** Rejects with LibvirtError code VIR_ERR_NO_NETWORK when there is no such network. */
  lookupNetworkByName(name: string): Promise<Network> {
    return this.procedures.networkLookupByName(name);
  }
  lookupNetworkByUuid(uuid: string): Promise<Network> {
    return this.procedures.networkLookupByUuid(uuid);
  }
  /** Defines (or redefines) a persistent network; starts nothing. */
  defineNetwork(xml: string): Promise<Network> {
    return this.procedures.networkDefineXml(xml);
  }
  /** Starts a defined network (bridge, dnsmasq, firewall rules of its forward mode). */
  createNetwork(net: Network): Promise<void> {
    return this.procedures.networkCreate(net);
  }
  destroyNetwork(net: Network): Promise<void> {
    return this.procedures.networkDestroy(net);
  }
  undefineNetwork(net: Network): Promise<void> {
    return this.procedures.networkUndefine(net);
  }
  /** flags: VIR_NETWORK_XML_INACTIVE for the persistent definition of a running network. */
  getNetworkXml(net: Network, flags = 0): Promise<string> {
    return this.procedures.networkGetXmlDesc(net, flags);
  }
  isNetworkActive(net: Network): Promise<boolean> {
    return this.procedures.networkIsActive(net);
  }
  getNetworkAutostart(net: Network): Promise<boolean> {
    return this.procedures.networkGetAutostart(net);
  }
  setNetworkAutostart(net: Network, autostart: boolean): Promise<void> {
    return this.procedures.networkSetAutostart(net, autostart);
  }
  /**
   * virNetworkUpdate: `command` is VIR_NETWORK_UPDATE_COMMAND_*, `section`
   * VIR_NETWORK_SECTION_*, `parentIndex` the <ip> element's index (-1: the first/only one),
   * `flags` VIR_NETWORK_UPDATE_AFFECT_*. libvirt's RPC once sent `command` and `section` the
   * wrong way round; a daemon that does not claim the fixed order gets them swapped, as its own
   * client library would send them (the answer is asked once per connection).
   */
  async updateNetwork(net: Network, command: number, section: number, parentIndex: number, xml: string, flags: number): Promise<void> {
    this.networkUpdateOrder ??= this.supportsFeature(VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER);
    let correct: boolean;
    try {
      correct = await this.networkUpdateOrder;
    } catch (err) {
      this.networkUpdateOrder = undefined; // ask again next time
      throw err;
    }
    return correct ? this.procedures.networkUpdate(net, command, section, parentIndex, xml, flags) : this.procedures.networkUpdate(net, section, command, parentIndex, xml, flags);
  }

  // --- network filters ------------------------------------------------------------------------
  async listAllNwFilters(flags = 0): Promise<NwFilter[]> {
    return (await this.procedures.connectListAllNwFilters(flags)).filters;
  }
  /** Rejects with LibvirtError code VIR_ERR_NO_NWFILTER when there is no such filter. */
  lookupNwFilterByName(name: string): Promise<NwFilter> {
    return this.procedures.nwfilterLookupByName(name);
  }
  lookupNwFilterByUuid(uuid: string): Promise<NwFilter> {
    return this.procedures.nwfilterLookupByUuid(uuid);
  }
  /** Defines or redefines a filter; a redefinition applies at once to the guests using it. */
  defineNwFilter(xml: string): Promise<NwFilter> {
    return this.procedures.nwfilterDefineXml(xml);
  }
  undefineNwFilter(filter: NwFilter): Promise<void> {
    return this.procedures.nwfilterUndefine(filter);
  }
  getNwFilterXml(filter: NwFilter, flags = 0): Promise<string> {
    return this.procedures.nwfilterGetXmlDesc(filter, flags);
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
    const sub: DomainEventSubscription = new EventSubscription(id, this.eventQueueMax, async () => {
      if (!this.subscriptions.delete(id)) return;
      if (!this.rpc.isClosed) await this.procedures.connectDomainEventCallbackDeregisterAny(id);
    });
    this.subscriptions.set(id, sub);
    return sub;
  }

  /** Subscribes to network lifecycle events (defined, undefined, started, stopped). */
  async subscribeNetworkLifecycle(network: Network | null = null): Promise<NetworkEventSubscription> {
    const id = await this.procedures.connectNetworkEventRegisterAny(VIR_NETWORK_EVENT_ID_LIFECYCLE, network);
    const sub: NetworkEventSubscription = new EventSubscription(id, this.eventQueueMax, async () => {
      if (!this.networkSubscriptions.delete(id)) return;
      if (!this.rpc.isClosed) await this.procedures.connectNetworkEventDeregisterAny(id);
    });
    this.networkSubscriptions.set(id, sub);
    return sub;
  }

  private onEvent(proc: number, payload: Buffer): void {
    if (proc === Proc.NETWORK_EVENT_LIFECYCLE) return this.onNetworkEvent(payload);
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

  private onNetworkEvent(payload: Buffer): void {
    let msg;
    try {
      msg = decodeNetworkLifecycleEvent(payload);
    } catch {
      return;
    }
    const sub = this.networkSubscriptions.get(msg.callbackId);
    sub?.push({ network: msg.network, event: msg.event, eventName: networkEventName(msg.event), detail: msg.detail });
  }
}

export interface EventSubscriptionEvents<T> {
  event: [T];
  close: [Error | undefined];
}
export type DomainEventSubscriptionEvents = EventSubscriptionEvents<DomainLifecycleEvent>;
export type DomainEventSubscription = EventSubscription<DomainLifecycleEvent>;
export type NetworkEventSubscription = EventSubscription<NetworkLifecycleEvent>;

/**
 * One subscriber's view of lifecycle events: an EventEmitter (`event`) and an async iterator.
 * Events are queued and delivered asynchronously, so a slow consumer never stalls the socket
 * reader; past `queueMax` undelivered events the oldest are dropped (`dropped` counts them).
 */
export class EventSubscription<T> extends EventEmitter<EventSubscriptionEvents<T>> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private waiter: (() => void) | undefined;
  private finished = false;
  private error: Error | undefined;
  dropped = 0;

  constructor(
    readonly callbackId: number,
    private readonly queueMax: number,
    private readonly release: () => Promise<void>,
  ) {
    super();
  }

  /** @internal called by the connection's reader */
  push(ev: T): void {
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
  async next(pred: (ev: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex(pred);
      if (i >= 0) return this.queue.splice(i, 1)[0];
      if (this.error) throw this.error;
      if (this.finished) throw new Error('subscription closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching event within ${timeoutMs} ms`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiter = () => {
          clearTimeout(t);
          res();
        };
      });
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
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
    await this.release();
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
