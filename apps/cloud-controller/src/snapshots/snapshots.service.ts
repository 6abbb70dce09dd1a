import { Inject, Injectable } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { StorageEvent } from '@koala/contracts';
import { applyFilters, Ec2Error, isValidId, newId, validateFilters, type FilterSpec, type PermissionChange, type Tag, type TagSpecification } from '@koala/ec2-query';
import type { Logger } from '@koala/logging';
import { BusRemoteError } from '@koala/messaging';
import { LOGGER } from '@koala/runtime';
import { DataSource, In, type EntityManager, type SelectQueryBuilder } from 'typeorm';
import type { FilterColumns } from '../persistence/find-visible.js';
import { describePage, type DescribeQuery } from '../persistence/describe-page.js';
import { TaggableResources, entityOwners, type Caller } from '../tags/taggable-resources.js';
import { QuotaService } from '../quotas/quota.service.js';
import { TagsService } from '../tags/tags.service.js';
import { publicReason, zoneError } from '../clusters/zone-error.js';
import { ZONE_STORAGE, type ZoneStorageGateway } from '../volumes/storage-gateway.js';
import { VolumeEntity } from '../volumes/volume.entity.js';
import { SNAPSHOT_USAGE, type SnapshotUsage } from './snapshot-usage.port.js';
import { SnapshotEntity, SnapshotVolumePermissionEntity } from './snapshot.entity.js';
import { decideSnapshotEvent } from './snapshot-states.js';

export const SNAPSHOT_RESOURCE_TYPE = 'snapshot';

