/**
 * The `instance_block_devices` table (migration 1764135000000) in plain SQL: the EBS mappings of
 * launched instances, from the request until the volume is attached, has failed or was released;
 * and what the mappings read of their volumes and instances.
 */
import type { TagSpecification } from '@koala/ec2-query';
import type { DataSource, EntityManager } from 'typeorm';

/**
 * pending   → the volume is to be created (volume_id null)
 * creating  → the volume was asked for; waits for it to be available and the instance running
 * attaching → an AttachVolume is under way (claimed_at: since when)
 * attached  → done: from here the volume's own attachment (and the sweeper) rule
 * failed    → could not be created or attached (reason_*); the instance runs without it
 * released  → the instance ended before the attachment; a DeleteOnTermination volume was deleted
 */
export type BlockDeviceState = 'pending' | 'creating' | 'attaching' | 'attached' | 'failed' | 'released';

export interface BlockDeviceRow {
  instanceId: string;
  deviceName: string;
  accountId: string;
  zone: string;
  sizeGiB: number | null;
  snapshotId: string | null;
  volumeType: string | null;
  iops: number | null;
  deleteOnTermination: boolean;
  volumeTags: TagSpecification[];
  volumeId: string | null;
  state: BlockDeviceState;
  reasonCode: string | null;
  reasonMessage: string | null;
  claimedAt: Date | null;
  createdAt: Date;
}

/** A row with the state of its instance (null: the instance row is gone). */
export interface OpenBlockDevice extends BlockDeviceRow {
  instanceState: string | null;
}

const COLUMNS = `b.instance_id AS "instanceId", b.device_name AS "deviceName", b.account_id AS "accountId", b.zone, b.size_gib AS "sizeGiB",
  b.snapshot_id AS "snapshotId", b.volume_type AS "volumeType", b.iops, b.delete_on_termination AS "deleteOnTermination",
  b.volume_tags AS "volumeTags", b.volume_id AS "volumeId", b.state, b.reason_code AS "reasonCode", b.reason_message AS "reasonMessage",
  b.claimed_at AS "claimedAt", b.created_at AS "createdAt"`;

/** A transaction (RunInstances', ModifyInstanceAttribute's). Services only pass it through. */
export type Tx = EntityManager;

type Db = Pick<DataSource | EntityManager, 'query'>;

/** A mapping's volume, as the mapping's steps read it. */
export interface MappedVolume {
  id: string;
  state: string;
  stateReasonCode: string | null;
  stateReasonMessage: string | null;
  attachInstanceId: string | null;
  attachDevice: string | null;
  attachState: string | null;
}

/** The shape BlockDevicesService depends on (BlockDeviceRepository; an in-memory fake in the unit spec). */
export interface BlockDeviceStore {
  insert(tx: Tx, rows: readonly BlockDeviceRow[]): Promise<void>;
  open(instanceIds?: readonly string[]): Promise<OpenBlockDevice[]>;
  move(key: { instanceId: string; deviceName: string }, from: BlockDeviceState, patch: BlockDevicePatch, claimedBefore?: Date): Promise<boolean>;
  setDeleteOnTermination(tx: Tx, instanceId: string, deviceName: string, value: boolean): Promise<boolean>;
  /** The DeleteOnTermination of the volume attached (or attaching, detaching) at the device; true if there was one. */
  setVolumeDeleteOnTermination(tx: Tx, instanceId: string, deviceName: string, value: boolean): Promise<boolean>;
  volume(id: string): Promise<MappedVolume | undefined>;
  /** The id of the account's volume created with `clientToken`, if any. */
  volumeByClientToken(accountId: string, clientToken: string): Promise<string | undefined>;
  /** The instance's state (undefined: the row is gone). */
  instanceState(instanceId: string): Promise<string | undefined>;
}

export type BlockDevicePatch = { state?: BlockDeviceState; volumeId?: string; reason?: { code: string; message: string } | null; claimedAt?: Date | null };
const affected = (r: unknown): number => (Array.isArray(r) && typeof r[1] === 'number' ? r[1] : 0);

export class BlockDeviceRepository implements BlockDeviceStore {
  constructor(private readonly ds: Db) {}

  async insert(em: Db, rows: readonly BlockDeviceRow[]): Promise<void> {
    for (const r of rows) {
      await em.query(
        `INSERT INTO instance_block_devices (instance_id, device_name, account_id, zone, size_gib, snapshot_id, volume_type, iops, delete_on_termination, volume_tags, volume_id, state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13)`,
        [r.instanceId, r.deviceName, r.accountId, r.zone, r.sizeGiB, r.snapshotId, r.volumeType, r.iops, r.deleteOnTermination, JSON.stringify(r.volumeTags), r.volumeId, r.state, r.createdAt],
      );
    }
  }

