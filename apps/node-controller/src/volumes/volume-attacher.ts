import { nodeInitiatorIqn, volumeTargetIqn, type IscsiTarget } from '@koala/contracts';
import type { SealKey } from '@koala/messaging';
import {
  DomainState,
  SecretUsageType,
  VIR_DOMAIN_AFFECT_CONFIG,
  VIR_DOMAIN_AFFECT_LIVE,
  VIR_DOMAIN_XML_INACTIVE,
  VIR_ERR_NO_DOMAIN,
  VIR_ERR_NO_SECRET,
  VIR_ERR_NO_SUPPORT,
  buildDiskXml,
  buildSecretXml,
  isLibvirtError,
  nextFreeTargetDev,
  parseDomainXml,
  type Domain,
  type Libvirt,
  type ParsedDisk,
  type Secret,
} from '@koala/libvirt';
import type { Logger } from '@koala/logging';
import { KeyedLock } from '@koala/runtime';

/** The part of the libvirt client the attacher uses (a fake implements it in unit tests). */
export type VolumeLibvirt = Pick<
  Libvirt,
  'lookupDomainByName' | 'getDomainState' | 'getDomainXml' | 'attachDevice' | 'detachDevice' | 'defineSecret' | 'setSecretValue' | 'lookupSecretByUsage' | 'undefineSecret' | 'listAllSecrets'
>;

/** Hands out an open connection (`LibvirtReconnector` fits). */
export interface VolumeLibvirtSource {
  get(): Promise<VolumeLibvirt>;
}

/** An error that travels back over NATS with its code: EC2's for the caller's mistakes, `Server.*` for ours. */
export class VolumeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'VolumeError';
  }
}

/** A target whose CHAP secret is readable (opened in this process; see openAttachRequest). */
export type OpenTarget = Omit<IscsiTarget, 'chapSecretSealed'> & { chapSecret: string };

export interface AttachRequest {
  instanceId: string;
  volumeId: string;
  target: OpenTarget;
}

/** Opens the CHAP secret the CLC sealed for this node (context: the volume id); a clear one is taken as it is. */
export function openAttachRequest<R extends { volumeId: string; target: IscsiTarget }>(req: R, key: SealKey | undefined): Omit<R, 'target'> & { target: OpenTarget } {
  const { chapSecretSealed, ...target } = req.target;
  if (chapSecretSealed === undefined) {
    if (target.chapSecret === undefined) throw new VolumeError('InvalidParameterValue', `attachment of ${req.volumeId} without a CHAP secret`);
    return { ...req, target: { ...target, chapSecret: target.chapSecret } };
  }
  let chapSecret: string;
  try {
    if (!key) throw new Error('no key');
    chapSecret = key.open(chapSecretSealed, req.volumeId);
  } catch {
    throw new VolumeError('Server.ChapSecretUnreadable', `the CHAP secret of ${req.volumeId} was not sealed for this node`);
  }
  return { ...req, target: { ...target, chapSecret } };
}

export interface DetachRequest {
  instanceId: string;
  volumeId: string;
  force?: boolean;
}

export interface DetachResult {
  /** False only with `force` when the guest had not released the device by the deadline. */
  liveRemoved: boolean;
  /** Whether anything was attached at all. */
  wasAttached: boolean;
}

