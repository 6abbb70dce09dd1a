import type { DomainReport, InstanceAction, InstanceEvent, InstanceSpec, InstanceState, Resources, StateReason } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import { KeyedLock, settleAll, type Clock } from '@koala/runtime';
import type { ConfigDriveBuilder } from '../config-drive/config-drive.js';
import type { ConsoleLog } from '../console/console-log.js';
import type { CachedImage, ImageCache } from '../images/image-cache.js';
import type { DomainRunState, HostDomain, HostDomainEvent, Hypervisor, InstanceMeta, InstanceNic } from '../libvirt/hypervisor.js';
import type { InstanceEventSink } from './instance-events.js';
import { codedError } from '@koala/messaging';

const GiB = 1024 ** 3;
/** nodeConsoleOutput returns at most this much (the most recent output), like EC2. */
export const CONSOLE_MAX_BYTES = 64 * 1024;

/** An error whose code travels back over the bus (EC2 style). */

export interface InstanceManagerOptions {
  zone: string;
  node: string;
  /** Wait this long for an ACPI shutdown before destroying the domain (KOALA_NC_STOP_TIMEOUT_MS). */
  stopTimeoutMs: number;
  /** Poll interval while waiting for a domain to power off. */
  pollMs?: number;
  /**
   * The ACPI shutdown request is sent again this often while waiting (default 3000 ms): a guest
   * still booting (firmware, early kernel) drops the first one, as hypervisor managers know.
   */
  shutdownRetryMs?: number;
  hypervisor: Hypervisor;
  images: ImageCache;
  configDrive: ConfigDriveBuilder;
  consoleLog: ConsoleLog;
  events: InstanceEventSink;
  /** Guest networking: DHCP entry and filter before the domain exists, removed after (NetworkAgent). */
  network?: { prepare(spec: InstanceSpec): Promise<InstanceNic | undefined>; release(instanceId: string): Promise<void> };
  /** Attached EBS volumes: their CHAP secrets are released on terminate (VolumeAttacher). */
  volumes?: { releaseAll(instanceId: string): Promise<unknown> };
  /** The metadata service's launch records: written when a launch is accepted, removed when the instance is gone. */
  launchRecords?: { put(spec: InstanceSpec, acceptedAt: Date): Promise<void>; remove(instanceId: string): Promise<void> };
  clock: Clock;
  logger?: Logger;
}

type Op = 'launch' | 'stop' | 'start' | 'reboot' | 'terminate';

interface Tracked {
  meta: InstanceMeta;
  /** What this NC believes, as an EC2 state. */
  state: InstanceState;
  /** An action of ours in progress: its own code reports the outcome, libvirt's events are ignored. */
  op?: Op;
  lastEmitted?: InstanceEvent['state'];
}

/** libvirt's view of a domain as an EC2 instance state. */
export function instanceStateOf(s: DomainRunState): InstanceState {
  switch (s) {
    case 'running':
    case 'paused':
      return 'running';
    case 'shutdown':
      return 'stopping';
    default:
      return 'stopped';
  }
}

/**
 * The instances of one node: launches (`runInstance`), actions, console output, lifecycle events
 * and re-adoption after a restart. Every state change goes out as an InstanceEvent, in order per
 * instance. Work on one instance is serialised (a terminate waits for its launch to finish);
 * libvirt lifecycle events for an instance with an action of ours in progress are ignored (the
 * action reports), and a state is never emitted twice in a row.
 */
export class InstanceManager {
  private readonly instances = new Map<string, Tracked>();
  private readonly locks = new KeyedLock();
  private readonly emitChains = new Map<string, Promise<void>>();
  private syncing: Promise<void> = Promise.resolve();
  private readonly background = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(private readonly o: InstanceManagerOptions) {}

  /** Ensures the event stream, the pool; adopts running guests; follows libvirt events. */
  async start(): Promise<void> {
    await this.o.events.ensure();
    this.o.hypervisor.onDomainEvent((ev) => this.onDomainEvent(ev));
    this.o.hypervisor.onConnected(() => this.sync());
    await this.sync();
  }

