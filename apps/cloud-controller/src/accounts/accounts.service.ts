import { Inject, Injectable } from '@nestjs/common';
import type { AccessKeyStatus } from './access-key.entity.js';
import { ACCESS_KEY_SECRETS, masterKeySecrets, type AccessKeySecrets } from './access-key-secrets.js';
import { AccessKeyCache } from './access-key-cache.js';
import { AccountsRepository, type AccessKeyRow, type AccountRow, type AccountsStore } from './accounts.repository.js';
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

/** Accounts (tenants) and their access keys. Secrets are sealed at rest (`AccessKeySecrets`: the master key). */
@Injectable()
export class AccountsService {
  /** Resolved keys for authentication; on only while KeyChangeListener hears the database's change announcements. */
  readonly keyCache = new AccessKeyCache<ResolvedAccessKey>();

  constructor(
    @Inject(AccountsRepository) private readonly repo: AccountsStore,
    @Inject(ACCESS_KEY_SECRETS) private readonly secrets: AccessKeySecrets,
    @Inject(CredentialsGenerator) private readonly gen: CredentialsGenerator,
  ) {}

  // ------------------------------------------------------------ accounts

  async createAccount(name: string, opts: { isAdmin?: boolean } = {}): Promise<AccountView> {
    if (!ACCOUNT_NAME_RE.test(name)) {
      throw new AccountsError('Invalid', `invalid account name "${name}": use lower-case letters, digits and '-' (at most 63)`);
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      const id = this.gen.accountId();
      if (await this.repo.insertAccount({ id, name, isAdmin: opts.isAdmin ?? false })) return view((await this.repo.accountById(id))!);
      if (await this.repo.accountByName(name)) throw new AccountsError('Duplicate', `account "${name}" already exists`);
      // id collision: try another
    }
    throw new Error('could not allocate an account id');
  }

  async getAccount(name: string): Promise<AccountView> {
    const a = await this.repo.accountByName(name);
    if (!a) throw new AccountsError('NotFound', `no account "${name}"`);
    return view(a);
  }

  async findAccount(name: string): Promise<AccountView | undefined> {
    const a = await this.repo.accountByName(name);
    return a ? view(a) : undefined;
  }

  async listAccounts(): Promise<AccountView[]> {
    return (await this.repo.listAccounts()).map(view);
  }

  // ------------------------------------------------------------ access keys

  async createAccessKey(accountName: string): Promise<Credentials> {
    const account = await this.getAccount(accountName);
    const { accessKeyId, secretAccessKey } = this.gen.accessKey();
    await this.repo.insertKey({ id: accessKeyId, accountId: account.id, secretEncrypted: this.secrets.encrypt(secretAccessKey), status: 'Active' });
    return { accessKeyId, secretAccessKey, accountId: account.id, accountName: account.name };
  }

  async listAccessKeys(accountName: string): Promise<AccessKeyView[]> {
    const account = await this.getAccount(accountName);
    const rows = await this.repo.keysOf(account.id);
    return rows.map((k) => keyView(k, account));
  }

  async setAccessKeyStatus(accountName: string, accessKeyId: string, status: AccessKeyStatus): Promise<void> {
    const account = await this.getAccount(accountName);
    const found = await this.repo.setKeyStatus(account.id, accessKeyId, status);
    this.keyCache.forget(accessKeyId);
    if (!found) throw new AccountsError('NotFound', `account "${accountName}" has no access key ${accessKeyId}`);
  }

  async deleteAccessKey(accountName: string, accessKeyId: string): Promise<void> {
    const account = await this.getAccount(accountName);
    const found = await this.repo.deleteKey(account.id, accessKeyId);
    this.keyCache.forget(accessKeyId);
    if (!found) throw new AccountsError('NotFound', `account "${accountName}" has no access key ${accessKeyId}`);
  }

  /** The oldest active key of the account with its secret; a new key when it has none. */
  async credentials(accountName: string): Promise<Credentials & { created: boolean }> {
    const account = await this.getAccount(accountName);
    const k = await this.repo.oldestActiveKey(account.id);
    if (k) return { accessKeyId: k.id, secretAccessKey: this.secrets.decrypt(k.secretEncrypted), accountId: account.id, accountName: account.name, created: false };
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
    const k = await this.repo.keyWithAccount(accessKeyId);
    if (!k) return undefined;
    const resolved: ResolvedAccessKey = Object.freeze({
      secret: this.secrets.decrypt(k.secretEncrypted),
      active: k.status === 'Active',
      account: Object.freeze({ ...k.account }),
    });
    this.keyCache.put(accessKeyId, resolved, generation, Date.now());
    return resolved;
  }
}

/**
 * AccountsService outside Nest (the `koala` CLI, tests): on `ds` with secrets sealed by
 * `masterKey`.
 */
export function createAccountsService(ds: ConstructorParameters<typeof AccountsRepository>[0], masterKey: string, gen = new CredentialsGenerator()): AccountsService {
  return new AccountsService(new AccountsRepository(ds), masterKeySecrets(masterKey), gen);
}

function view(a: AccountRow): AccountView {
  return { id: a.id, name: a.name, isAdmin: a.isAdmin, createdAt: a.createdAt };
}

function keyView(k: AccessKeyRow, account: AccountView): AccessKeyView {
  return { accessKeyId: k.id, accountId: account.id, accountName: account.name, status: k.status, createdAt: k.createdAt };
}