  /**
   * Rows with work left: pending/creating/attaching, and failed ones holding a
   * DeleteOnTermination volume of an instance that is gone (optionally of some instances only).
   */
  async open(instanceIds?: readonly string[]): Promise<OpenBlockDevice[]> {
    const params: unknown[] = [];
    let only = '';
    if (instanceIds) {
      params.push([...instanceIds]);
      only = 'AND b.instance_id = ANY($1)';
    }
    return this.ds.query(
      `SELECT ${COLUMNS}, i.state AS "instanceState"
       FROM instance_block_devices b LEFT JOIN instances i ON i.id = b.instance_id
       WHERE (b.state IN ('pending', 'creating', 'attaching')
              OR (b.state = 'failed' AND b.volume_id IS NOT NULL AND b.delete_on_termination AND (i.id IS NULL OR i.state = 'terminated')))
       ${only}
       ORDER BY b.created_at, b.instance_id, b.device_name`,
      params,
    );
  }

  async ofInstance(em: Db, instanceId: string): Promise<BlockDeviceRow[]> {
    return em.query(`SELECT ${COLUMNS} FROM instance_block_devices b WHERE b.instance_id = $1 ORDER BY b.device_name`, [instanceId]);
  }

  /** Moves a row from `from` (and, with `claimedBefore`, only if unclaimed since then); true if this caller won. */
  async move(key: { instanceId: string; deviceName: string }, from: BlockDeviceState, patch: BlockDevicePatch, claimedBefore?: Date): Promise<boolean> {
    const sets: string[] = [];
    const params: unknown[] = [key.instanceId, key.deviceName, from];
    const set = (col: string, v: unknown) => {
      params.push(v);
      sets.push(`${col} = $${params.length}`);
    };
    if (patch.state) set('state', patch.state);
    if (patch.volumeId !== undefined) set('volume_id', patch.volumeId);
    if (patch.reason !== undefined) {
      set('reason_code', patch.reason?.code ?? null);
      set('reason_message', patch.reason?.message.slice(0, 512) ?? null);
    }
    if (patch.claimedAt !== undefined) set('claimed_at', patch.claimedAt);
    let claim = '';
    if (claimedBefore) {
      params.push(claimedBefore);
      claim = `AND (claimed_at IS NULL OR claimed_at < $${params.length})`;
    }
    const r = await this.ds.query(`UPDATE instance_block_devices SET ${sets.join(', ')} WHERE instance_id = $1 AND device_name = $2 AND state = $3 ${claim}`, params);
    return affected(r) > 0;
  }

  /** ModifyInstanceAttribute: the DeleteOnTermination of a mapping not attached yet; true if there was one. */
  async setDeleteOnTermination(em: Db, instanceId: string, deviceName: string, value: boolean): Promise<boolean> {
    const r = await em.query(
      `UPDATE instance_block_devices SET delete_on_termination = $3 WHERE instance_id = $1 AND device_name = $2 AND state IN ('pending', 'creating', 'attaching', 'attached', 'failed')`,
      [instanceId, deviceName, value],
    );
    return affected(r) > 0;
  }

  async setVolumeDeleteOnTermination(tx: Tx, instanceId: string, deviceName: string, value: boolean): Promise<boolean> {
    const r = await tx.query('UPDATE volumes SET delete_on_termination = $3 WHERE attach_instance_id = $1 AND attach_device = $2 AND attach_state IS NOT NULL', [instanceId, deviceName, value]);
    return affected(r) > 0;
  }

  async volume(id: string): Promise<MappedVolume | undefined> {
    const rows: MappedVolume[] = await this.ds.query(
      `SELECT id, state, state_reason_code AS "stateReasonCode", state_reason_message AS "stateReasonMessage", attach_instance_id AS "attachInstanceId",
              attach_device AS "attachDevice", attach_state AS "attachState"
       FROM volumes WHERE id = $1`,
      [id],
    );
    return rows[0];
  }

  async volumeByClientToken(accountId: string, clientToken: string): Promise<string | undefined> {
    const rows: Array<{ id: string }> = await this.ds.query('SELECT id FROM volumes WHERE account_id = $1 AND client_token = $2', [accountId, clientToken]);
    return rows[0]?.id;
  }

  async instanceState(instanceId: string): Promise<string | undefined> {
    const rows: Array<{ state: string }> = await this.ds.query('SELECT state FROM instances WHERE id = $1', [instanceId]);
    return rows[0]?.state;
  }
}