  /** Waits for background work (launches, actions) to settle; no new events after this. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.background]);
    await Promise.allSettled([...this.emitChains.values()]);
    this.stopped = true;
  }

  // --- queries ------------------------------------------------------------------------------

  /** Capacity promised to our instances (defined domains and launches in progress). */
  allocated(): Resources {
    const r = { cores: 0, memoryMiB: 0, diskGiB: 0 };
    for (const t of this.instances.values()) {
      r.cores += t.meta.resources.vcpus;
      r.memoryMiB += t.meta.resources.memoryMiB;
      r.diskGiB += t.meta.resources.rootDiskGiB + t.meta.resources.ephemeralGiB;
    }
    return r;
  }

  /** Heartbeat domains: our view of our instances wins (pending launches included); foreign ones as reported. */
  annotate(domains: DomainReport[]): DomainReport[] {
    const out: DomainReport[] = [];
    const seen = new Set<string>();
    for (const d of domains) {
      const t = d.instanceId ? this.instances.get(d.instanceId) : undefined;
      if (t) {
        seen.add(t.meta.instanceId);
        out.push({ name: d.name, instanceId: t.meta.instanceId, state: t.state });
      } else if (!d.instanceId) {
        out.push(d);
      }
    }
    for (const t of this.instances.values()) {
      if (!seen.has(t.meta.instanceId)) out.push({ name: t.meta.instanceId, instanceId: t.meta.instanceId, state: t.state });
    }
    return out;
  }

  list(): { instanceId: string; state: InstanceState; op?: string }[] {
    return [...this.instances.values()].map((t) => ({ instanceId: t.meta.instanceId, state: t.state, ...(t.op ? { op: t.op } : {}) }));
  }

  // --- runInstance --------------------------------------------------------------------------

  /** Validates and accepts a launch at once; the work goes on in the background. */
  async run(spec: InstanceSpec): Promise<{ accepted: boolean }> {
    const id = spec.instanceId;
    if (this.instances.has(id) || (await this.o.hypervisor.getDomain(id))) {
      throw codedError('InvalidInstanceID.Duplicate', `instance ${id} is already defined on node ${this.o.node}`);
    }
    if (this.instances.has(id)) throw codedError('InvalidInstanceID.Duplicate', `instance ${id} is already defined on node ${this.o.node}`);
    const images: InstanceMeta['images'] = { root: spec.image.root.sha256 };
    if (spec.image.virtualizationType === 'paravirtual') {
      images.kernel = spec.image.kernel.sha256;
      if (spec.image.ramdisk) images.ramdisk = spec.image.ramdisk.sha256;
    }
    const meta: InstanceMeta = {
      instanceId: id,
      accountId: spec.accountId,
      reservationId: spec.reservationId,
      instanceType: spec.instanceType,
      node: this.o.node,
      resources: spec.resources,
      images,
    };
    await this.o.launchRecords?.put(spec, this.o.clock.now());
    this.instances.set(id, { meta, state: 'pending', op: 'launch' });
    this.inBackground(this.locked(id, () => this.launch(spec, meta)));
    return { accepted: true };
  }

