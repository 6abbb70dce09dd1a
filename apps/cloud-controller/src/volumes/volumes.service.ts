import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { nodeInitiatorIqn, type ExportVolumeRequest, type StorageEvent } from '@koala/contracts';
import { applyFilters, Ec2Error, isValidId, newId, validateFilters, type FilterSpec, type Tag, type TagSpecification } from '@koala/ec2-query';
import type { Logger } from '@koala/logging';
import { BusRemoteError, sealFor } from '@koala/messaging';
import { CLOCK, LOGGER, type Clock } from '@koala/runtime';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import type { DescribeQuery } from '../persistence/describe-page.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { QuotaService } from '../quotas/quota.service.js';
import { TagsService } from '../tags/tags.service.js';
import { publicReason, zoneError } from '../clusters/zone-error.js';
import { runAttach, runDetach } from './attach-workflow.js';
import { CHAP_SECRETS, type ChapSecrets } from './chap-credentials.js';
import { RESTORABLE_SNAPSHOTS, type RestorableSnapshots } from './restorable-snapshots.port.js';
import { ZONE_STORAGE, type ZoneStorageGateway } from './storage-gateway.js';
import { DETACHED, checkAttachable, checkDeletable, checkDetachable, checkDevice, decideVolumeEvent, detached, rolledBack, volumeStatus } from './volume-states.js';
import { UniqueViolation, VolumesRepository, type AttachTarget, type Tx, type VolumeRow, type VolumesStore } from './volumes.repository.js';

export { VOLUME_FILTER_COLUMNS, VOLUME_STATUS_FILTER_COLUMNS } from './volumes.repository.js';

export const VOLUME_RESOURCE_TYPE = 'volume';
export const VOLUME_TYPES = ['standard', 'gp2', 'gp3', 'io1', 'io2', 'sc1', 'st1'] as const;
export const DEFAULT_VOLUME_TYPE = 'standard';
export const MAX_VOLUME_GIB = 16384;

/** What VolumesService needs of the tags (TagsService; a fake in the unit spec). */
export type VolumeTags = Pick<TagsService, 'checkTagSpecifications' | 'applyTagSpecifications' | 'tagsOf' | 'deleteAllFor'>;
/** What VolumesService needs of the quotas (QuotaService; a fake in the unit spec). */
export type VolumeQuotas = Pick<QuotaService, 'enforce'>;

export interface CreateVolumeInput {
  sizeGiB?: number;
  snapshotId?: string;
  zone?: string;
  volumeType?: string;
  iops?: number;
  encrypted?: boolean;
  tagSpecifications: TagSpecification[];
  clientToken?: string;
  dryRun: boolean;
}

export interface VolumeView {
  volume: VolumeRow;
  tags: Tag[];
}

export const VOLUME_FILTERS: FilterSpec<VolumeView> = {
  'volume-id': (v) => v.volume.id,
  status: (v) => v.volume.state,
  'availability-zone': (v) => v.volume.zone,
  'attachment.instance-id': (v) => v.volume.attachInstanceId,
  'attachment.status': (v) => v.volume.attachState,
  'attachment.device': (v) => v.volume.attachDevice,
  'attachment.delete-on-termination': (v) => (v.volume.attachState ? v.volume.deleteOnTermination : null),
  'attachment.attach-time': (v) => v.volume.attachTime,
  size: (v) => v.volume.sizeGiB,
  'snapshot-id': (v) => v.volume.snapshotId ?? '',
  'volume-type': (v) => v.volume.volumeType,
  'create-time': (v) => v.volume.createdAt,
  encrypted: () => false,
  'multi-attach-enabled': () => false,
  iops: (v) => v.volume.iops,
  'owner-id': (v) => v.volume.accountId,
};

