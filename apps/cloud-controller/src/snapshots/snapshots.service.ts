import { Inject, Injectable } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { StorageEvent } from '@koala/contracts';
import { applyFilters, Ec2Error, isValidId, newId, validateFilters, type FilterSpec, type PermissionChange, type Tag, type TagSpecification } from '@koala/ec2-query';
import type { Logger } from '@koala/logging';
import { BusRemoteError } from '@koala/messaging';
import { LOGGER } from '@koala/runtime';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { QuotaService } from '../quotas/quota.service.js';
import { TagsService } from '../tags/tags.service.js';
import { publicReason, zoneError } from '../clusters/zone-error.js';
import { SNAPSHOT_USAGE, type SnapshotUsage } from './snapshot-usage.port.js';
import { SNAPSHOT_STORAGE, SNAPSHOT_VOLUMES, type SnapshotStorage, type SnapshotVolumes } from './snapshot-volumes.port.js';
import { decideSnapshotEvent } from './snapshot-states.js';
import { SnapshotsRepository, type CallerSnapshot, type DescribeSnapshotsQuery, type SnapshotRow, type SnapshotsStore, type Tx } from './snapshots.repository.js';

export { SNAPSHOT_FILTER_COLUMNS, type DescribeSnapshotsQuery } from './snapshots.repository.js';

export const SNAPSHOT_RESOURCE_TYPE = 'snapshot';

/** What SnapshotsService needs of the tags (TagsService; a fake in the unit spec). */
export type SnapshotTags = Pick<TagsService, 'checkTagSpecifications' | 'applyTagSpecifications' | 'tagsOf' | 'deleteAllFor'>;
/** What SnapshotsService needs of the quotas (QuotaService; a fake in the unit spec). */
export type SnapshotQuotas = Pick<QuotaService, 'enforce'>;

export interface SnapshotView {
  snapshot: SnapshotRow;
  tags: Tag[];
  /** Accounts given createVolumePermission. */
  permittedAccounts: string[];
}

export const SNAPSHOT_FILTERS: FilterSpec<SnapshotView> = {
  'snapshot-id': (v) => v.snapshot.id,
  'volume-id': (v) => v.snapshot.volumeId,
  status: (v) => v.snapshot.state,
  'owner-id': (v) => v.snapshot.accountId,
  progress: (v) => `${v.snapshot.progress}%`,
  'start-time': (v) => v.snapshot.startTime,
  'volume-size': (v) => v.snapshot.volumeSizeGiB,
  description: (v) => v.snapshot.description,
  encrypted: () => false,
  'owner-alias': () => null,
};

/** What `account` has of a snapshot whose createVolumePermission accounts are `permitted` (the one access rule). */
const accessOfAccount = (account: Caller, s: SnapshotRow, permitted: readonly string[]) =>
  accessOf(account, { accountId: s.accountId, isPublic: s.isPublic, grantedToCaller: permitted.includes(account.id) });

/**
 * Snapshots: CreateSnapshot / CopySnapshot (the SC of the volume's zone copies and reports
 * progress by StorageEvents), DescribeSnapshots (owner, createVolumePermission, public),
 * DeleteSnapshot (owner only; refused while an image uses it), createVolumePermission.
 */