  private async launch(spec: InstanceSpec, meta: InstanceMeta): Promise<void> {
    const id = spec.instanceId;
    const t0 = Date.now();
    await this.emit(id, 'pending');
    const held: string[] = [];
    const acquire = async (blob: Parameters<ImageCache['acquire']>[0]): Promise<CachedImage> => {
      const img = await this.o.images.acquire(blob, id);
      held.push(img.sha256);
      return img;
    };
    let defined = false;
    // The guest's network (DHCP entry, its tap's rules) is made alongside its images and disks;
    // the domain is defined only once both are in place, and a failure waits for both to settle.
    const networked = !!spec.network && !!this.o.network;
    const network = networked ? this.o.network!.prepare(spec) : Promise.resolve(undefined);
    network.catch(() => undefined); // awaited below (or before the clean-up)
    try {
      const root = await acquire(spec.image.root);
      let boot: { kind: 'disk' } | { kind: 'kernel'; kernel: string; initrd?: string; cmdline: string } = { kind: 'disk' };
      if (spec.image.virtualizationType === 'paravirtual') {
        const kernel = await acquire(spec.image.kernel);
        const ramdisk = spec.image.ramdisk ? await acquire(spec.image.ramdisk) : undefined;
        const cmdline = ['root=/dev/vda console=ttyS0', spec.image.kernelArgs?.trim()].filter(Boolean).join(' ');
        boot = { kind: 'kernel', kernel: kernel.path, ...(ramdisk ? { initrd: ramdisk.path } : {}), cmdline };
      }
      const tImages = Date.now();
      const r = spec.resources;
      // Independent of one another: side by side (the ISO is built by a process of its own while
      // libvirt makes the overlay). All settle before a failure is thrown, so the clean-up below
      // never races a volume still being made.
      const [rootVol, ephemeral, configDrive, consoleLogPath] = await settleAll([
        this.o.hypervisor.createRootDisk(id, root, Math.max(r.rootDiskGiB * GiB, root.virtualSizeBytes)),
        r.ephemeralGiB > 0 ? this.o.hypervisor.createEphemeralDisk(id, r.ephemeralGiB * GiB) : Promise.resolve(undefined),
        this.o.configDrive
          .build({
            instanceId: id,
            hostname: spec.hostname,
            ...(spec.userData ? { userData: Buffer.from(spec.userData, 'base64') } : {}),
            publicKeys: spec.publicKey ? [spec.publicKey] : [],
            availabilityZone: spec.availabilityZone,
            launchIndex: spec.launchIndex,
            reservationId: spec.reservationId,
          })
          .then((iso) => this.o.hypervisor.createConfigDrive(id, iso)),
        this.o.consoleLog.reset(id),
      ] as const);
      // The guest never runs before its DHCP entry and the rules of its tap exist.
      const tDisks = Date.now();
      const nic = await network;
      const tNetwork = Date.now();
      defined = true;
      await this.o.hypervisor.defineDomain({
        meta,
        memoryMiB: r.memoryMiB,
        vcpus: r.vcpus,
        root: rootVol,
        ...(ephemeral ? { ephemeral } : {}),
        configDrive,
        boot,
        consoleLogPath,
        ...(nic ? { network: nic } : {}),
      });
      const tDefined = Date.now();
      await this.o.hypervisor.startDomain(id);
      const tStarted = Date.now();
      this.set(id, { state: 'running', op: undefined });
      // Where a launch spends its time (images fetched or cached, disks and config drive, the
      // wait for the guest's network beyond them, libvirt's define and start).
      const breakdown = { imagesMs: tImages - t0, disksMs: tDisks - tImages, networkMs: tNetwork - tDisks, defineMs: tDefined - tNetwork, startMs: tStarted - tDefined };
      this.o.logger?.info({ instanceId: id, ms: tStarted - t0, ...breakdown }, 'instance running');
      await this.emit(id, 'running');
    } catch (err) {
      this.o.logger?.error({ err, instanceId: id }, 'launch failed; cleaning up');
      await network.catch(() => undefined); // its release must not race its set-up
      await this.removeEverything(id, defined, held, networked);
      this.instances.delete(id);
      await this.forgetLaunchRecord(id);
      await this.emit(id, 'failed', { reason: reasonOf(err) }, true);
    }
  }

