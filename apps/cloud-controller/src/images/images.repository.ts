/**
 * Every query of images, in plain SQL: the `images` table (deregistered rows stay for the
 * instances that name them, invisible to the API), launch permissions
 * (`image_launch_permissions`), the advisory locks that serialise a blob digest or an import name,
 * and the admin account's id (the `amazon` owner alias).
 */
import type { DataSource, EntityManager } from 'typeorm';
import { scopeSqlPositional, IMAGE_SHARING, type Caller } from '../persistence/access-scope.js';
import type { ImageEntity } from './image.entity.js';
import { isUniqueViolation } from '../persistence/pg-errors.js';

/** A transaction (or the pool's manager). Services only pass it through. */
export type Tx = EntityManager;

/** An image row as the service reads and writes it. */
export type ImageRow = { [K in keyof ImageEntity]: ImageEntity[K] };

/** An image with whether the asking account holds a launch permission on it. */
export type ScopedImage = ImageRow & { grantedToCaller: boolean };

/** What ModifyImageAttribute may change on the row itself. */
export type ImageUpdate = Partial<Pick<ImageRow, 'isPublic' | 'description' | 'deregisteredAt'>>;

/** What a finished fetch writes. */
export interface StoredBlob {
  sha256: string;
  size: number;
  format: 'raw' | 'qcow2';
}

/**
 * The repository as ImagesService uses it (the real one below, or an in-memory fake in specs).
 * `tx` is a transaction from `transaction()` or `pool` for a single statement.
 */
export interface ImagesStore {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  readonly pool: Tx;
  /** Owner of each id that exists and is registered (tags). */
  owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>>;
  /** Registered images left `pending` (fetches to resume). */
  pendingFetches(): Promise<ImageRow[]>;
  /** Serialises work on one blob digest until the transaction ends. */
  lockDigest(tx: Tx, sha256: string): Promise<void>;
  /** Serialises imports of one name of one account until the transaction ends. */
  lockName(tx: Tx, accountId: string, name: string): Promise<void>;
  /** The account's registered image of that name. */
  findByName(tx: Tx, accountId: string, name: string): Promise<ImageRow | undefined>;
  /**
   * false when the account already has a registered image of that name (unique index): the
   * transaction is then aborted, so the caller must fail it.
   */
  insert(tx: Tx, row: ImageRow): Promise<boolean>;
  /** A registered image, with whether `accountId` holds a launch permission on it. */
  findRegistered(tx: Tx, id: string, accountId: string): Promise<ScopedImage | undefined>;
  /** Registered images `caller` may see (access-scope), sorted by id; only `ids` when given. */
  listVisible(caller: Caller, ids: readonly string[]): Promise<ImageRow[]>;
  /** Registered images of every account, newest first. */
  listRegistered(): Promise<ImageRow[]>;
  /** The accounts granted a launch permission, per image of `imageIds` that has any. */
  permissionsOf(imageIds: readonly string[]): Promise<Map<string, Set<string>>>;
  /** The admin account (the oldest, if several): its public images are shown as `amazon`'s. */
  adminAccountId(): Promise<string | undefined>;
  /** pending → available with its blob; false when it is no longer a registered pending image. */
  markAvailable(tx: Tx, id: string, blob: StoredBlob): Promise<boolean>;
  /** pending → failed with the reason shown to the tenant (no-op when no longer pending). */
  markFailed(id: string, reason: { code: string; message: string }): Promise<void>;
  update(tx: Tx, id: string, change: ImageUpdate): Promise<void>;
  /** Marks the image deregistered and drops its launch permissions. */
  deregister(tx: Tx, id: string, now: Date): Promise<void>;
  grant(tx: Tx, id: string, accountIds: readonly string[]): Promise<void>;
  /** Revokes those accounts' launch permissions (every one when `accountIds` is omitted). */
  revoke(tx: Tx, id: string, accountIds?: readonly string[]): Promise<void>;
  /** Every image (registered or not) stored as that blob. */
  imagesOfBlob(tx: Tx, sha256: string): Promise<Array<Pick<ImageRow, 'id' | 'deregisteredAt'>>>;
  /** Images (registered or not) whose kernel or ramdisk is one of `ids`. */
  referencing(tx: Tx, ids: readonly string[]): Promise<string[]>;
}

