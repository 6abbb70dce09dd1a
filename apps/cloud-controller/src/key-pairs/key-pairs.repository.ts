/**
 * Every query of key pairs, in plain SQL: the `key_pairs` table (name unique per account).
 */
import type { DataSource, EntityManager } from 'typeorm';
import { scopeSqlPositional, type Caller } from '../persistence/access-scope.js';
import type { KeyPairEntity } from './key-pair.entity.js';
import { isUniqueViolation } from '../persistence/pg-errors.js';

/** A transaction (or the pool's manager). Services only pass it through. */
export type Tx = EntityManager;

/** A key pair row as the service reads and writes it. */
export type KeyPairRow = { [K in keyof KeyPairEntity]: KeyPairEntity[K] };

/** The repository as KeyPairsService uses it (the real one below, or an in-memory fake in specs). */
export interface KeyPairsStore {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Owner of each id that exists (tags). */
  owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>>;
  /** The key pairs `caller` may see (access-scope: its own; the admin: every account's), by name then account. */
  listVisible(caller: Caller): Promise<KeyPairRow[]>;
  /** Whether the account has a key pair of that name. */
  nameTaken(accountId: string, name: string): Promise<boolean>;
  /**
   * false when the account already has a key pair of that name (unique constraint): the
   * transaction is then aborted, so the caller must fail it.
   */
  insert(tx: Tx, row: KeyPairRow): Promise<boolean>;
  findById(tx: Tx, id: string): Promise<KeyPairRow | undefined>;
  findByName(tx: Tx, accountId: string, name: string): Promise<KeyPairRow | undefined>;
  delete(tx: Tx, id: string): Promise<void>;
}

/** Nest token of the KeyPairsStore (bound to KeyPairsRepository in KeyPairsModule). */
export const KEY_PAIRS_STORE = Symbol('KEY_PAIRS_STORE');

const COLUMNS = `k.id, k.account_id AS "accountId", k.name, k.key_type AS "keyType", k.fingerprint, k.public_key AS "publicKey", k.created_at AS "createdAt"`;

export class KeyPairsRepository implements KeyPairsStore {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.ds.transaction((em) => work(em));
  }

  async owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>> {
    const rows: Array<{ id: string; account_id: string }> = await tx.query('SELECT id, account_id FROM key_pairs WHERE id = ANY($1)', [[...ids]]);
    return new Map(rows.map((r) => [r.id, r.account_id]));
  }

  async listVisible(caller: Caller): Promise<KeyPairRow[]> {
    const scope = scopeSqlPositional(caller, 'k', 'see', 1);
    return this.ds.query(`SELECT ${COLUMNS} FROM key_pairs k WHERE ${scope.where} ORDER BY k.name ASC, k.account_id ASC`, scope.params);
  }

  async nameTaken(accountId: string, name: string): Promise<boolean> {
    const rows = await this.ds.query('SELECT 1 FROM key_pairs WHERE account_id = $1 AND name = $2', [accountId, name]);
    return rows.length > 0;
  }

  async insert(tx: Tx, r: KeyPairRow): Promise<boolean> {
    try {
      await tx.query('INSERT INTO key_pairs (id, account_id, name, key_type, fingerprint, public_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        r.id,
        r.accountId,
        r.name,
        r.keyType,
        r.fingerprint,
        r.publicKey,
        r.createdAt,
      ]);
      return true;
    } catch (e) {
      if (isUniqueViolation(e)) return false;
      throw e;
    }
  }

  async findById(tx: Tx, id: string): Promise<KeyPairRow | undefined> {
    const rows = await tx.query(`SELECT ${COLUMNS} FROM key_pairs k WHERE k.id = $1`, [id]);
    return rows[0];
  }

  async findByName(tx: Tx, accountId: string, name: string): Promise<KeyPairRow | undefined> {
    const rows = await tx.query(`SELECT ${COLUMNS} FROM key_pairs k WHERE k.account_id = $1 AND k.name = $2`, [accountId, name]);
    return rows[0];
  }

  async delete(tx: Tx, id: string): Promise<void> {
    await tx.query('DELETE FROM key_pairs WHERE id = $1', [id]);
  }
}