export interface VolumeStatusView {
  volume: VolumeRow;
  status: ReturnType<typeof volumeStatus>;
}
const STATUS_FILTERS: FilterSpec<VolumeStatusView> = {
  'availability-zone': (v) => v.volume.zone,
  'volume-status.status': (v) => v.status,
  'volume-status.details-name': () => ['io-enabled', 'io-performance'],
  'volume-status.details-status': (v) => [v.status === 'ok' ? 'passed' : v.status === 'impaired' ? 'failed' : 'insufficient-data', 'not-applicable'],
  'event.event-type': () => null,
  'action.code': () => null,
};
/** Token families of DescribeVolumes / DescribeVolumeStatus, and their bounds of MaxResults. */
const DESCRIBE = { scope: 'DescribeVolumes', min: 5, max: 500, capAboveMax: true } as const;
const STATUS = { scope: 'DescribeVolumeStatus', min: 5, max: 1000 } as const;

export interface AttachmentView {
  volumeId: string;
  instanceId: string;
  device: string;
  status: string;
  attachTime: Date | null;
  deleteOnTermination: boolean;
}

const deviceInUse = (device: string) => new Ec2Error('InvalidParameterValue', `Invalid value '${device}' for unixDevice. Attachment point ${device} is already in use`);

/** The CreateVolume parameters once checked: what the volume row is made of. */
interface CheckedCreate {
  zone: string;
  sizeGiB?: number;
  volumeType: string;
  paramsHash: string;
}

/**
 * Volumes: CreateVolume/DeleteVolume (the zone's SC does the work and reports by StorageEvents),
 * describe, status, AttachVolume/DetachVolume (SC export + CC attach, rolled back on failure),
 * the exports each SC rebuilds its targets from, and the release of volumes whose instance is gone.
 */
@Injectable()
export class VolumesService {
  constructor(
    @Inject(VolumesRepository) private readonly repo: VolumesStore,
    @Inject(KOALA_CONFIG) private readonly config: Pick<KoalaConfig, 'deletedVolumeRetentionMs' | 'volumeAttachTimeoutMs'>,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(ZONE_STORAGE) private readonly zone: ZoneStorageGateway,
    @Inject(CHAP_SECRETS) private readonly chap: ChapSecrets,
    @Inject(TagsService) private readonly tags: VolumeTags,
    @Inject(RESTORABLE_SNAPSHOTS) private readonly snapshots: RestorableSnapshots,
    @Inject(TaggableResources) registry: Pick<TaggableResources, 'register'>,
    @Inject(QuotaService) private readonly quotas: VolumeQuotas,
  ) {
    registry.register({
      prefix: 'vol',
      resourceType: VOLUME_RESOURCE_TYPE,
      notFoundCode: 'InvalidVolume.NotFound',
      owners: (tx, ids) => this.repo.owners(tx, ids),
    });
  }

  // ---- CreateVolume ------------------------------------------------------------------------

  async create(caller: Caller, now: Date, input: CreateVolumeInput): Promise<VolumeView> {
    const checked = this.checkCreate(input);
    if (input.clientToken) {
      const earlier = await this.byClientToken(caller.id, input.clientToken, checked.paramsHash);
      if (earlier) return earlier;
    }
    const zones = await this.zone.zones().catch(() => [] as string[]);
    if (!zones.includes(checked.zone)) throw Ec2Error.notFound('InvalidZone.NotFound', checked.zone);
    const sizeGiB = input.snapshotId ? await this.restoredSize(caller, input.snapshotId, checked) : checked.sizeGiB!;
    if (input.dryRun) throw Ec2Error.dryRun();

    const volume: VolumeRow = {
      id: newId('vol'),
      accountId: caller.id,
      zone: checked.zone,
      sizeGiB,
      snapshotId: input.snapshotId ?? null,
      volumeType: checked.volumeType,
      iops: input.iops ?? null,
      state: 'creating',
      stateReasonCode: null,
      stateReasonMessage: null,
      createdAt: now,
      deletedAt: null,
      clientToken: input.clientToken ?? null,
      paramsHash: checked.paramsHash,
      ...DETACHED,
    };
    let tags: Tag[];
    try {
      tags = await this.repo.transaction(async (tx) => {
        await this.quotas.enforce(tx, caller, { kind: 'volume', count: 1, gib: volume.sizeGiB });
        await this.repo.insert(tx, volume);
        return this.tags.applyTagSpecifications(caller, VOLUME_RESOURCE_TYPE, volume.id, input.tagSpecifications, tx);
      });
    } catch (e) {
      if (input.clientToken && e instanceof UniqueViolation) {
        const earlier = await this.byClientToken(caller.id, input.clientToken, checked.paramsHash);
        if (earlier) return earlier;
      }
      throw e;
    }
    await this.askCreate(volume);
    this.logger.info({ volumeId: volume.id, zone: volume.zone, sizeGiB: volume.sizeGiB, snapshotId: volume.snapshotId ?? undefined }, 'volume creating');
    return { volume, tags };
  }