const COLUMNS = `i.id, i.account_id AS "accountId", i.name, i.description, i.state, i.state_reason_code AS "stateReasonCode",
  i.state_reason_message AS "stateReasonMessage", i.image_type AS "imageType", i.architecture, i.virtualization_type AS "virtualizationType",
  i.root_device_name AS "rootDeviceName", i.root_device_type AS "rootDeviceType", i.kernel_id AS "kernelId", i.ramdisk_id AS "ramdiskId",
  i.kernel_args AS "kernelArgs", i.blob_sha256 AS "blobSha256", i.size_bytes AS "sizeBytes", i.format, i.is_public AS "isPublic",
  i.image_location AS "imageLocation", i.fetch_location AS "fetchLocation", i.created_at AS "createdAt", i.deregistered_at AS "deregisteredAt"`;

/** size_bytes is a bigint (text from the driver). */
function toRow<T extends { sizeBytes: unknown }>(r: T): T & { sizeBytes: number | null } {
  return { ...r, sizeBytes: r.sizeBytes === null || r.sizeBytes === undefined ? null : Number(r.sizeBytes) };
}

/** Rows of an UPDATE/DELETE (TypeORM answers `[rows, count]` for those). */
function affected(r: unknown): number {
  return Array.isArray(r) && typeof r[1] === 'number' ? r[1] : 0;
}

/** Nest token of the ImagesStore (bound to ImagesRepository in ImagesModule). */
export const IMAGES_STORE = Symbol('IMAGES_STORE');

