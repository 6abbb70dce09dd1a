/**
 * Every query of volumes (the `volumes` table), and what AttachVolume / DetachVolume read of the
 * instance a volume goes to (the `instances` table), in TypeORM query builders over VolumeEntity
 * (the describe paging of persistence/describe-page.ts is built on them) and plain SQL for the
 * instances. Visibility is the one access rule (persistence/access-scope.ts): volumes are not shared.
 */
import { In, type DataSource, type EntityManager, type SelectQueryBuilder } from 'typeorm';
import { scopeSql, type Caller } from '../persistence/access-scope.js';
import { describePage, type DescribePaging, type DescribeQuery } from '../persistence/describe-page.js';
import { findVisible, type FilterColumns } from '../persistence/find-visible.js';
import { VolumeEntity } from './volume.entity.js';
import { isUniqueViolation } from '../persistence/pg-errors.js';

/** A transaction (or the pool's manager). Services only pass it through. */
export type Tx = EntityManager;

/** A volume row (the columns of VolumeEntity). */
export type VolumeRow = VolumeEntity;

/** A conditional change: the row `id` only while the other given columns still hold these values. */
export type VolumeMatch = { id: string; state?: VolumeRow['state']; attachInstanceId?: string; attachState?: NonNullable<VolumeRow['attachState']> };

/** The instance an attachment concerns, as AttachVolume / DetachVolume read it. */
export interface AttachTarget {
  id: string;
  accountId: string;
  state: string;
  zone: string;
  node: string | null;
  rootDeviceName: string;
}

/**
 * A unique index refused a write: the (account, ClientToken) of CreateVolume, or the one
 * volume per (instance, device) of AttachVolume.
 */
export class UniqueViolation extends Error {
  constructor(readonly constraint: string | undefined) {
    super(`unique violation${constraint ? ` (${constraint})` : ''}`);
  }
}

/** What a Describe* action of volumes decides itself; the repository brings the rows (see describePage). */
export type VolumePaging<V> = Omit<DescribePaging<VolumeRow, V>, 'named' | 'query' | 'alias' | 'columns' | 'tagsOf'>;

/**
 * The filters of DescribeVolumes that SQL can decide (volumes aliased `v`): each expression is the
 * text of exactly the value the filter reads in VOLUME_FILTERS (volumes.service.ts; integers and
 * booleans as String() writes them, NULL where it reads null). DescribeVolumes pushes these (and
 * the tag filters) into its query as a pre-selection and still applies every filter in memory.
 * The times stay in memory only.
 */
export const VOLUME_FILTER_COLUMNS: FilterColumns = {
  'volume-id': 'v.id',
  status: 'v.state',
  'availability-zone': 'v.zone',
  'attachment.instance-id': 'v.attach_instance_id',
  'attachment.status': 'v.attach_state',
  'attachment.device': 'v.attach_device',
  'attachment.delete-on-termination': "CASE WHEN v.attach_state IS NOT NULL AND v.attach_state <> '' THEN CAST(v.delete_on_termination AS text) END",
  size: 'CAST(v.size_gib AS text)',
  'snapshot-id': "COALESCE(v.snapshot_id, '')",
  'volume-type': 'v.volume_type',
  encrypted: "CAST('false' AS text)",
  'multi-attach-enabled': "CAST('false' AS text)",
  iops: 'CAST(v.iops AS text)',
  'owner-id': 'v.account_id',
};

/** The DescribeVolumeStatus filters SQL can decide (volumes aliased `v`; see volumeStatus in volume-states.ts). */
export const VOLUME_STATUS_FILTER_COLUMNS: FilterColumns = {
  'availability-zone': 'v.zone',
  'volume-status.status': "CASE WHEN v.state IN ('available', 'in-use') THEN 'ok' WHEN v.state = 'error' THEN 'impaired' ELSE 'insufficient-data' END",
};