  /** The checks of CreateVolume's parameters alone, and the digest a ClientToken retry must match. */
  private checkCreate(input: CreateVolumeInput): CheckedCreate {
    if (!input.zone) throw Ec2Error.missingParameter('AvailabilityZone');
    if (input.sizeGiB === undefined && !input.snapshotId) throw Ec2Error.missingParameter('Size');
    if (input.sizeGiB !== undefined && (input.sizeGiB < 1 || input.sizeGiB > MAX_VOLUME_GIB)) {
      throw Ec2Error.invalidParameterValue('Size', String(input.sizeGiB), `Volume size must be between 1 and ${MAX_VOLUME_GIB} GiB.`);
    }
    const volumeType = input.volumeType ?? DEFAULT_VOLUME_TYPE;
    if (!(VOLUME_TYPES as readonly string[]).includes(volumeType)) throw Ec2Error.invalidParameterValue('VolumeType', volumeType, `Valid values: ${VOLUME_TYPES.join(', ')}.`);
    const iopsTypes = ['io1', 'io2', 'gp3'];
    if (input.iops !== undefined && !iopsTypes.includes(volumeType)) throw Ec2Error.invalidParameterCombination(`The parameter iops is not supported for ${volumeType} volumes.`);
    if (input.iops === undefined && (volumeType === 'io1' || volumeType === 'io2')) throw Ec2Error.missingParameter('Iops');
    if (input.iops !== undefined && (input.iops < 100 || input.iops > 256000)) throw Ec2Error.invalidParameterValue('Iops', String(input.iops), 'Iops must be between 100 and 256000.');
    if (input.encrypted) throw Ec2Error.invalidParameterValue('Encrypted', 'true', 'Encrypted volumes are not supported.');
    if (input.clientToken !== undefined && (input.clientToken.length === 0 || input.clientToken.length > 64)) {
      throw Ec2Error.invalidParameterValue('ClientToken', input.clientToken, 'It must be 1 to 64 ASCII characters.');
    }
    this.tags.checkTagSpecifications(VOLUME_RESOURCE_TYPE, input.tagSpecifications);
    const paramsHash = createHash('sha256')
      .update(
        JSON.stringify([
          input.sizeGiB ?? null,
          input.snapshotId ?? null,
          input.zone,
          volumeType,
          input.iops ?? null,
          input.tagSpecifications.map((s) => [s.resourceType, s.tags.map((t) => [t.key, t.value])]),
        ]),
      )
      .digest('hex');
    return { zone: input.zone, sizeGiB: input.sizeGiB, volumeType, paramsHash };
  }

  /** The size of a volume restored from `snapshotId` (completed, restorable by the caller, in the volume's zone). */
  private async restoredSize(caller: Caller, snapshotId: string, c: CheckedCreate): Promise<number> {
    const snap = await this.snapshots.restorable(caller, snapshotId);
    if (snap.state !== 'completed') throw new Ec2Error('IncorrectState', `Snapshot '${snap.id}' is not 'completed'. Current state: ${snap.state}.`);
    if (snap.zone !== c.zone) {
      throw Ec2Error.invalidParameterValue('AvailabilityZone', c.zone, `Snapshot '${snap.id}' is stored in ${snap.zone}; Koala restores a snapshot in the zone that holds it only.`);
    }
    const sizeGiB = c.sizeGiB ?? snap.volumeSizeGiB;
    if (sizeGiB < snap.volumeSizeGiB)
      throw Ec2Error.invalidParameterValue('Size', String(sizeGiB), `Volume of ${sizeGiB}GiB is too small; minimum is ${snap.volumeSizeGiB}GiB for snapshot ${snap.id}.`);
    return sizeGiB;
  }