@Injectable()
export class SnapshotsService {
  constructor(
    @Inject(SnapshotsRepository) private readonly repo: SnapshotsStore,
    @Inject(KOALA_CONFIG) private readonly config: Pick<KoalaConfig, 'region'>,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SNAPSHOT_STORAGE) private readonly zone: SnapshotStorage,
    @Inject(SNAPSHOT_VOLUMES) private readonly volumes: SnapshotVolumes,
    @Inject(SNAPSHOT_USAGE) private readonly usage: SnapshotUsage,
    @Inject(TagsService) private readonly tags: SnapshotTags,
    @Inject(TaggableResources) registry: Pick<TaggableResources, 'register'>,
    @Inject(QuotaService) private readonly quotas: SnapshotQuotas,
  ) {
    registry.register({
      prefix: 'snap',
      resourceType: SNAPSHOT_RESOURCE_TYPE,
      notFoundCode: 'InvalidSnapshot.NotFound',
      owners: (tx, ids) => this.repo.owners(tx, ids),
    });
  }

  // ---- visibility ------------------------------------------------------------------------------

  /** A snapshot `caller` may create volumes from (the access rule: owner, createVolumePermission, public; admin: any). */
  async restorable(caller: Caller, id: string): Promise<SnapshotRow> {
    if (!isValidId('snap', id)) throw Ec2Error.malformed('InvalidSnapshotID.Malformed', id);
    const s = await this.repo.find(id, caller.id);
    if (!s || !allows(accessOf(caller, s), 'see')) throw Ec2Error.notFound('InvalidSnapshot.NotFound', id);
    return s;
  }

  /** The named snapshot locked for a change by its owner (admin: any, by id). */
  private async owned(tx: Tx, caller: Caller, id: string): Promise<CallerSnapshot> {
    if (!isValidId('snap', id)) throw Ec2Error.malformed('InvalidSnapshotID.Malformed', id);
    const s = await this.repo.lock(tx, id, caller.id);
    const access = s ? accessOf(caller, s) : 'none';
    if (!s || !allows(access, 'see')) throw Ec2Error.notFound('InvalidSnapshot.NotFound', id);
    // Visible but not ours: AWS answers UnauthorizedOperation.
    if (!allows(access, 'change')) throw Ec2Error.unauthorized(`You do not own snapshot '${id}'.`);
    return s;
  }

  // ---- CreateSnapshot / CopySnapshot -------------------------------------------------------------

  async create(caller: Caller, now: Date, q: { volumeId: string; description?: string; tagSpecifications: TagSpecification[]; dryRun: boolean }): Promise<SnapshotView> {
    if (!isValidId('vol', q.volumeId)) throw Ec2Error.malformed('InvalidVolumeID.Malformed', q.volumeId);
    checkDescription(q.description);
    this.tags.checkTagSpecifications(SNAPSHOT_RESOURCE_TYPE, q.tagSpecifications);
    const volume = await this.volumes.find(q.volumeId);
    if (!volume || volume.state === 'deleted' || !allows(accessOf(caller, volume), 'change')) throw Ec2Error.notFound('InvalidVolume.NotFound', q.volumeId);
    if (volume.state !== 'available' && volume.state !== 'in-use') throw new Ec2Error('IncorrectState', `Volume '${volume.id}' is in the '${volume.state}' state.`);
    if (q.dryRun) throw Ec2Error.dryRun();
    const snapshot = newSnapshot(caller.id, now, { volumeId: volume.id, volumeSizeGiB: volume.sizeGiB, zone: volume.zone, description: q.description ?? '', sourceSnapshotId: null });
    const tags = await this.insert(caller, snapshot, q.tagSpecifications);
    await this.ask(snapshot, () => this.zone.createSnapshot(snapshot.zone, { snapshotId: snapshot.id, volumeId: volume.id }), 'CreateSnapshot');
    this.logger.info({ snapshotId: snapshot.id, volumeId: volume.id, zone: volume.zone }, 'snapshot pending');
    return { snapshot, tags, permittedAccounts: [] };
  }

  async copy(
    caller: Caller,
    now: Date,
    q: { sourceSnapshotId: string; sourceRegion: string; destinationRegion?: string; description?: string; encrypted?: boolean; tagSpecifications: TagSpecification[]; dryRun: boolean },
  ): Promise<SnapshotView> {
    if (q.destinationRegion !== undefined && q.destinationRegion !== this.config.region) {
      throw Ec2Error.invalidParameterValue('DestinationRegion', q.destinationRegion, `Koala copies snapshots within this region (${this.config.region}) only.`);
    }
    if (q.sourceRegion !== this.config.region) {
      throw Ec2Error.invalidParameterValue('SourceRegion', q.sourceRegion, `Koala copies snapshots within this region (${this.config.region}) only.`);
    }
    if (q.encrypted) throw Ec2Error.invalidParameterValue('Encrypted', 'true', 'Encrypted snapshots are not supported.');
    checkDescription(q.description);
    this.tags.checkTagSpecifications(SNAPSHOT_RESOURCE_TYPE, q.tagSpecifications);
    const source = await this.restorable(caller, q.sourceSnapshotId);
    if (source.state !== 'completed') throw new Ec2Error('IncorrectState', `Snapshot '${source.id}' is not 'completed'. Current state: ${source.state}.`);
    if (q.dryRun) throw Ec2Error.dryRun();
    const description = q.description ?? `[Copied ${source.id} from ${this.config.region}]`;
    const snapshot = newSnapshot(caller.id, now, { volumeId: source.volumeId, volumeSizeGiB: source.volumeSizeGiB, zone: source.zone, description, sourceSnapshotId: source.id });
    const tags = await this.insert(caller, snapshot, q.tagSpecifications);
    await this.ask(snapshot, () => this.zone.copySnapshot(snapshot.zone, { sourceSnapshotId: source.id, snapshotId: snapshot.id }), 'CopySnapshot');
    this.logger.info({ snapshotId: snapshot.id, sourceSnapshotId: source.id, zone: source.zone }, 'snapshot copy pending');
    return { snapshot, tags, permittedAccounts: [] };
  }

  private async insert(caller: Caller, s: SnapshotRow, specs: TagSpecification[]): Promise<Tag[]> {
    return this.repo.transaction(async (tx) => {
      await this.quotas.enforce(tx, caller, { kind: 'snapshot' });
      await this.repo.insert(tx, s);
      return this.tags.applyTagSpecifications(caller, SNAPSHOT_RESOURCE_TYPE, s.id, specs, tx);
    });
  }

  /** Sends the SC request; a refusal forgets the snapshot, no answer leaves it in `error`. */
  private async ask(s: SnapshotRow, request: () => Promise<void>, what: string): Promise<void> {
    try {
      await request();
    } catch (e) {
      const { error, reason } = zoneError(e, what);
      if (e instanceof BusRemoteError) {
        await this.repo.transaction(async (tx) => {
          await this.repo.remove(tx, s.id);
          await this.tags.deleteAllFor(s.id, tx);
        });
      } else {
        await this.repo.update({ id: s.id, state: 'pending' }, { state: 'error', stateReasonCode: reason.code, stateReasonMessage: reason.message });
      }
      this.logger.warn({ snapshotId: s.id, code: reason.code }, `${what} failed`);
      throw error;
    }
  }

  // ---- DescribeSnapshots -------------------------------------------------------------------------

  /**
   * DescribeSnapshots: a page, in id order, of the snapshots the caller may see (owner,
   * createVolumePermission, public; the admin: all), narrowed by Owner (`self` = the caller) and
   * RestorableBy (`all` = public, an account = those it may restore) and the filters. Named ids
   * must all be visible; otherwise a keyset walk in SQL with the visibility, Owner, RestorableBy
   * and the filters SQL can decide as a pre-selection (the repository). Either way every rule is
   * applied in memory too (`matching`).
   */
  async describe(caller: Caller, q: DescribeSnapshotsQuery): Promise<{ snapshots: SnapshotView[]; nextToken?: string }> {
    for (const id of q.ids) if (!isValidId('snap', id)) throw Ec2Error.malformed('InvalidSnapshotID.Malformed', id);
    const tagsOf = (v: SnapshotView) => v.tags;
    const { page, nextToken } = await this.repo.describe(caller, q, {
      scope: 'DescribeSnapshots',
      min: 5,
      max: 1000,
      capAboveMax: true,
      idsParameter: 'snapshotSet',
      validate: () => validateFilters(q.filters, SNAPSHOT_FILTERS, tagsOf),
      keep: async (rows) => {
        const perms = await this.repo.permissions(rows.map((r) => r.id));
        return this.matching(
          caller,
          q,
          rows.map((snapshot): SnapshotView => ({ snapshot, tags: [], permittedAccounts: perms.get(snapshot.id) ?? [] })),
        );
      },
      keyOf: (v) => v.snapshot.id,
    });
    return { snapshots: page, nextToken };
  }

  /** Of `views` (in id order), those the caller may see that Owner, RestorableBy and the filters select, with their tags. */
  private async matching(caller: Caller, q: DescribeSnapshotsQuery, views: SnapshotView[]): Promise<SnapshotView[]> {
    views = views.filter((v) => allows(accessOfAccount(caller, v.snapshot, v.permittedAccounts), 'see'));
    if (q.ownerIds.length) {
      const owners = new Set(q.ownerIds.map((o) => (o === 'self' ? caller.id : o)));
      views = views.filter((v) => owners.has(v.snapshot.accountId));
    }
    if (q.restorableBy.length) {
      // RestorableBy an account: what that account (not the admin) may restore.
      const restorer = (r: string): Caller => ({ id: r === 'self' ? caller.id : r, isAdmin: false });
      views = views.filter((v) => q.restorableBy.some((r) => (r === 'all' ? v.snapshot.isPublic : allows(accessOfAccount(restorer(r), v.snapshot, v.permittedAccounts), 'see'))));
    }
    // Tags are the owner's notes: accounts the snapshot is shared with (or public to) see none.
    const tags = await this.tags.tagsOf(views.filter((v) => allows(accessOf(caller, v.snapshot), 'change')).map((v) => v.snapshot.id));
    for (const v of views) v.tags = tags.get(v.snapshot.id) ?? [];
    return applyFilters(views, q.filters, SNAPSHOT_FILTERS, (v) => v.tags);
  }

  // ---- DeleteSnapshot --------------------------------------------------------------------------

  async delete(caller: Caller, id: string, dryRun: boolean): Promise<void> {
    const s = await this.repo.transaction(async (tx) => {
      const s = await this.owned(tx, caller, id);
      const images = await this.usage.imagesUsing(id, tx);
      if (images.length) throw new Ec2Error('InvalidSnapshot.InUse', `The snapshot ${id} is currently in use by ${images[0]}`);
      if (dryRun) throw Ec2Error.dryRun();
      return s;
    });
    try {
      await this.zone.deleteSnapshot(s.zone, id);
    } catch (e) {
      throw zoneError(e, 'DeleteSnapshot').error;
    }
    await this.repo.transaction(async (tx) => {
      await this.repo.remove(tx, id);
      await this.tags.deleteAllFor(id, tx);
    });
    this.logger.info({ snapshotId: id, zone: s.zone }, 'snapshot deleted');
  }

  // ---- createVolumePermission ----------------------------------------------------------------

  async describePermissions(caller: Caller, id: string): Promise<{ snapshot: SnapshotRow; accounts: string[] }> {
    const s = await this.repo.transaction((tx) => this.owned(tx, caller, id));
    return { snapshot: s, accounts: (await this.repo.permissions([id])).get(id) ?? [] };
  }

  async modifyPermissions(caller: Caller, id: string, change: PermissionChange & { reset?: boolean }, dryRun: boolean): Promise<void> {
    for (const a of [...change.add.accounts, ...change.remove.accounts]) {
      if (!/^\d{12}$/.test(a)) throw Ec2Error.invalidParameterValue('UserId', a, 'An account id is 12 digits.');
    }
    await this.repo.transaction(async (tx) => {
      const s = await this.owned(tx, caller, id);
      if (dryRun) throw Ec2Error.dryRun();
      if (change.reset) {
        await this.repo.revokeAll(tx, id);
        await this.repo.update({ id }, { isPublic: false }, tx);
        return;
      }
      // The owner needs no grant of its own.
      await this.repo.grant(
        tx,
        id,
        change.add.accounts.filter((a) => a !== s.accountId),
      );
      await this.repo.revoke(tx, id, change.remove.accounts);
      if (change.add.all || change.remove.all) await this.repo.update({ id }, { isPublic: change.add.all && !change.remove.all }, tx);
    });
  }

  // ---- StorageEvents -------------------------------------------------------------------------

  async applyEvent(event: StorageEvent): Promise<void> {
    const ev = {
      ...event,
      reason: publicReason(event.reason, (ref, d) => this.logger.warn({ snapshotId: event.id, ref, code: d.code, detail: d.message }, 'snapshot failure reported by the storage controller')),
    };
    const applied = await this.repo.transaction(async (tx) => {
      const s = await this.repo.lock(tx, ev.id);
      const d = decideSnapshotEvent(s, ev);
      if (d.kind === 'ignore') return undefined;
      await this.repo.update({ id: ev.id }, d.patch, tx);
      return { from: s!.state, to: d.patch.state ?? s!.state, progress: d.patch.progress };
    });
    if (applied && applied.from !== applied.to) this.logger.info({ snapshotId: ev.id, ...applied, reason: ev.reason?.code }, 'snapshot state');
  }
}

function newSnapshot(accountId: string, now: Date, f: Pick<SnapshotRow, 'volumeId' | 'volumeSizeGiB' | 'zone' | 'description' | 'sourceSnapshotId'>): SnapshotRow {
  return { id: newId('snap'), accountId, ...f, state: 'pending', progress: 0, stateReasonCode: null, stateReasonMessage: null, startTime: now, isPublic: false };
}

function checkDescription(d: string | undefined) {
  if (d !== undefined && [...d].length > 255) throw Ec2Error.invalidParameterValue('Description', undefined, 'The description may be at most 255 characters.');
}