/** The shape VolumesService depends on (VolumesRepository; an in-memory fake in the unit spec). */
export interface VolumesStore {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Owner account of each of `ids` that exists and is not deleted (tags). */
  owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>>;
  find(id: string): Promise<VolumeRow | undefined>;
  byClientToken(accountId: string, clientToken: string): Promise<VolumeRow | undefined>;
  /** Throws UniqueViolation on a ClientToken already used by the account. */
  insert(tx: Tx, v: VolumeRow): Promise<void>;
  remove(tx: Tx, id: string): Promise<void>;
  /** The row, locked for a change until the transaction ends. */
  lock(tx: Tx, id: string): Promise<VolumeRow | undefined>;
  lockMany(tx: Tx, ids: readonly string[]): Promise<VolumeRow[]>;
  /** Applies `patch` to the row `match` selects; how many rows changed. Throws UniqueViolation on a device already in use. */
  update(match: VolumeMatch, patch: Partial<VolumeRow>, tx?: Tx): Promise<number>;
  updateMany(tx: Tx, ids: readonly string[], patch: Partial<VolumeRow>): Promise<void>;
  /** Whether a volume of `instanceId` is attached (or attaching) at `device`. */
  deviceTaken(tx: Tx, instanceId: string, device: string): Promise<boolean>;
  /** The instance, share-locked until the transaction ends (an attachment is being decided). */
  lockInstance(tx: Tx, instanceId: string): Promise<AttachTarget | undefined>;
  instance(instanceId: string): Promise<AttachTarget | undefined>;
  /** Volumes attaching or attached in `zone`, by id. */
  exported(zone: string): Promise<VolumeRow[]>;
  /** Ids of the volumes attached to any of the instances. */
  attachedTo(instanceIds: readonly string[]): Promise<string[]>;
  /** Ids of volumes attached to instances that are terminated or gone, or stuck attaching/detaching since before `stuckBefore`. */
  toSweep(stuckBefore: Date): Promise<string[]>;
  /**
   * A page of DescribeVolumes (or, `live`, DescribeVolumeStatus: no deleted ones) over the volumes
   * the caller may see, deleted ones only if deleted after `cutoff` (describePage).
   */
  describe<V>(caller: Caller, q: DescribeQuery, o: { cutoff: Date; live: boolean }, how: VolumePaging<V>): Promise<{ page: V[]; nextToken?: string }>;
}

const asUnique = (e: unknown): unknown => (isUniqueViolation(e) ? new UniqueViolation((e as { constraint?: string }).constraint) : e);

const TARGET_COLUMNS = `i.id, i.account_id AS "accountId", i.state, i.zone, i.node, i.root_device_name AS "rootDeviceName"`;