  /** Asks the zone's SC to create the volume; a refusal forgets it, no answer leaves it in `error`. */
  private async askCreate(volume: VolumeRow): Promise<void> {
    try {
      await this.zone.createVolume(volume.zone, { volumeId: volume.id, sizeGiB: volume.sizeGiB, snapshotId: volume.snapshotId ?? undefined });
    } catch (e) {
      const { error, reason } = zoneError(e, 'CreateVolume');
      if (e instanceof BusRemoteError) {
        // The SC refused (capacity, snapshot missing): nothing exists anywhere; forget the volume.
        await this.repo.transaction(async (tx) => {
          await this.repo.remove(tx, volume.id);
          await this.tags.deleteAllFor(volume.id, tx);
        });
      } else {
        // No answer: the SC may have it; keep the volume visible in `error` so DeleteVolume can clean it.
        await this.repo.update({ id: volume.id, state: 'creating' }, { state: 'error', stateReasonCode: reason.code, stateReasonMessage: reason.message });
      }
      this.logger.warn({ volumeId: volume.id, zone: volume.zone, code: reason.code }, 'createVolume failed');
      throw error;
    }
  }

  private async byClientToken(accountId: string, clientToken: string, paramsHash: string): Promise<VolumeView | undefined> {
    const v = await this.repo.byClientToken(accountId, clientToken);
    if (!v) return undefined;
    if (v.paramsHash !== paramsHash) throw new Ec2Error('IdempotentParameterMismatch', `Client token '${clientToken}' was already used in a request with different parameters.`);
    return (await this.views([v]))[0];
  }

  // ---- Describe ------------------------------------------------------------------------------

  async views(volumes: readonly VolumeRow[], tx?: Tx): Promise<VolumeView[]> {
    const tags = await this.tags.tagsOf(
      volumes.map((v) => v.id),
      tx,
    );
    return volumes.map((volume) => ({ volume, tags: tags.get(volume.id) ?? [] }));
  }

  /** Deleted volumes are still described until `deletedVolumeRetentionMs` after their deletion. */
  private retainedAfter(now: Date): Date {
    return new Date(now.getTime() - this.config.deletedVolumeRetentionMs);
  }

  /** DescribeVolumes: a page of the caller's volumes in id order (describePage: named ids in memory, else a keyset walk in SQL). */
  async describe(caller: Caller, now: Date, q: DescribeQuery): Promise<{ volumes: VolumeView[]; nextToken?: string }> {
    const tagsOf = (v: VolumeView) => v.tags;
    const { page, nextToken } = await this.repo.describe(
      caller,
      q,
      { cutoff: this.retainedAfter(now), live: false },
      {
        ...DESCRIBE,
        idsParameter: 'volumeSet',
        validate: () => validateFilters(q.filters, VOLUME_FILTERS, tagsOf),
        keep: async (rows) => applyFilters(await this.views(rows), q.filters, VOLUME_FILTERS, tagsOf),
        keyOf: (v) => v.volume.id,
      },
    );
    return { volumes: page, nextToken };
  }

  /** DescribeVolumeStatus: the caller's volumes that are not deleted, paged as DescribeVolumes. */
  async describeStatus(caller: Caller, now: Date, q: DescribeQuery): Promise<{ statuses: VolumeStatusView[]; nextToken?: string }> {
    const { page, nextToken } = await this.repo.describe(
      caller,
      q,
      { cutoff: this.retainedAfter(now), live: true },
      {
        ...STATUS,
        idsParameter: 'volumeSet',
        validate: () => validateFilters(q.filters, STATUS_FILTERS),
        keep: (rows) =>
          applyFilters(
            rows.filter((v) => v.state !== 'deleted').map((volume): VolumeStatusView => ({ volume, status: volumeStatus(volume) })),
            q.filters,
            STATUS_FILTERS,
          ),
        keyOf: (v) => v.volume.id,
      },
    );
    return { statuses: page, nextToken };
  }

  // ---- DeleteVolume ----------------------------------------------------------------------------