  /** Removes domain, volumes, console log and image pins; best effort, logs what it cannot. */
  private async removeEverything(id: string, domain: boolean, images: string[], network = domain): Promise<boolean> {
    let ok = true;
    const step = async (what: string, fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (err) {
        ok = false;
        this.o.logger?.error({ err, instanceId: id }, `clean-up: ${what} failed`);
      }
    };
    if (domain) {
      await step('destroy', () => this.o.hypervisor.destroyDomain(id));
      await step('undefine', () => this.o.hypervisor.undefineDomain(id));
      if (this.o.volumes) await step('release volume secrets', () => this.o.volumes!.releaseAll(id));
    }
    // After the domain is gone: libvirt refuses to undefine a filter a guest uses.
    if (network && ok && this.o.network) await step('release network', () => this.o.network!.release(id));
    await step('delete volumes', () => this.o.hypervisor.deleteVolumes(id));
    await step('remove console log', () => this.o.consoleLog.remove(id));
    if (ok) for (const sha of images) await step('release image', () => this.o.images.release(sha, id));
    return ok;
  }

  // --- actions ------------------------------------------------------------------------------

  /** Accepts an action (checked now), reported later as events. */
  async action(instanceId: string, action: InstanceAction, opts: { force?: boolean } = {}): Promise<{ accepted: boolean }> {
    const t = this.instances.get(instanceId);
    if (action === 'terminate') {
      this.inBackground(this.locked(instanceId, () => this.terminate(instanceId)));
      return { accepted: true };
    }
    if (!t) throw codedError('InvalidInstanceID.NotFound', `The instance ID '${instanceId}' does not exist on node ${this.o.node}`);
    if (action === 'reboot' && t.state !== 'running' && t.op !== 'launch' && t.op !== 'start' && t.op !== 'reboot') {
      throw codedError('IncorrectInstanceState', `The instance '${instanceId}' is not in a state from which it can be rebooted (${t.state}).`);
    }
    const work = { stop: () => this.stopInstance(instanceId, !!opts.force), start: () => this.startInstance(instanceId), reboot: () => this.rebootInstance(instanceId) }[action];
    this.inBackground(this.locked(instanceId, work));
    return { accepted: true };
  }

  private async terminate(id: string): Promise<void> {
    const t = this.instances.get(id);
    if (!t) {
      await this.forgetLaunchRecord(id);
      await this.emit(id, 'terminated', {}, true);
      return;
    }
    this.set(id, { op: 'terminate', state: 'shutting-down' });
    await this.emit(id, 'shutting-down');
    const images = [t.meta.images.root, t.meta.images.kernel, t.meta.images.ramdisk].filter((s): s is string => !!s);
    const ok = await this.removeEverything(id, true, images);
    if (!ok && (await this.o.hypervisor.getDomain(id).catch(() => undefined))) {
      this.set(id, { op: undefined });
      this.o.logger?.error({ instanceId: id }, 'terminate incomplete: the domain is still defined; terminate again to retry');
      return;
    }
    this.instances.delete(id);
    await this.forgetLaunchRecord(id);
    await this.emit(id, 'terminated', {}, true);
  }

  private async forgetLaunchRecord(id: string): Promise<void> {
    await this.o.launchRecords?.remove(id).catch((err: unknown) => this.o.logger?.error({ err, instanceId: id }, 'could not remove the launch record'));
  }

  private async stopInstance(id: string, force: boolean): Promise<void> {
    const t = this.instances.get(id);
    if (!t) return;
    const now = await this.o.hypervisor.getDomain(id);
    if (!now || instanceStateOf(now.state) === 'stopped') {
      this.set(id, { state: 'stopped' });
      await this.emit(id, 'stopped');
      return;
    }
    this.set(id, { op: 'stop', state: 'stopping' });
    await this.emit(id, 'stopping');
    try {
      if (!force) {
        await this.o.hypervisor.shutdownDomain(id);
        if (!(await this.waitForOff(id, this.o.stopTimeoutMs, () => this.o.hypervisor.shutdownDomain(id)))) {
          this.o.logger?.warn({ instanceId: id, ms: this.o.stopTimeoutMs }, 'guest did not power off in time; destroying');
        }
      }
      await this.o.hypervisor.destroyDomain(id);
      this.set(id, { state: 'stopped', op: undefined });
      await this.emit(id, 'stopped');
    } catch (err) {
      this.o.logger?.error({ err, instanceId: id }, 'stop failed');
      const d = await this.o.hypervisor.getDomain(id).catch(() => undefined);
      const state = d ? instanceStateOf(d.state) : 'stopped';
      this.set(id, { state, op: undefined });
      await this.emit(id, state, { reason: reasonOf(err) });
    }
  }