export class ImagesRepository implements ImagesStore {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.ds.transaction((em) => work(em));
  }

  get pool(): Tx {
    return this.ds.manager;
  }

  async owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>> {
    const rows: Array<{ id: string; account_id: string }> = await tx.query('SELECT id, account_id FROM images WHERE id = ANY($1) AND deregistered_at IS NULL', [[...ids]]);
    return new Map(rows.map((r) => [r.id, r.account_id]));
  }

  async pendingFetches(): Promise<ImageRow[]> {
    const rows = await this.ds.query(`SELECT ${COLUMNS} FROM images i WHERE i.state = 'pending' AND i.deregistered_at IS NULL ORDER BY i.id`);
    return rows.map(toRow);
  }

  async lockDigest(tx: Tx, sha256: string): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`koala-image-blob:${sha256}`]);
  }

  async lockName(tx: Tx, accountId: string, name: string): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`koala-image-name:${accountId}:${name}`]);
  }

  async findByName(tx: Tx, accountId: string, name: string): Promise<ImageRow | undefined> {
    const rows = await tx.query(`SELECT ${COLUMNS} FROM images i WHERE i.account_id = $1 AND i.name = $2 AND i.deregistered_at IS NULL`, [accountId, name]);
    return rows.length ? toRow(rows[0]) : undefined;
  }

  async insert(tx: Tx, r: ImageRow): Promise<boolean> {
    const values = [
      r.id,
      r.accountId,
      r.name,
      r.description,
      r.state,
      r.stateReasonCode,
      r.stateReasonMessage,
      r.imageType,
      r.architecture,
      r.virtualizationType,
      r.rootDeviceName,
      r.rootDeviceType,
      r.kernelId,
      r.ramdiskId,
      r.kernelArgs,
      r.blobSha256,
      r.sizeBytes,
      r.format,
      r.isPublic,
      r.imageLocation,
      r.fetchLocation,
      r.createdAt,
      r.deregisteredAt,
    ];
    try {
      await tx.query(
        `INSERT INTO images (id, account_id, name, description, state, state_reason_code, state_reason_message, image_type, architecture,
           virtualization_type, root_device_name, root_device_type, kernel_id, ramdisk_id, kernel_args, blob_sha256, size_bytes,
           format, is_public, image_location, fetch_location, created_at, deregistered_at)
         VALUES (${values.map((_, i) => `$${i + 1}`).join(', ')})`,
        values,
      );
      return true;
    } catch (e) {
      if (isUniqueViolation(e)) return false;
      throw e;
    }
  }

  async findRegistered(tx: Tx, id: string, accountId: string): Promise<ScopedImage | undefined> {
    const rows = await tx.query(
      `SELECT ${COLUMNS}, EXISTS (SELECT 1 FROM image_launch_permissions p WHERE p.image_id = i.id AND p.account_id = $2) AS "grantedToCaller"
         FROM images i WHERE i.id = $1 AND i.deregistered_at IS NULL`,
      [id, accountId],
    );
    return rows.length ? toRow(rows[0]) : undefined;
  }

  async listVisible(caller: Caller, ids: readonly string[]): Promise<ImageRow[]> {
    const params: unknown[] = [];
    let where = 'i.deregistered_at IS NULL';
    if (ids.length) {
      params.push([...new Set(ids)]);
      where += ` AND i.id = ANY($${params.length})`;
    }
    const scope = scopeSqlPositional(caller, 'i', 'see', params.length + 1, IMAGE_SHARING);
    params.push(...scope.params);
    const rows = await this.ds.query(`SELECT ${COLUMNS} FROM images i WHERE ${where} AND ${scope.where} ORDER BY i.id`, params);
    return rows.map(toRow);
  }

  async listRegistered(): Promise<ImageRow[]> {
    const rows = await this.ds.query(`SELECT ${COLUMNS} FROM images i WHERE i.deregistered_at IS NULL ORDER BY i.created_at DESC, i.id ASC`);
    return rows.map(toRow);
  }

  async permissionsOf(imageIds: readonly string[]): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    if (!imageIds.length) return out;
    const rows: Array<{ image_id: string; account_id: string }> = await this.ds.query('SELECT image_id, account_id FROM image_launch_permissions WHERE image_id = ANY($1)', [[...imageIds]]);
    for (const r of rows) {
      if (!out.has(r.image_id)) out.set(r.image_id, new Set());
      out.get(r.image_id)!.add(r.account_id);
    }
    return out;
  }

  async adminAccountId(): Promise<string | undefined> {
    const rows: Array<{ id: string }> = await this.ds.query('SELECT id FROM accounts WHERE is_admin ORDER BY created_at ASC LIMIT 1');
    return rows[0]?.id;
  }

  async markAvailable(tx: Tx, id: string, blob: StoredBlob): Promise<boolean> {
    const r = await tx.query(
      `UPDATE images SET state = 'available', blob_sha256 = $2, size_bytes = $3, format = $4, state_reason_code = NULL, state_reason_message = NULL, fetch_location = NULL
        WHERE id = $1 AND state = 'pending' AND deregistered_at IS NULL`,
      [id, blob.sha256, blob.size, blob.format],
    );
    return affected(r) > 0;
  }

  async markFailed(id: string, reason: { code: string; message: string }): Promise<void> {
    await this.ds.query(
      `UPDATE images SET state = 'failed', state_reason_code = $2, state_reason_message = $3, fetch_location = NULL
        WHERE id = $1 AND state = 'pending' AND deregistered_at IS NULL`,
      [id, reason.code, reason.message],
    );
  }

  async update(tx: Tx, id: string, change: ImageUpdate): Promise<void> {
    const columns = { isPublic: 'is_public', description: 'description', deregisteredAt: 'deregistered_at' } as const;
    const set: string[] = [];
    const params: unknown[] = [id];
    for (const [k, column] of Object.entries(columns)) {
      const v = change[k as keyof ImageUpdate];
      if (v === undefined) continue;
      params.push(v);
      set.push(`${column} = $${params.length}`);
    }
    if (set.length) await tx.query(`UPDATE images SET ${set.join(', ')} WHERE id = $1`, params);
  }

  async deregister(tx: Tx, id: string, now: Date): Promise<void> {
    await tx.query('UPDATE images SET deregistered_at = $2 WHERE id = $1', [id, now]);
    await this.revoke(tx, id);
  }

  async grant(tx: Tx, id: string, accountIds: readonly string[]): Promise<void> {
    if (!accountIds.length) return;
    await tx.query('INSERT INTO image_launch_permissions (image_id, account_id) SELECT $1, unnest($2::varchar[]) ON CONFLICT DO NOTHING', [id, [...accountIds]]);
  }

  async revoke(tx: Tx, id: string, accountIds?: readonly string[]): Promise<void> {
    if (accountIds === undefined) await tx.query('DELETE FROM image_launch_permissions WHERE image_id = $1', [id]);
    else if (accountIds.length) await tx.query('DELETE FROM image_launch_permissions WHERE image_id = $1 AND account_id = ANY($2)', [id, [...accountIds]]);
  }

  async imagesOfBlob(tx: Tx, sha256: string): Promise<Array<Pick<ImageRow, 'id' | 'deregisteredAt'>>> {
    return tx.query('SELECT id, deregistered_at AS "deregisteredAt" FROM images WHERE blob_sha256 = $1', [sha256]);
  }

  async referencing(tx: Tx, ids: readonly string[]): Promise<string[]> {
    if (!ids.length) return [];
    const rows: Array<{ id: string }> = await tx.query('SELECT id FROM images WHERE kernel_id = ANY($1) OR ramdisk_id = ANY($1)', [[...ids]]);
    return rows.map((r) => r.id);
  }
}