  /** The named volume locked for a change (the access rule: its owner or the admin); deleted ones are not found. */
  private async target(tx: Tx, caller: Caller, id: string): Promise<VolumeRow> {
    if (!isValidId('vol', id)) throw Ec2Error.malformed('InvalidVolumeID.Malformed', id);
    const v = await this.repo.lock(tx, id);
    if (!v || v.state === 'deleted' || !allows(accessOf(caller, v), 'change')) throw Ec2Error.notFound('InvalidVolume.NotFound', id);
    return v;
  }

  async delete(caller: Caller, id: string, dryRun: boolean): Promise<void> {
    const { v, previous } = await this.repo.transaction(async (tx) => {
      const v = await this.target(tx, caller, id);
      const decision = checkDeletable(v);
      if (dryRun) throw Ec2Error.dryRun();
      if (decision === 'noop') return { v, previous: undefined };
      const previous = { state: v.state, stateReasonCode: v.stateReasonCode, stateReasonMessage: v.stateReasonMessage };
      await this.repo.update({ id }, { state: 'deleting', stateReasonCode: null, stateReasonMessage: null }, tx);
      return { v, previous };
    });
    if (!previous) return;
    try {
      await this.zone.deleteVolume(v.zone, id);
    } catch (e) {
      await this.repo.update({ id, state: 'deleting' }, previous);
      throw zoneError(e, 'DeleteVolume').error;
    }
    this.logger.info({ volumeId: id, zone: v.zone }, 'volume deleting');
  }

  // ---- StorageEvents ---------------------------------------------------------------------------

  async applyEvent(event: StorageEvent): Promise<void> {
    const now = this.clock.now();
    const ev = {
      ...event,
      reason: publicReason(event.reason, (ref, d) => this.logger.warn({ volumeId: event.id, ref, code: d.code, detail: d.message }, 'volume failure reported by the storage controller')),
    };
    const applied = await this.repo.transaction(async (tx) => {
      const v = await this.repo.lock(tx, ev.id);
      const d = decideVolumeEvent(v, ev, now);
      if (d.kind === 'ignore') {
        if (d.why !== 'unknown' && d.why !== 'same') this.logger.debug({ volumeId: ev.id, state: ev.state, why: d.why }, 'volume event ignored');
        return undefined;
      }
      await this.repo.update({ id: ev.id }, d.patch, tx);
      if (d.deleted) await this.tags.deleteAllFor(ev.id, tx);
      return { from: v!.state, to: d.patch.state };
    });
    if (applied) this.logger.info({ volumeId: ev.id, ...applied, reason: ev.reason?.code }, 'volume state');
  }

  // ---- AttachVolume / DetachVolume ---------------------------------------------------------------

  async attach(caller: Caller, now: Date, q: { volumeId: string; instanceId: string; device: string; deleteOnTermination?: boolean; dryRun: boolean }): Promise<AttachmentView> {
    if (!isValidId('i', q.instanceId)) throw Ec2Error.malformed('InvalidInstanceID.Malformed', q.instanceId);
    const secret = this.chap.generate();
    const { v, instance } = await this.repo.transaction((tx) => this.reserveAttachment(tx, caller, now, q, secret));
    const node = instance.node!;
    this.logger.info({ volumeId: v.id, instanceId: instance.id, node, device: q.device }, 'volume attaching');
    // The secret travels sealed for the SC that exports and the NC that logs in, nobody else.
    const outcome = await runAttach(
      {
        exportVolume: async () =>
          this.zone.exportVolume(v.zone, { volumeId: v.id, node, initiatorIqn: nodeInitiatorIqn(node), chapUser: v.chapUser!, ...sealedFor(await this.zone.storageSealKey(v.zone), secret, v.id) }),
        attach: async (exported) => {
          const target = { ...exported, chapUser: v.chapUser!, ...sealedFor(await this.zone.nodeSealKey(v.zone, node), secret, v.id) };
          return this.zone.attachVolume(v.zone, { instanceId: instance.id, node, volumeId: v.id, device: q.device, target });
        },
        detach: () => this.zone.detachVolume(v.zone, { instanceId: instance.id, node, volumeId: v.id, force: true }),
        unexport: () => this.zone.unexportVolume(v.zone, v.id),
      },
      this.logger,
    );
    const attaching = { id: v.id, attachInstanceId: instance.id, attachState: 'attaching' } as const;
    if (!outcome.ok) {
      const { error, reason } = zoneError(outcome.error, 'AttachVolume');
      await this.repo.update(attaching, rolledBack(reason));
      this.logger.warn({ volumeId: v.id, instanceId: instance.id, failedAt: outcome.failedAt, code: reason.code, rollbackErrors: outcome.rollbackErrors.length }, 'volume attach failed; rolled back');
      throw error;
    }
    const done = await this.repo.update(attaching, { attachState: 'attached', guestDevice: outcome.guestDevice });
    if (!done) {
      // Someone else (the instance terminated: the sweep) took the attachment over meanwhile.
      throw new Ec2Error('IncorrectState', `Volume '${v.id}' was detached while it was being attached.`);
    }
    this.logger.info({ volumeId: v.id, instanceId: instance.id, guestDevice: outcome.guestDevice }, 'volume attached');
    return { volumeId: v.id, instanceId: instance.id, device: q.device, status: 'attached', attachTime: now, deleteOnTermination: q.deleteOnTermination ?? false };
  }