  /** Polls until the domain is off (true) or `timeoutMs` passed (false), calling `resend` every shutdownRetryMs. */
  private async waitForOff(id: string, timeoutMs: number, resend?: () => Promise<void>): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const retryMs = this.o.shutdownRetryMs ?? 3000;
    let nextResend = Date.now() + retryMs;
    for (;;) {
      const d = await this.o.hypervisor.getDomain(id);
      if (!d || d.state === 'shutoff' || d.state === 'crashed') return true;
      if (Date.now() >= deadline) return false;
      if (resend && Date.now() >= nextResend) {
        nextResend = Date.now() + retryMs;
        // A failure here (the domain just went away or is already shutting down) is not the stop's failure.
        await resend().catch((err: unknown) => this.o.logger?.debug({ err, instanceId: id }, 'repeated ACPI shutdown request failed'));
        continue;
      }
      await new Promise((r) => setTimeout(r, Math.min(this.o.pollMs ?? 250, Math.max(1, deadline - Date.now()))));
    }
  }

  private async startInstance(id: string): Promise<void> {
    const t = this.instances.get(id);
    if (!t) return;
    const now = await this.o.hypervisor.getDomain(id);
    if (now && instanceStateOf(now.state) === 'running') {
      this.set(id, { state: 'running' });
      await this.emit(id, 'running');
      return;
    }
    this.set(id, { op: 'start', state: 'pending' });
    await this.emit(id, 'pending');
    try {
      await this.o.hypervisor.startDomain(id);
      this.set(id, { state: 'running', op: undefined });
      await this.emit(id, 'running');
    } catch (err) {
      this.o.logger?.error({ err, instanceId: id }, 'start failed');
      this.set(id, { state: 'stopped', op: undefined });
      await this.emit(id, 'stopped', { reason: reasonOf(err) });
    }
  }

  private async rebootInstance(id: string): Promise<void> {
    const t = this.instances.get(id);
    if (!t || t.state !== 'running') return;
    this.set(id, { op: 'reboot' });
    try {
      await this.o.hypervisor.rebootDomain(id);
    } catch (err) {
      this.o.logger?.error({ err, instanceId: id }, 'reboot failed');
    } finally {
      this.set(id, { op: undefined });
    }
  }

  // --- console ------------------------------------------------------------------------------

  async consoleOutput(instanceId: string): Promise<{ output: string; timestamp: string }> {
    if (!this.instances.has(instanceId)) throw codedError('InvalidInstanceID.NotFound', `The instance ID '${instanceId}' does not exist on node ${this.o.node}`);
    const tail = await this.o.consoleLog.tail(instanceId, CONSOLE_MAX_BYTES);
    return { output: tail ? tail.data.toString('base64') : '', timestamp: (tail?.mtime ?? this.o.clock.now()).toISOString() };
  }

  // --- libvirt events and re-adoption --------------------------------------------------------

  private onDomainEvent(ev: HostDomainEvent): void {
    const t = this.instances.get(ev.name);
    if (!t || t.op) return; // not ours, or our own action reports the outcome
    if (['stopped', 'crashed', 'started', 'resumed'].includes(ev.event)) this.inBackground(this.reconcile(ev.name));
  }

  /**
   * Brings our view in line with libvirt's current state (after a lifecycle event, or a
   * reconnection): checked under the instance's lock with a fresh read, so a late or stale
   * event never contradicts an action of ours. A change we did not cause is the guest's doing.
   */
  private reconcile(id: string): Promise<void> {
    return this.locked(id, async () => {
      const t = this.instances.get(id);
      if (!t || t.op) return;
      const d = await this.o.hypervisor.getDomain(id);
      if (!d || this.instances.get(id) !== t || t.op) return;
      const state = instanceStateOf(d.state);
      if (state === t.state || state === 'stopping') return;
      this.set(id, { state });
      await this.emit(id, state, state === 'stopped' ? { guestInitiated: true } : {});
    });
  }

  /** (Re)builds the view from libvirt: adopts our domains, catches up on changes missed while disconnected. */
  sync(): Promise<void> {
    this.syncing = this.syncing.then(
      () => this.doSync(),
      () => this.doSync(),
    );
    return this.syncing;
  }

  private async doSync(): Promise<void> {
    try {
      await this.o.hypervisor.prepare();
      const domains = await this.o.hypervisor.listDomains();
      for (const d of domains) this.adoptOrResync(d);
    } catch (err) {
      this.o.logger?.error({ err }, 'could not read instances from libvirt (will retry on reconnect)');
    }
  }

  private adoptOrResync(d: HostDomain): void {
    if (!d.meta) return; // not Koala's: never touched
    if (d.meta.node && d.meta.node !== this.o.node) return; // another (simulated) node's
    const id = d.meta.instanceId;
    if (id !== d.name) return;
    const state = instanceStateOf(d.state);
    const t = this.instances.get(id);
    if (!t) {
      this.instances.set(id, { meta: d.meta, state, lastEmitted: state });
      for (const sha of [d.meta.images.root, d.meta.images.kernel, d.meta.images.ramdisk]) if (sha) this.o.images.adopt(sha, id);
      this.o.logger?.info({ instanceId: id, state }, 'adopted instance');
      return;
    }
    // Changed while we were not listening (e.g. libvirtd restarted)?
    if (!t.op && t.state !== state) this.inBackground(this.reconcile(id));
  }

  // --- helpers ------------------------------------------------------------------------------

  private set(id: string, patch: Partial<Pick<Tracked, 'state' | 'op'>>) {
    const t = this.instances.get(id);
    if (!t) return;
    if ('state' in patch && patch.state) t.state = patch.state;
    if ('op' in patch) t.op = patch.op;
  }

  /** Publishes in order per instance; skips a repeat of the last state unless `always`. */
  private emit(id: string, state: InstanceEvent['state'], extra: { reason?: StateReason; guestInitiated?: boolean } = {}, always = false): Promise<void> {
    const t = this.instances.get(id);
    if (t) {
      if (!always && !extra.reason && t.lastEmitted === state) return Promise.resolve();
      t.lastEmitted = state;
    }
    const event: InstanceEvent = { instanceId: id, zone: this.o.zone, node: this.o.node, state, ...extra, at: this.o.clock.now().toISOString() };
    const prev = this.emitChains.get(id) ?? Promise.resolve();
    const next = prev.then(() => this.publish(event));
    this.emitChains.set(id, next);
    void next.finally(() => {
      if (this.emitChains.get(id) === next) this.emitChains.delete(id);
    });
    return next;
  }

  private async publish(event: InstanceEvent): Promise<void> {
    if (this.stopped) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.o.events.publish(event);
        return;
      } catch (err) {
        if (attempt >= 5 || this.stopped) {
          this.o.logger?.error({ err, event }, 'could not publish instance event (heartbeats will reconcile)');
          return;
        }
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  }

  private locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(id, fn);
  }

  private inBackground(p: Promise<unknown>) {
    const q = p.catch((err) => this.o.logger?.error({ err }, 'instance work failed'));
    this.background.add(q);
    void q.finally(() => this.background.delete(q));
  }
}

function reasonOf(err: unknown): StateReason {
  const e = err as { code?: unknown; message?: string };
  const code = typeof e?.code === 'string' && /^[A-Z][A-Za-z.]+$/.test(e.code) ? e.code : 'Server.InternalError';
  return { code, message: e?.message ?? String(err) };
}