export interface VolumeAttacherOptions {
  libvirt: VolumeLibvirtSource;
  /** This node's name: QEMU logs in as `nodeInitiatorIqn(node)` (the SC binds the ACL to it). */
  node: string;
  logger: Logger;
  /** How long to wait for the guest to release a hot-unplugged disk. Default 25 s (the CC waits 60 s). */
  detachTimeoutMs?: number;
  detachPollMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Prefix of the usage id of every secret this node controller defines. */
export const SECRET_USAGE_PREFIX = 'koala/';
/** Usage id of the CHAP secret of one attachment; the instance id lets `releaseAll` find them. */
export const volumeSecretUsage = (instanceId: string, volumeId: string) => `${SECRET_USAGE_PREFIX}${instanceId}/${volumeId}`;

/**
 * The virtio serial of a volume's disk (≤ 20 bytes, virtio-blk's limit): the volume id without
 * dashes, so `vol-0123456789abcdef0` becomes `vol0123456789abcdef0` (as on AWS Nitro) and the
 * guest finds it as `/dev/disk/by-id/virtio-vol0123456789abcdef0`.
 */
export function volumeSerial(volumeId: string): string {
  const s = volumeId.replace(/-/g, '');
  if (!/^[A-Za-z0-9_.+]{1,20}$/.test(s)) throw new VolumeError('InvalidParameterValue', `volume id ${JSON.stringify(volumeId)} does not fit a 20-character disk serial`);
  return s;
}

/** `host:port` (or `[v6]:port`, or `host`) of a portal. */
export function parsePortal(portal: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(portal.trim());
  const port = m?.[3] !== undefined ? Number(m[3]) : 3260;
  if (!m || port < 1 || port > 65535) throw new VolumeError('InvalidParameterValue', `bad iSCSI portal ${JSON.stringify(portal)}`);
  return { host: (m[1] ?? m[2])!, port };
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Hot-plugs EBS-style volumes into running domains as iSCSI network disks (QEMU's own
 * initiator). The CHAP secret goes into a private, persistent libvirt secret
 * (usage `koala/<instance>/<volume>`) referenced by usage from the disk XML: it never appears
 * in domain XML, in logs or in error messages. Disks are attached LIVE|CONFIG so they survive
 * a reboot or a domain restart (CONFIG only into a stopped instance's inactive domain), and carry the volume id as serial so they can be found again.
 */
export class VolumeAttacher {
  /** One operation at a time per instance (two attaches must not pick the same vdX). */
  private readonly lock = new KeyedLock();
  private readonly detachTimeoutMs: number;
  private readonly detachPollMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly o: VolumeAttacherOptions) {
    this.detachTimeoutMs = o.detachTimeoutMs ?? 25_000;
    this.detachPollMs = o.detachPollMs ?? 250;
    this.sleep = o.sleep ?? sleepMs;
  }

  /** Attaches the volume; answers the guest device (`vdX`). Idempotent for the same volume. */
  attach(req: AttachRequest): Promise<{ guestDevice: string }> {
    return this.lock.run(req.instanceId, () => this.attachLocked(req));
  }

  /** Detaches the volume (success when it is not attached). */
  detach(req: DetachRequest): Promise<DetachResult> {
    return this.lock.run(req.instanceId, () => this.detachLocked(req));
  }

  /**
   * Undefines the CHAP secrets of every volume of `instanceId` (call after the domain was
   * destroyed on terminate: the disks go with the domain, the secrets would stay).
   */
  releaseAll(instanceId: string): Promise<number> {
    return this.lock.run(instanceId, async () => {
      const lv = await this.o.libvirt.get();
      const prefix = volumeSecretUsage(instanceId, '');
      let n = 0;
      let secrets;
      try {
        secrets = await lv.listAllSecrets();
      } catch (err) {
        // Drivers without secrets (libvirt's test driver) cannot hold any of ours.
        if (isLibvirtError(err, VIR_ERR_NO_SUPPORT)) return 0;
        throw err;
      }
      for (const s of secrets) {
        if (s.usageType !== SecretUsageType.ISCSI || !s.usageId.startsWith(prefix)) continue;
        if (await this.undefineQuietly(lv, s)) n++;
      }
      if (n) this.o.logger.info({ instanceId, secrets: n }, 'released volume secrets of instance');
      return n;
    });
  }

  private async attachLocked(req: AttachRequest): Promise<{ guestDevice: string }> {
    const { instanceId, volumeId, target } = req;
    const serial = volumeSerial(volumeId);
    const { host, port } = parsePortal(target.portal);
    const lv = await this.o.libvirt.get();
    const { dom, running } = await this.attachableDomain(lv, instanceId);

    // A stopped instance (inactive domain) gets the disk in its persistent config only; it
    // appears when the instance next starts.
    const [live, config] = await this.disks(lv, dom, running);
    const existing = (running ? live : config).find((d) => this.isVolumeDisk(d, volumeId, serial));
    if (existing?.targetDev) {
      if (existing.sourceName !== `${target.iqn}/${target.lun}`) {
        throw new VolumeError('VolumeInUse', `volume ${volumeId} is attached to ${instanceId} from another target`);
      }
      return { guestDevice: existing.targetDev };
    }
    const targetDev = nextFreeTargetDev([...live, ...config]);
    const usage = volumeSecretUsage(instanceId, volumeId);
    const log = { instanceId, volumeId, targetDev, iqn: target.iqn };

    let secret: Secret | undefined;
    try {
      // A secret with this usage left from a crash would make the define fail: replace it.
      const stale = await lv.lookupSecretByUsage(SecretUsageType.ISCSI, usage).catch((e) => (isLibvirtError(e, VIR_ERR_NO_SECRET) ? undefined : Promise.reject(e)));
      if (stale) await lv.undefineSecret(stale);
      secret = await lv.defineSecret(buildSecretXml({ usageType: 'iscsi', usageTarget: usage, description: `CHAP secret of ${volumeId} on ${instanceId}`, ephemeral: false, private: true }));
      await lv.setSecretValue(secret, target.chapSecret);
      const xml = buildDiskXml({
        kind: 'iscsi',
        iqn: target.iqn,
        lun: target.lun,
        host,
        port,
        initiatorIqn: nodeInitiatorIqn(this.o.node),
        auth: { username: target.chapUser, secret: { usage } },
        targetDev,
        serial,
      });
      await lv.attachDevice(dom, xml, running ? VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG : VIR_DOMAIN_AFFECT_CONFIG);
      // Started meanwhile (a start does not take this lock): plug it into the live domain too.
      if (!running && (await lv.getDomainState(dom)).state !== DomainState.SHUTOFF) {
        const nowLive = parseDomainXml(await lv.getDomainXml(dom)).disks;
        if (!nowLive.some((d) => this.isVolumeDisk(d, volumeId, serial))) await lv.attachDevice(dom, xml, VIR_DOMAIN_AFFECT_LIVE);
      }
      this.o.logger.info({ ...log, running }, 'volume attached');
      return { guestDevice: targetDev };
    } catch (err) {
      const message = redact((err as Error).message ?? String(err), target.chapSecret);
      this.o.logger.warn({ ...log, err: message }, 'volume attach failed; rolling back');
      await this.rollbackAttach(lv, dom, volumeId, serial, secret);
      if (err instanceof VolumeError) throw err;
      throw new VolumeError('Server.VolumeAttachFailed', `could not attach ${volumeId} to ${instanceId}: ${message}`);
    }
  }

  /** Leaves nothing behind: the disk (should libvirt have added it to one side) and the secret. */
  private async rollbackAttach(lv: VolumeLibvirt, dom: Domain, volumeId: string, serial: string, secret: Secret | undefined): Promise<void> {
    try {
      const [live, config] = await this.disks(lv, dom);
      const inLive = live.find((d) => this.isVolumeDisk(d, volumeId, serial));
      const inConfig = config.find((d) => this.isVolumeDisk(d, volumeId, serial));
      if (inConfig) await lv.detachDevice(dom, buildDetachXml(inConfig), VIR_DOMAIN_AFFECT_CONFIG);
      if (inLive) await lv.detachDevice(dom, buildDetachXml(inLive), VIR_DOMAIN_AFFECT_LIVE);
    } catch (err) {
      this.o.logger.warn({ volumeId, err: (err as Error).message }, 'rollback: could not remove a half-attached disk');
    }
    if (secret) await this.undefineQuietly(lv, secret);
  }

  private async detachLocked(req: DetachRequest): Promise<DetachResult> {
    const { instanceId, volumeId, force } = req;
    const serial = volumeSerial(volumeId);
    const lv = await this.o.libvirt.get();
    const usage = volumeSecretUsage(instanceId, volumeId);
    const dom = await lv.lookupDomainByName(instanceId).catch((e) => (isLibvirtError(e, VIR_ERR_NO_DOMAIN) ? undefined : Promise.reject(e)));
    if (!dom) {
      await this.undefineSecretByUsage(lv, usage);
      return { liveRemoved: true, wasAttached: false };
    }
    const running = (await lv.getDomainState(dom)).state !== DomainState.SHUTOFF;
    const [live, config] = await this.disks(lv, dom, running);
    const inLive = running ? live.find((d) => this.isVolumeDisk(d, volumeId, serial)) : undefined;
    const inConfig = config.find((d) => this.isVolumeDisk(d, volumeId, serial));
    const log = { instanceId, volumeId, targetDev: inLive?.targetDev ?? inConfig?.targetDev, force: !!force };
    if (!inLive && !inConfig) {
      await this.undefineSecretByUsage(lv, usage);
      return { liveRemoved: true, wasAttached: false };
    }

    // CONFIG first: whatever the guest does, the disk does not come back at the next start.
    if (inConfig) await lv.detachDevice(dom, buildDetachXml(inConfig), VIR_DOMAIN_AFFECT_CONFIG);
    let liveRemoved = true;
    if (inLive) {
      try {
        // libvirt asks the guest (ACPI) and waits up to 5 s for QEMU's DEVICE_DELETED; then
        // it returns and the removal completes asynchronously, so the live XML is polled.
        await lv.detachDevice(dom, buildDetachXml(inLive), VIR_DOMAIN_AFFECT_LIVE);
      } catch (err) {
        // e.g. "already in the process of unplug" after an earlier timed-out attempt: keep waiting.
        this.o.logger.warn({ ...log, err: (err as Error).message }, 'live detach request failed; waiting for the device to go');
      }
      liveRemoved = await this.waitGone(lv, dom, volumeId, serial);
      if (!liveRemoved && !force) {
        throw new VolumeError(
          'VolumeDetachTimeout',
          `the guest of ${instanceId} did not release ${inLive.targetDev} (${volumeId}) within ${this.detachTimeoutMs} ms; ` + `it was removed from the persistent config; retry, or detach with Force`,
        );
      }
    }
    // QEMU got the CHAP secret when the disk was plugged: undefining the libvirt secret does not
    // disturb a device the guest still holds (forced detach).
    await this.undefineSecretByUsage(lv, usage);
    if (liveRemoved) this.o.logger.info(log, 'volume detached');
    else this.o.logger.warn(log, 'forced detach: the guest still holds the device; it goes when the guest releases it or the domain stops');
    return { liveRemoved, wasAttached: true };
  }

  private async waitGone(lv: VolumeLibvirt, dom: Domain, volumeId: string, serial: string): Promise<boolean> {
    const deadline = Date.now() + this.detachTimeoutMs;
    for (;;) {
      const state = (await lv.getDomainState(dom)).state;
      if (state === DomainState.SHUTOFF) return true;
      const live = parseDomainXml(await lv.getDomainXml(dom)).disks;
      if (!live.some((d) => this.isVolumeDisk(d, volumeId, serial))) return true;
      if (Date.now() >= deadline) return false;
      await this.sleep(this.detachPollMs);
    }
  }

  /** The instance's domain, running (hot-plug) or shut off (persistent config only). */
  private async attachableDomain(lv: VolumeLibvirt, instanceId: string): Promise<{ dom: Domain; running: boolean }> {
    let dom: Domain;
    try {
      dom = await lv.lookupDomainByName(instanceId);
    } catch (err) {
      if (isLibvirtError(err, VIR_ERR_NO_DOMAIN)) throw new VolumeError('IncorrectState', `instance ${instanceId} is not on this node`);
      throw err;
    }
    const { state } = await lv.getDomainState(dom);
    if (state === DomainState.RUNNING) return { dom, running: true };
    if (state === DomainState.SHUTOFF) return { dom, running: false };
    throw new VolumeError('IncorrectState', `instance ${instanceId} is neither running nor stopped (libvirt state ${state})`);
  }

  /** [live disks, persistent-config disks] (live is empty when the domain is not running). */
  private async disks(lv: VolumeLibvirt, dom: Domain, running = true): Promise<[ParsedDisk[], ParsedDisk[]]> {
    const live = running ? parseDomainXml(await lv.getDomainXml(dom)).disks : [];
    const config = parseDomainXml(await lv.getDomainXml(dom, VIR_DOMAIN_XML_INACTIVE)).disks;
    return [live, config];
  }

  private isVolumeDisk(d: ParsedDisk, volumeId: string, serial: string): boolean {
    return d.serial === serial || (d.sourceProtocol === 'iscsi' && !!d.sourceName?.startsWith(`${volumeTargetIqn(volumeId)}/`));
  }

  private async undefineSecretByUsage(lv: VolumeLibvirt, usage: string): Promise<void> {
    try {
      await lv.undefineSecret(await lv.lookupSecretByUsage(SecretUsageType.ISCSI, usage));
    } catch (err) {
      if (!isLibvirtError(err, VIR_ERR_NO_SECRET)) throw err;
    }
  }

  private async undefineQuietly(lv: VolumeLibvirt, s: Secret): Promise<boolean> {
    try {
      await lv.undefineSecret(s);
      return true;
    } catch (err) {
      if (!isLibvirtError(err, VIR_ERR_NO_SECRET)) this.o.logger.warn({ usage: s.usageId, err: (err as Error).message }, 'could not undefine volume secret');
      return false;
    }
  }
}

/**
 * Device XML that identifies a disk to detach (libvirt matches on the target dev, but parses the
 * whole element first, so an iSCSI disk is described as one).
 */
function buildDetachXml(d: ParsedDisk): string {
  const m = /^(.+)\/(\d+)$/.exec(d.sourceName ?? '');
  if (d.sourceProtocol === 'iscsi' && m && d.targetDev) {
    const host = d.sourceHosts[0] ?? {};
    return buildDiskXml({ kind: 'iscsi', iqn: m[1], lun: Number(m[2]), host: host.name ?? '127.0.0.1', port: host.port, targetDev: d.targetDev });
  }
  return `<disk type='${d.type}' device='${d.device}'><target dev='${d.targetDev}' bus='${d.bus ?? 'virtio'}'/></disk>`;
}

function redact(message: string, secret: string): string {
  return secret ? message.split(secret).join('[redacted]') : message;
}