  /** AttachVolume's checks under the volume's and instance's locks, then the volume `attaching` with its CHAP credentials. */
  private async reserveAttachment(
    tx: Tx,
    caller: Caller,
    now: Date,
    q: { volumeId: string; instanceId: string; device: string; deleteOnTermination?: boolean; dryRun: boolean },
    secret: string,
  ): Promise<{ v: VolumeRow; instance: AttachTarget }> {
    const v = await this.target(tx, caller, q.volumeId);
    const instance = await this.repo.lockInstance(tx, q.instanceId);
    // The instance must be the volume owner's (whoever asks, the admin included).
    if (!instance || instance.accountId !== v.accountId || instance.state === 'terminated') throw Ec2Error.notFound('InvalidInstanceID.NotFound', q.instanceId);
    checkDevice(q.device, instance.rootDeviceName);
    checkAttachable(v, instance);
    if (await this.repo.deviceTaken(tx, instance.id, q.device)) throw deviceInUse(q.device);
    if (q.dryRun) throw Ec2Error.dryRun();
    const patch: Partial<VolumeRow> = {
      state: 'in-use',
      stateReasonCode: null,
      stateReasonMessage: null,
      attachInstanceId: instance.id,
      attachDevice: q.device,
      attachNode: instance.node,
      attachState: 'attaching',
      attachTime: now,
      deleteOnTermination: q.deleteOnTermination ?? false,
      guestDevice: null,
      chapUser: v.id,
      chapSecretEnc: this.chap.seal(secret),
    };
    try {
      await this.repo.update({ id: v.id }, patch, tx);
    } catch (e) {
      if (e instanceof UniqueViolation) throw deviceInUse(q.device);
      throw e;
    }
    return { v: Object.assign(v, patch), instance };
  }

  async detach(caller: Caller, q: { volumeId: string; instanceId?: string; device?: string; force: boolean; dryRun: boolean }): Promise<AttachmentView> {
    if (q.instanceId !== undefined && !isValidId('i', q.instanceId)) throw Ec2Error.malformed('InvalidInstanceID.Malformed', q.instanceId);
    const { v, previous } = await this.repo.transaction(async (tx) => {
      const v = await this.target(tx, caller, q.volumeId);
      checkDetachable(v, q);
      if (q.dryRun) throw Ec2Error.dryRun();
      const previous = v.attachState!;
      await this.repo.update({ id: v.id }, { attachState: 'detaching' }, tx);
      return { v, previous };
    });
    const view: AttachmentView = { volumeId: v.id, instanceId: v.attachInstanceId!, device: v.attachDevice!, status: 'detached', attachTime: v.attachTime, deleteOnTermination: v.deleteOnTermination };
    const result = await this.release(v, q.force);
    if (!result.ok) {
      await this.repo.update({ id: v.id, attachState: 'detaching' }, { attachState: previous });
      throw zoneError(result.error, 'DetachVolume').error;
    }
    return view;
  }

