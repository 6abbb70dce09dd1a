import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type Repository } from 'typeorm';
import { decryptSecret, encryptSecret } from '@koala/aws-auth';
import { MASTER_KEY } from '../auth/master-key.js';
import { AccessKeyEntity, type AccessKeyStatus } from './access-key.entity.js';
import { AccountEntity } from './account.entity.js';
import { AccessKeyCache } from './access-key-cache.js';
import { CredentialsGenerator } from './credentials-generator.js';

/** Name of the administrators' account created by `koala bootstrap`. */
export const ADMIN_ACCOUNT = 'admin';

/** An operator-facing failure (unknown account, duplicate name, ...); the CLI prints its message. */
export class AccountsError extends Error {
  constructor(
    readonly code: 'NotFound' | 'Duplicate' | 'Invalid',
    message: string,
  ) {
    super(message);
    this.name = 'AccountsError';
  }
}

export interface AccountView {
  id: string;
  name: string;
  isAdmin: boolean;
  createdAt: Date;
}
export interface AccessKeyView {
  accessKeyId: string;
  accountId: string;
  accountName: string;
  status: AccessKeyStatus;
  createdAt: Date;
}
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  accountId: string;
  accountName: string;
}
/** What authentication needs about a key (shape expected by `verifyRequest`'s lookup). */
export interface ResolvedAccessKey {
  secret: string;
  active: boolean;
  account: { id: string; name: string; isAdmin: boolean };
}

const ACCOUNT_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Accounts (tenants) and their access keys. Secrets are encrypted with the master key at rest. */
@Injectable()
export class AccountsService {
  private readonly accounts: Repository<AccountEntity>;
  private readonly keys: Repository<AccessKeyEntity>;
  /** encrypted blob → plain secret; blobs are immutable so this never goes stale. */
  private readonly decrypted = new Map<string, string>();
  /** Resolved keys for authentication; on only while KeyChangeListener hears the database's change announcements. */
  readonly keyCache = new AccessKeyCache<ResolvedAccessKey>();

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(MASTER_KEY) private readonly masterKey: string,
    @Inject(CredentialsGenerator) private readonly gen: CredentialsGenerator,
  ) {
    this.accounts = ds.getRepository(AccountEntity);
    this.keys = ds.getRepository(AccessKeyEntity);
  }

  // ------------------------------------------------------------ accounts

  async createAccount(name: string, opts: { isAdmin?: boolean } = {}): Promise<AccountView> {
    if (!ACCOUNT_NAME_RE.test(name)) {
      throw new AccountsError('Invalid', `invalid account name "${name}": use lower-case letters, digits and '-' (at most 63)`);
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      const id = this.gen.accountId();
      const rows: unknown[] = await this.ds.query(
        `INSERT INTO accounts (id, name, is_admin) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING id`,
        [id, name, opts.isAdmin ?? false],
      );
      if (rows.length) return view(await this.accounts.findOneByOrFail({ id }));
      if (await this.accounts.existsBy({ name })) throw new AccountsError('Duplicate', `account "${name}" already exists`);
      // id collision: try another
    }
    throw new Error('could not allocate an account id');
  }

  async getAccount(name: string): Promise<AccountView> {
    const a = await this.accounts.findOneBy({ name });
    if (!a) throw new AccountsError('NotFound', `no account "${name}"`);
    return view(a);
  }

  async findAccount(name: string): Promise<AccountView | undefined> {
    const a = await this.accounts.findOneBy({ name });
    return a ? view(a) : undefined;
  }

  async listAccounts(): Promise<AccountView[]> {
    return (await this.accounts.find({ order: { name: 'ASC' } })).map(view);
  }

  // ------------------------------------------------------------ access keys

  async createAccessKey(accountName: string): Promise<Credentials> {
    const account = await this.getAccount(accountName);
    const { accessKeyId, secretAccessKey } = this.gen.accessKey();
    await this.keys.insert({ id: accessKeyId, accountId: account.id, secretEncrypted: encryptSecret(secretAccessKey, this.masterKey), status: 'Active' });
    return { accessKeyId, secretAccessKey, accountId: account.id, accountName: account.name };
  }

  async listAccessKeys(accountName: string): Promise<AccessKeyView[]> {
    const account = await this.getAccount(accountName);
    const rows = await this.keys.find({ where: { accountId: account.id }, order: { createdAt: 'ASC', id: 'ASC' } });
    return rows.map((k) => ({ accessKeyId: k.id, accountId: account.id, accountName: account.name, status: k.status, createdAt: k.createdAt }));
  }

  async setAccessKeyStatus(accountName: string, accessKeyId: string, status: AccessKeyStatus): Promise<void> {
    const account = await this.getAccount(accountName);
    const r = await this.keys.update({ id: accessKeyId, accountId: account.id }, { status });
    this.keyCache.forget(accessKeyId);
    if (!r.affected) throw new AccountsError('NotFound', `account "${accountName}" has no access key ${accessKeyId}`);
  }

  async deleteAccessKey(accountName: string, accessKeyId: string): Promise<void> {
    const account = await this.getAccount(accountName);
    const r = await this.keys.delete({ id: accessKeyId, accountId: account.id });
    this.keyCache.forget(accessKeyId);
    if (!r.affected) throw new AccountsError('NotFound', `account "${accountName}" has no access key ${accessKeyId}`);
  }

  /** The oldest active key of the account with its secret; a new key when it has none. */
  async credentials(accountName: string): Promise<Credentials & { created: boolean }> {
    const account = await this.getAccount(accountName);
    const k = await this.keys.findOne({ where: { accountId: account.id, status: 'Active' }, order: { createdAt: 'ASC', id: 'ASC' } });
    if (k) return { accessKeyId: k.id, secretAccessKey: this.decrypt(k.secretEncrypted), accountId: account.id, accountName: account.name, created: false };
    return { ...(await this.createAccessKey(accountName)), created: true };
  }

  /**
   * For authentication: the key, its plain secret, whether it is active, and its account (frozen:
   * cached answers are shared by requests). One plain query; served from `keyCache` while it is on.
   */
  async resolveAccessKey(accessKeyId: string): Promise<ResolvedAccessKey | undefined> {
    const hit = this.keyCache.get(accessKeyId, Date.now());
    if (hit) return hit;
    const generation = this.keyCache.begin();
    const rows: Array<{ secret_encrypted: string; status: string; account_id: string; name: string; is_admin: boolean }> = await this.ds.query(
      `SELECT k.secret_encrypted, k.status, a.id AS account_id, a.name, a.is_admin FROM access_keys k JOIN accounts a ON a.id = k.account_id WHERE k.id = $1`,
      [accessKeyId],
    );
    const k = rows[0];
    if (!k) return undefined;
    const resolved: ResolvedAccessKey = Object.freeze({
      secret: this.decrypt(k.secret_encrypted),
      active: k.status === 'Active',
      account: Object.freeze({ id: k.account_id, name: k.name, isAdmin: k.is_admin }),
    });
    this.keyCache.put(accessKeyId, resolved, generation, Date.now());
    return resolved;
  }

  private decrypt(blob: string): string {
    let s = this.decrypted.get(blob);
    if (s === undefined) {
      s = decryptSecret(blob, this.masterKey);
      if (this.decrypted.size > 10_000) this.decrypted.clear();
      this.decrypted.set(blob, s);
    }
    return s;
  }
}

function view(a: AccountEntity): AccountView {
  return { id: a.id, name: a.name, isAdmin: a.isAdmin, createdAt: a.createdAt };
}