export class VolumesRepository implements VolumesStore {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.ds.transaction((em) => work(em));
  }

  async owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>> {
    if (!ids.length) return new Map();
    const rows = await tx
      .getRepository(VolumeEntity)
      .createQueryBuilder('v')
      .select(['v.id', 'v.accountId'])
      .where('v.id IN (:...ids)', { ids: [...ids] })
      .andWhere("v.state <> 'deleted'")
      .getMany();
    return new Map(rows.map((r) => [r.id, r.accountId]));
  }

  async find(id: string): Promise<VolumeRow | undefined> {
    return (await this.ds.getRepository(VolumeEntity).findOne({ where: { id } })) ?? undefined;
  }

  async byClientToken(accountId: string, clientToken: string): Promise<VolumeRow | undefined> {
    return (await this.ds.getRepository(VolumeEntity).findOne({ where: { accountId, clientToken } })) ?? undefined;
  }

  async insert(tx: Tx, v: VolumeRow): Promise<void> {
    try {
      await tx.getRepository(VolumeEntity).insert(v);
    } catch (e) {
      throw asUnique(e);
    }
  }

  async remove(tx: Tx, id: string): Promise<void> {
    await tx.getRepository(VolumeEntity).delete({ id });
  }

  async lock(tx: Tx, id: string): Promise<VolumeRow | undefined> {
    return (await tx.getRepository(VolumeEntity).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } })) ?? undefined;
  }

  async lockMany(tx: Tx, ids: readonly string[]): Promise<VolumeRow[]> {
    if (!ids.length) return [];
    return tx.getRepository(VolumeEntity).find({ where: { id: In([...ids]) }, lock: { mode: 'pessimistic_write' } });
  }

  async update(match: VolumeMatch, patch: Partial<VolumeRow>, tx: Tx = this.ds.manager): Promise<number> {
    try {
      return (await tx.getRepository(VolumeEntity).update(match, patch)).affected ?? 0;
    } catch (e) {
      throw asUnique(e);
    }
  }

  async updateMany(tx: Tx, ids: readonly string[], patch: Partial<VolumeRow>): Promise<void> {
    if (ids.length) await tx.getRepository(VolumeEntity).update({ id: In([...ids]) }, patch);
  }

  async deviceTaken(tx: Tx, instanceId: string, device: string): Promise<boolean> {
    return (await tx.getRepository(VolumeEntity).count({ where: { attachInstanceId: instanceId, attachDevice: device } })) > 0;
  }

  async lockInstance(tx: Tx, instanceId: string): Promise<AttachTarget | undefined> {
    const rows: AttachTarget[] = await tx.query(`SELECT ${TARGET_COLUMNS} FROM instances i WHERE i.id = $1 FOR SHARE`, [instanceId]);
    return rows[0];
  }

  async instance(instanceId: string): Promise<AttachTarget | undefined> {
    const rows: AttachTarget[] = await this.ds.query(`SELECT ${TARGET_COLUMNS} FROM instances i WHERE i.id = $1`, [instanceId]);
    return rows[0];
  }

  async exported(zone: string): Promise<VolumeRow[]> {
    return this.ds.getRepository(VolumeEntity).find({ where: { zone, attachState: In(['attaching', 'attached']) }, order: { id: 'ASC' } });
  }

  async attachedTo(instanceIds: readonly string[]): Promise<string[]> {
    if (!instanceIds.length) return [];
    const rows = await this.ds.getRepository(VolumeEntity).find({ where: { attachInstanceId: In([...instanceIds]) }, select: { id: true } });
    return rows.map((r) => r.id);
  }

  async toSweep(stuckBefore: Date): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.ds.query(
      `SELECT v.id FROM volumes v LEFT JOIN instances i ON i.id = v.attach_instance_id
       WHERE v.attach_instance_id IS NOT NULL
         AND (i.id IS NULL OR i.state = 'terminated' OR (v.attach_state IN ('attaching', 'detaching') AND v.attach_time < $1))`,
      [stuckBefore],
    );
    return rows.map((r) => r.id);
  }

  /** Every account's volumes (alias `v`) as a fresh query; deleted ones only if deleted after `cutoff`. */
  private retained(cutoff: Date): SelectQueryBuilder<VolumeEntity> {
    return this.ds.getRepository(VolumeEntity).createQueryBuilder('v').where("(v.state <> 'deleted' OR v.deleted_at > :cutoff)", { cutoff });
  }

  async describe<V>(caller: Caller, q: DescribeQuery, o: { cutoff: Date; live: boolean }, how: VolumePaging<V>): Promise<{ page: V[]; nextToken?: string }> {
    return describePage(q, {
      ...how,
      named: (ids) => findVisible(this.retained(o.cutoff), 'v', caller, ids, { prefix: 'vol', malformed: 'InvalidVolumeID.Malformed', notFound: 'InvalidVolume.NotFound' }),
      query: () => {
        const scope = scopeSql(caller, 'v', 'see');
        const qb = this.retained(o.cutoff).andWhere(scope.where, scope.params);
        return o.live ? qb.andWhere("v.state <> 'deleted'") : qb;
      },
      alias: 'v',
      columns: o.live ? VOLUME_STATUS_FILTER_COLUMNS : VOLUME_FILTER_COLUMNS,
      tagsOf: o.live ? undefined : 'v.id',
    });
  }
}