  /**
   * Detaches `v` (attach_state already `detaching`): the node unplugs it (skipped when the
   * instance is gone), the SC drops the export, the volume is available again.
   */
  private async release(v: VolumeRow, force: boolean): Promise<{ ok: true } | { ok: false; error: unknown }> {
    const instance = await this.repo.instance(v.attachInstanceId!);
    const gone = !instance || instance.state === 'terminated';
    const node = v.attachNode ?? instance?.node ?? undefined;
    const outcome = await runDetach(
      {
        detach: gone || !node ? undefined : () => this.zone.detachVolume(v.zone, { instanceId: v.attachInstanceId!, node, volumeId: v.id, force: force || undefined }),
        unexport: () => this.zone.unexportVolume(v.zone, v.id),
      },
      force,
      this.logger,
    );
    if (!outcome.ok) return outcome;
    await this.repo.update({ id: v.id, attachInstanceId: v.attachInstanceId!, attachState: 'detaching' }, detached());
    this.logger.info({ volumeId: v.id, instanceId: v.attachInstanceId, force, unexported: outcome.unexported }, 'volume detached');
    return { ok: true };
  }

  // ---- Exports (SC → CLC listExports) --------------------------------------------------------

  /** Every export that should exist in `zone`: volumes attaching or attached there, with their CHAP credentials. */
  async exports(zone: string): Promise<ExportVolumeRequest[]> {
    const rows = await this.repo.exported(zone);
    const out: ExportVolumeRequest[] = [];
    // Sealed for the zone's SC (whoever asks): only it can read them.
    const key = rows.length ? await this.zone.storageSealKey(zone) : undefined;
    for (const v of rows) {
      if (!v.attachNode || !v.chapUser || !v.chapSecretEnc) continue;
      try {
        out.push({ volumeId: v.id, node: v.attachNode, initiatorIqn: nodeInitiatorIqn(v.attachNode), chapUser: v.chapUser, ...sealedFor(key, this.chap.open(v.chapSecretEnc), v.id) });
      } catch {
        this.logger.error({ volumeId: v.id }, 'cannot decrypt the CHAP secret of a volume (wrong master key?)');
      }
    }
    return out;
  }

  // ---- Instances ---------------------------------------------------------------------------------

  /**
   * Releases every volume attached to the given instances (TerminateInstances, the sweep):
   * detach (forced), unexport, and delete those marked DeleteOnTermination.
   */
  async releaseForInstances(instanceIds: readonly string[]): Promise<void> {
    if (!instanceIds.length) return;
    await this.releaseVolumes(await this.repo.attachedTo(instanceIds));
  }

  private async releaseVolumes(volumeIds: readonly string[]): Promise<void> {
    if (!volumeIds.length) return;
    const rows = await this.repo.transaction(async (tx) => {
      const attached = (await this.repo.lockMany(tx, volumeIds)).filter((r) => r.attachInstanceId);
      await this.repo.updateMany(
        tx,
        attached.map((r) => r.id),
        { attachState: 'detaching' },
      );
      return attached;
    });
    for (const v of rows) {
      v.attachState = 'detaching';
      const r = await this.release(v, true);
      if (!r.ok) continue;
      if (v.deleteOnTermination) {
        await this.delete({ id: v.accountId, isAdmin: true }, v.id, false).catch((err) =>
          this.logger.warn({ err: (err as Error).message, volumeId: v.id }, 'DeleteOnTermination: delete failed; the volume stays available'),
        );
      }
    }
  }

  /**
   * The sweep: volumes still attached to instances that are terminated (or gone), and attachments
   * stuck attaching/detaching (a CLC that died mid-way) for twice the attach timeout.
   */
  async sweep(): Promise<number> {
    const ids = await this.repo.toSweep(new Date(this.clock.now().getTime() - 2 * this.config.volumeAttachTimeoutMs));
    await this.releaseVolumes(ids);
    return ids.length;
  }
}

/** A CHAP secret sealed for `key` (context: the volume id), or in clear for a component that announced no key. */
function sealedFor(key: string | undefined, secret: string, volumeId: string): { chapSecretSealed: string } | { chapSecret: string } {
  return key ? { chapSecretSealed: sealFor(key, secret, volumeId) } : { chapSecret: secret };
}