export interface SnapshotView {
  snapshot: SnapshotEntity;
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

/**
 * The SNAPSHOT_FILTERS that SQL can decide (snapshots aliased `s`): each expression is the text of
 * exactly the value the filter reads above (NULL where it reads null). DescribeSnapshots pushes
 * these (and the tag filters) into its query as a pre-selection and still applies every filter in
 * memory. start-time stays in memory only.
 */
export const SNAPSHOT_FILTER_COLUMNS: FilterColumns = {
  'snapshot-id': 's.id',
  'volume-id': 's.volume_id',
  status: 's.state',
  'owner-id': 's.account_id',
  progress: "CAST(s.progress AS text) || '%'",
  'volume-size': 'CAST(s.volume_size_gib AS text)',
  description: 's.description',
  encrypted: "CAST('false' AS text)",
  'owner-alias': 'CAST(NULL AS text)',
};

/** DescribeSnapshots' selections (Owner / RestorableBy) in SQL: past this many values, in memory only (query parameter limit). */
const MAX_PUSHED_ACCOUNTS = 1000;
/** PostgreSQL text never holds NUL (and refuses it as a parameter); no account id holds one. */
const sqlSafe = (a: string) => !a.includes('\0');

export interface DescribeSnapshotsQuery extends DescribeQuery {
  ownerIds: readonly string[];
  restorableBy: readonly string[];
}

/**
 * Snapshots: CreateSnapshot / CopySnapshot (the SC of the volume's zone copies and reports
 * progress by StorageEvents), DescribeSnapshots (owner, createVolumePermission, public),
 * DeleteSnapshot (owner only; refused while an image uses it), createVolumePermission.
 */
@Injectable()
export class SnapshotsService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(ZONE_STORAGE) private readonly zone: ZoneStorageGateway,
    @Inject(SNAPSHOT_USAGE) private readonly usage: SnapshotUsage,
    @Inject(TagsService) private readonly tags: TagsService,
    @Inject(TaggableResources) registry: TaggableResources,
    @Inject(QuotaService) private readonly quotas: QuotaService,
  ) {
    registry.register({
      prefix: 'snap',
      resourceType: SNAPSHOT_RESOURCE_TYPE,
      notFoundCode: 'InvalidSnapshot.NotFound',
      owners: entityOwners(SnapshotEntity),
    });
  }

  // ---- visibility ------------------------------------------------------------------------------

  private async permissions(ids: readonly string[], em: EntityManager = this.ds.manager): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(ids.map((id) => [id, []]));
    if (!ids.length) return out;
    const rows = await em.getRepository(SnapshotVolumePermissionEntity).find({ where: { snapshotId: In([...ids]) }, order: { accountId: 'ASC' } });
    for (const r of rows) out.get(r.snapshotId)?.push(r.accountId);
    return out;
  }

  private static canRestore(s: SnapshotEntity, permitted: readonly string[], accountId: string): boolean {
    return s.accountId === accountId || s.isPublic || permitted.includes(accountId);
  }

  /** A snapshot `caller` may create volumes from (owner, createVolumePermission, public; admin: any). */
  async restorable(caller: Caller, id: string): Promise<SnapshotEntity> {
    if (!isValidId('snap', id)) throw Ec2Error.malformed('InvalidSnapshotID.Malformed', id);
    const s = await this.ds.getRepository(SnapshotEntity).findOne({ where: { id } });
    if (!s) throw Ec2Error.notFound('InvalidSnapshot.NotFound', id);
    if (caller.isAdmin) return s;
    const permitted = (await this.permissions([id])).get(id) ?? [];
    if (!SnapshotsService.canRestore(s, permitted, caller.id)) throw Ec2Error.notFound('InvalidSnapshot.NotFound', id);
    return s;
  }

  /** The named snapshot locked for a change by its owner (admin: any, by id). */
  private async owned(em: EntityManager, caller: Caller, id: string): Promise<SnapshotEntity> {
    if (!isValidId('snap', id)) throw Ec2Error.malformed('InvalidSnapshotID.Malformed', id);
    const s = await em.getRepository(SnapshotEntity).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
    if (!s) throw Ec2Error.notFound('InvalidSnapshot.NotFound', id);
    if (s.accountId !== caller.id && !caller.isAdmin) {
      const permitted = (await this.permissions([id], em)).get(id) ?? [];
      // Visible but not ours: AWS answers UnauthorizedOperation; invisible: NotFound.
      if (SnapshotsService.canRestore(s, permitted, caller.id)) throw Ec2Error.unauthorized(`You do not own snapshot '${id}'.`);
      throw Ec2Error.notFound('InvalidSnapshot.NotFound', id);
    }
    return s;
  }

  // ---- CreateSnapshot / CopySnapshot -------------------------------------------------------------

  async create(caller: Caller, now: Date, q: { volumeId: string; description?: string; tagSpecifications: TagSpecification[]; dryRun: boolean }): Promise<SnapshotView> {
    if (!isValidId('vol', q.volumeId)) throw Ec2Error.malformed('InvalidVolumeID.Malformed', q.volumeId);
    checkDescription(q.description);
    this.tags.checkTagSpecifications(SNAPSHOT_RESOURCE_TYPE, q.tagSpecifications);
    const volume = await this.ds.getRepository(VolumeEntity).findOne({ where: { id: q.volumeId } });
    if (!volume || volume.state === 'deleted' || (!caller.isAdmin && volume.accountId !== caller.id)) throw Ec2Error.notFound('InvalidVolume.NotFound', q.volumeId);
    if (volume.state !== 'available' && volume.state !== 'in-use') throw new Ec2Error('IncorrectState', `Volume '${volume.id}' is in the '${volume.state}' state.`);
    if (q.dryRun) throw Ec2Error.dryRun();
    const snapshot = this.newSnapshot(caller.id, now, { volumeId: volume.id, volumeSizeGiB: volume.sizeGiB, zone: volume.zone, description: q.description ?? '', sourceSnapshotId: null });
    const tags = await this.insert(caller, snapshot, q.tagSpecifications);
    await this.ask(snapshot, () => this.zone.createSnapshot(snapshot.zone, { snapshotId: snapshot.id, volumeId: volume.id }), 'CreateSnapshot');
    this.logger.info({ snapshotId: snapshot.id, volumeId: volume.id, zone: volume.zone }, 'snapshot pending');
    return { snapshot, tags, permittedAccounts: [] };
  }

  async copy(caller: Caller, now: Date, q: { sourceSnapshotId: string; sourceRegion: string; destinationRegion?: string; description?: string; encrypted?: boolean; tagSpecifications: TagSpecification[]; dryRun: boolean }): Promise<SnapshotView> {
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
    const snapshot = this.newSnapshot(caller.id, now, { volumeId: source.volumeId, volumeSizeGiB: source.volumeSizeGiB, zone: source.zone, description, sourceSnapshotId: source.id });
    const tags = await this.insert(caller, snapshot, q.tagSpecifications);
    await this.ask(snapshot, () => this.zone.copySnapshot(snapshot.zone, { sourceSnapshotId: source.id, snapshotId: snapshot.id }), 'CopySnapshot');
    this.logger.info({ snapshotId: snapshot.id, sourceSnapshotId: source.id, zone: source.zone }, 'snapshot copy pending');
    return { snapshot, tags, permittedAccounts: [] };
  }

  private newSnapshot(accountId: string, now: Date, f: Pick<SnapshotEntity, 'volumeId' | 'volumeSizeGiB' | 'zone' | 'description' | 'sourceSnapshotId'>): SnapshotEntity {
    return this.ds.getRepository(SnapshotEntity).create({
      id: newId('snap'),
      accountId,
      ...f,
      state: 'pending',
      progress: 0,
      stateReasonCode: null,
      stateReasonMessage: null,
      startTime: now,
      isPublic: false,
    });
  }

  private async insert(caller: Caller, s: SnapshotEntity, specs: TagSpecification[]): Promise<Tag[]> {
    return this.ds.transaction(async (em) => {
      await this.quotas.enforce(em, caller, { kind: 'snapshot' });
      await em.getRepository(SnapshotEntity).insert(s);
      return this.tags.applyTagSpecifications(caller, SNAPSHOT_RESOURCE_TYPE, s.id, specs, em);
    });
  }

  /** Sends the SC request; a refusal forgets the snapshot, no answer leaves it in `error`. */
  private async ask(s: SnapshotEntity, request: () => Promise<void>, what: string): Promise<void> {
    try {
      await request();
    } catch (e) {
      const { error, reason } = zoneError(e, what);
      if (e instanceof BusRemoteError) {
        await this.ds.transaction(async (em) => {
          await em.getRepository(SnapshotEntity).delete({ id: s.id });
          await this.tags.deleteAllFor(s.id, em);
        });
      } else {
        await this.ds.getRepository(SnapshotEntity).update({ id: s.id, state: 'pending' }, { state: 'error', stateReasonCode: reason.code, stateReasonMessage: reason.message });
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
   * must all be visible (describePage reads them in memory); otherwise a keyset walk in SQL with
   * the visibility, Owner, RestorableBy and the filters SQL can decide as a pre-selection. Either
   * way every rule is applied in memory too (`matching`), exactly as before SQL took part.
   */
  async describe(caller: Caller, q: DescribeSnapshotsQuery): Promise<{ snapshots: SnapshotView[]; nextToken?: string }> {
    for (const id of q.ids) if (!isValidId('snap', id)) throw Ec2Error.malformed('InvalidSnapshotID.Malformed', id);
    const tagsOf = (v: SnapshotView) => v.tags;
    /** createVolumePermission of the rows read so far (named ids: read once, for NotFound and the filters alike). */
    const perms = new Map<string, string[]>();
    const permsOf = async (rows: readonly SnapshotEntity[]) => {
      const unread = rows.map((r) => r.id).filter((id) => !perms.has(id));
      for (const [id, accounts] of await this.permissions(unread)) perms.set(id, accounts);
      return rows.map((snapshot): SnapshotView => ({ snapshot, tags: [], permittedAccounts: perms.get(snapshot.id) ?? [] }));
    };
    const { page, nextToken } = await describePage(q, {
      scope: 'DescribeSnapshots',
      min: 5,
      max: 1000,
      capAboveMax: true,
      idsParameter: 'snapshotSet',
      named: async (ids) => {
        const wanted = [...new Set(ids)];
        const rows = await this.ds.getRepository(SnapshotEntity).find({ where: { id: In(wanted) }, order: { id: 'ASC' } });
        const visible = new Set((await permsOf(rows)).filter((v) => caller.isAdmin || SnapshotsService.canRestore(v.snapshot, v.permittedAccounts, caller.id)).map((v) => v.snapshot.id));
        const missing = wanted.filter((id) => !visible.has(id));
        if (missing.length) throw Ec2Error.notFound('InvalidSnapshot.NotFound', missing);
        return rows;
      },
      query: () => this.selected(caller, q),
      alias: 's',
      validate: () => validateFilters(q.filters, SNAPSHOT_FILTERS, tagsOf),
      columns: SNAPSHOT_FILTER_COLUMNS,
      tagsOf: 's.id',
      keep: async (rows) => this.matching(caller, q, await permsOf(rows)),
      keyOf: (v) => v.snapshot.id,
    });
    return { snapshots: page, nextToken };
  }

  /** Of `views` (in id order), those the caller may see that Owner, RestorableBy and the filters select, with their tags. */
  private async matching(caller: Caller, q: DescribeSnapshotsQuery, views: SnapshotView[]): Promise<SnapshotView[]> {
    if (!caller.isAdmin) views = views.filter((v) => SnapshotsService.canRestore(v.snapshot, v.permittedAccounts, caller.id));
    if (q.ownerIds.length) {
      const owners = new Set(q.ownerIds.map((o) => (o === 'self' ? caller.id : o)));
      views = views.filter((v) => owners.has(v.snapshot.accountId));
    }
    if (q.restorableBy.length) {
      views = views.filter((v) =>
        q.restorableBy.some((r) => (r === 'all' ? v.snapshot.isPublic : SnapshotsService.canRestore(v.snapshot, v.permittedAccounts, r === 'self' ? caller.id : r))),
      );
    }
    // Tags are the owner's notes: accounts the snapshot is shared with (or public to) see none.
    const tags = await this.tags.tagsOf(views.filter((v) => caller.isAdmin || v.snapshot.accountId === caller.id).map((v) => v.snapshot.id));
    for (const v of views) v.tags = tags.get(v.snapshot.id) ?? [];
    return applyFilters(views, q.filters, SNAPSHOT_FILTERS, (v) => v.tags);
  }

  /**
   * The snapshots (alias `s`) the caller may see and Owner / RestorableBy select, in SQL: the same
   * rules as `matching` (a pre-selection: `matching` still decides). A snapshot restorable by an
   * account is one it owns, a public one, or one with a createVolumePermission for it.
   */
  private selected(caller: Caller, q: DescribeSnapshotsQuery): SelectQueryBuilder<SnapshotEntity> {
    const qb = this.ds.getRepository(SnapshotEntity).createQueryBuilder('s').where('TRUE');
    const account = (a: string) => (a === 'self' ? caller.id : a);
    const grantedTo = (param: string) => `EXISTS (SELECT 1 FROM snapshot_volume_permissions svp WHERE svp.snapshot_id = s.id AND svp.account_id IN (:...${param}))`;
    if (!caller.isAdmin) qb.andWhere(`(s.account_id = :snapViewer OR s.is_public OR ${grantedTo('snapViewers')})`, { snapViewer: caller.id, snapViewers: [caller.id] });
    if (q.ownerIds.length && q.ownerIds.length <= MAX_PUSHED_ACCOUNTS) {
      const owners = [...new Set(q.ownerIds.map(account))].filter(sqlSafe);
      if (owners.length) qb.andWhere('s.account_id IN (:...snapOwners)', { snapOwners: owners });
      else qb.andWhere('FALSE');
    }
    if (q.restorableBy.length && q.restorableBy.length <= MAX_PUSHED_ACCOUNTS) {
      // `all`: public ones; an account: public ones too, its own and those shared with it.
      const accounts = [...new Set(q.restorableBy.filter((r) => r !== 'all').map(account))].filter(sqlSafe);
      if (accounts.length) qb.andWhere(`(s.is_public OR s.account_id IN (:...snapRestorers) OR ${grantedTo('snapRestorers')})`, { snapRestorers: accounts });
      else qb.andWhere('s.is_public');
    }
    return qb;
  }

  // ---- DeleteSnapshot --------------------------------------------------------------------------

  async delete(caller: Caller, id: string, dryRun: boolean): Promise<void> {
    const s = await this.ds.transaction(async (em) => {
      const s = await this.owned(em, caller, id);
      const images = await this.usage.imagesUsing(id, em);
      if (images.length) throw new Ec2Error('InvalidSnapshot.InUse', `The snapshot ${id} is currently in use by ${images[0]}`);
      if (dryRun) throw Ec2Error.dryRun();
      return s;
    });
    try {
      await this.zone.deleteSnapshot(s.zone, id);
    } catch (e) {
      throw zoneError(e, 'DeleteSnapshot').error;
    }
    await this.ds.transaction(async (em) => {
      await em.getRepository(SnapshotEntity).delete({ id });
      await this.tags.deleteAllFor(id, em);
    });
    this.logger.info({ snapshotId: id, zone: s.zone }, 'snapshot deleted');
  }

  // ---- createVolumePermission ----------------------------------------------------------------

  async describePermissions(caller: Caller, id: string): Promise<{ snapshot: SnapshotEntity; accounts: string[] }> {
    const s = await this.ds.transaction((em) => this.owned(em, caller, id));
    return { snapshot: s, accounts: (await this.permissions([id])).get(id) ?? [] };
  }

  async modifyPermissions(caller: Caller, id: string, change: PermissionChange & { reset?: boolean }, dryRun: boolean): Promise<void> {
    for (const a of [...change.add.accounts, ...change.remove.accounts]) {
      if (!/^\d{12}$/.test(a)) throw Ec2Error.invalidParameterValue('UserId', a, 'An account id is 12 digits.');
    }
    await this.ds.transaction(async (em) => {
      const s = await this.owned(em, caller, id);
      if (dryRun) throw Ec2Error.dryRun();
      const repo = em.getRepository(SnapshotVolumePermissionEntity);
      if (change.reset) {
        await repo.delete({ snapshotId: id });
        await em.getRepository(SnapshotEntity).update({ id }, { isPublic: false });
        return;
      }
      for (const a of change.add.accounts) if (a !== s.accountId) await repo.upsert({ snapshotId: id, accountId: a }, ['snapshotId', 'accountId']);
      if (change.remove.accounts.length) await repo.delete({ snapshotId: id, accountId: In(change.remove.accounts) });
      if (change.add.all || change.remove.all) await em.getRepository(SnapshotEntity).update({ id }, { isPublic: change.add.all && !change.remove.all });
    });
  }

  // ---- StorageEvents -------------------------------------------------------------------------

  async applyEvent(event: StorageEvent): Promise<void> {
    const ev = { ...event, reason: publicReason(event.reason, (ref, d) => this.logger.warn({ snapshotId: event.id, ref, code: d.code, detail: d.message }, 'snapshot failure reported by the storage controller')) };
    const applied = await this.ds.transaction(async (em) => {
      const repo = em.getRepository(SnapshotEntity);
      const s = await repo.findOne({ where: { id: ev.id }, lock: { mode: 'pessimistic_write' } });
      const d = decideSnapshotEvent(s ?? undefined, ev);
      if (d.kind === 'ignore') return undefined;
      await repo.update({ id: ev.id }, d.patch);
      return { from: s!.state, to: d.patch.state ?? s!.state, progress: d.patch.progress };
    });
    if (applied && applied.from !== applied.to) this.logger.info({ snapshotId: ev.id, ...applied, reason: ev.reason?.code }, 'snapshot state');
  }
}

function checkDescription(d: string | undefined) {
  if (d !== undefined && [...d].length > 255) throw Ec2Error.invalidParameterValue('Description', undefined, 'The description may be at most 255 characters.');
}
