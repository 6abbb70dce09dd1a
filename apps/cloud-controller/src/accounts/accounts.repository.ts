/**
 * Every query of accounts and access keys, in plain SQL: the `accounts` and `access_keys` tables.
 * Secrets are stored as the encrypted blobs the service hands over; this layer never sees a
 * plain secret.
 */
import type { DataSource } from 'typeorm';
import type { AccessKeyStatus } from './access-key.entity.js';

export interface AccountRow {
  id: string;
  name: string;
  isAdmin: boolean;
  createdAt: Date;
}

export interface AccessKeyRow {
  id: string;
  accountId: string;
  secretEncrypted: string;
  status: AccessKeyStatus;
  createdAt: Date;
}

/** A key with its account, as authentication reads it (one query). */
export interface KeyWithAccount {
  secretEncrypted: string;
  status: AccessKeyStatus;
  account: { id: string; name: string; isAdmin: boolean };
}

/** What AccountsService needs from storage (the real one: AccountsRepository; tests: a fake). */
export interface AccountsStore {
  /** Inserts the account unless its id or name is taken; whether it was inserted. */
  insertAccount(a: { id: string; name: string; isAdmin: boolean }): Promise<boolean>;
  accountById(id: string): Promise<AccountRow | undefined>;
  accountByName(name: string): Promise<AccountRow | undefined>;
  /** Every account, by name. */
  listAccounts(): Promise<AccountRow[]>;
  insertKey(k: { id: string; accountId: string; secretEncrypted: string; status: AccessKeyStatus }): Promise<void>;
  /** The account's keys, oldest first. */
  keysOf(accountId: string): Promise<AccessKeyRow[]>;
  /** The account's oldest active key. */
  oldestActiveKey(accountId: string): Promise<AccessKeyRow | undefined>;
  /** Whether the account had that key. */
  setKeyStatus(accountId: string, keyId: string, status: AccessKeyStatus): Promise<boolean>;
  /** Whether the account had that key. */
  deleteKey(accountId: string, keyId: string): Promise<boolean>;
  keyWithAccount(keyId: string): Promise<KeyWithAccount | undefined>;
}

const ACCOUNT = `id, name, is_admin AS "isAdmin", created_at AS "createdAt"`;
const KEY = `id, account_id AS "accountId", secret_encrypted AS "secretEncrypted", status, created_at AS "createdAt"`;

export class AccountsRepository implements AccountsStore {
  constructor(private readonly ds: DataSource) {}

  async insertAccount(a: { id: string; name: string; isAdmin: boolean }): Promise<boolean> {
    const rows: unknown[] = await this.ds.query(`INSERT INTO accounts (id, name, is_admin) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING id`, [a.id, a.name, a.isAdmin]);
    return rows.length > 0;
  }

  async accountById(id: string): Promise<AccountRow | undefined> {
    const rows: AccountRow[] = await this.ds.query(`SELECT ${ACCOUNT} FROM accounts WHERE id = $1`, [id]);
    return rows[0];
  }

  async accountByName(name: string): Promise<AccountRow | undefined> {
    const rows: AccountRow[] = await this.ds.query(`SELECT ${ACCOUNT} FROM accounts WHERE name = $1`, [name]);
    return rows[0];
  }

  listAccounts(): Promise<AccountRow[]> {
    return this.ds.query(`SELECT ${ACCOUNT} FROM accounts ORDER BY name ASC`);
  }

  async insertKey(k: { id: string; accountId: string; secretEncrypted: string; status: AccessKeyStatus }): Promise<void> {
    await this.ds.query(`INSERT INTO access_keys (id, account_id, secret_encrypted, status) VALUES ($1, $2, $3, $4)`, [k.id, k.accountId, k.secretEncrypted, k.status]);
  }

  keysOf(accountId: string): Promise<AccessKeyRow[]> {
    return this.ds.query(`SELECT ${KEY} FROM access_keys WHERE account_id = $1 ORDER BY created_at ASC, id ASC`, [accountId]);
  }

  async oldestActiveKey(accountId: string): Promise<AccessKeyRow | undefined> {
    const rows: AccessKeyRow[] = await this.ds.query(`SELECT ${KEY} FROM access_keys WHERE account_id = $1 AND status = 'Active' ORDER BY created_at ASC, id ASC LIMIT 1`, [accountId]);
    return rows[0];
  }

  async setKeyStatus(accountId: string, keyId: string, status: AccessKeyStatus): Promise<boolean> {
    const [, n]: [unknown, number] = await this.ds.query(`UPDATE access_keys SET status = $3 WHERE id = $2 AND account_id = $1`, [accountId, keyId, status]);
    return n > 0;
  }

  async deleteKey(accountId: string, keyId: string): Promise<boolean> {
    const [, n]: [unknown, number] = await this.ds.query(`DELETE FROM access_keys WHERE id = $2 AND account_id = $1`, [accountId, keyId]);
    return n > 0;
  }

  async keyWithAccount(keyId: string): Promise<KeyWithAccount | undefined> {
    const rows: Array<{ secret_encrypted: string; status: AccessKeyStatus; account_id: string; name: string; is_admin: boolean }> = await this.ds.query(
      `SELECT k.secret_encrypted, k.status, a.id AS account_id, a.name, a.is_admin FROM access_keys k JOIN accounts a ON a.id = k.account_id WHERE k.id = $1`,
      [keyId],
    );
    const k = rows[0];
    return k && { secretEncrypted: k.secret_encrypted, status: k.status, account: { id: k.account_id, name: k.name, isAdmin: k.is_admin } };
  }
}
