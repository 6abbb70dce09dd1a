// AccountsService's own rules on an in-memory AccountsStore: names, duplicates, id collisions,
// key ownership, sealed secrets and the authentication key cache. The SQL is covered by the e2e tests.
import type { AccessKeyStatus } from './access-key.entity.js';
import type { AccessKeySecrets } from './access-key-secrets.js';
import type { AccessKeyRow, AccountRow, AccountsStore, KeyWithAccount } from './accounts.repository.js';
import { AccountsError, AccountsService } from './accounts.service.js';
import { CredentialsGenerator } from './credentials-generator.js';

/** The tables as arrays; same answers as AccountsRepository (names and ids unique, keys oldest first). */
class FakeAccountsStore implements AccountsStore {
  readonly accounts: AccountRow[] = [];
  readonly keys: AccessKeyRow[] = [];
  queries = 0;
  private clock = 0;

  private tick(): Date {
    return new Date(Date.UTC(2026, 0, 1) + ++this.clock * 1000);
  }
  async insertAccount(a: { id: string; name: string; isAdmin: boolean }) {
    if (this.accounts.some((x) => x.id === a.id || x.name === a.name)) return false;
    this.accounts.push({ ...a, createdAt: this.tick() });
    return true;
  }
  async accountById(id: string) {
    return this.accounts.find((a) => a.id === id);
  }
  async accountByName(name: string) {
    return this.accounts.find((a) => a.name === name);
  }
  async listAccounts() {
    return [...this.accounts].sort((a, b) => (a.name < b.name ? -1 : 1));
  }
  async insertKey(k: { id: string; accountId: string; secretEncrypted: string; status: AccessKeyStatus }) {
    this.keys.push({ ...k, createdAt: this.tick() });
  }
  async keysOf(accountId: string) {
    return this.keys.filter((k) => k.accountId === accountId);
  }
  async oldestActiveKey(accountId: string) {
    return this.keys.find((k) => k.accountId === accountId && k.status === 'Active');
  }
  async setKeyStatus(accountId: string, keyId: string, status: AccessKeyStatus) {
    const k = this.keys.find((x) => x.id === keyId && x.accountId === accountId);
    if (k) k.status = status;
    return !!k;
  }
  async deleteKey(accountId: string, keyId: string) {
    const i = this.keys.findIndex((x) => x.id === keyId && x.accountId === accountId);
    if (i >= 0) this.keys.splice(i, 1);
    return i >= 0;
  }
  async keyWithAccount(keyId: string): Promise<KeyWithAccount | undefined> {
    this.queries++;
    const k = this.keys.find((x) => x.id === keyId);
    const a = k && this.accounts.find((x) => x.id === k.accountId);
    return k && a ? { secretEncrypted: k.secretEncrypted, status: k.status, account: { id: a.id, name: a.name, isAdmin: a.isAdmin } } : undefined;
  }
}

/** Reversible and visibly not the plain secret. */
const secrets: AccessKeySecrets = { encrypt: (s) => `sealed:${[...s].reverse().join('')}`, decrypt: (b) => [...b.slice('sealed:'.length)].reverse().join('') };

/** Ids from scripted lists, so collisions can be staged. */
class ScriptedIds extends CredentialsGenerator {
  accountIds: string[] = [];
  private n = 0;
  override accountId(): string {
    return this.accountIds.shift() ?? String(100000000000 + ++this.n);
  }
  override accessKey() {
    const n = ++this.n;
    return { accessKeyId: `AKIAFAKE${String(n).padStart(12, '0')}`, secretAccessKey: `secret-${n}` };
  }
}

let store: FakeAccountsStore;
let ids: ScriptedIds;
let service: AccountsService;
beforeEach(() => {
  store = new FakeAccountsStore();
  ids = new ScriptedIds();
  service = new AccountsService(store, secrets, ids);
});

async function failure(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return e instanceof AccountsError ? `${e.code}: ${e.message}` : String(e);
  }
  return undefined;
}

describe('accounts', () => {
  it('creates accounts with valid names only, once per name, listed by name', async () => {
    const bob = await service.createAccount('bob');
    await service.createAccount('alice', { isAdmin: true });
    expect(bob).toMatchObject({ name: 'bob', isAdmin: false });
    expect((await service.listAccounts()).map((a) => [a.name, a.isAdmin])).toEqual([
      ['alice', true],
      ['bob', false],
    ]);
    expect(await failure(service.createAccount('bob'))).toBe('Duplicate: account "bob" already exists');
    for (const bad of ['', 'Bob', '-bob', 'b_b', 'x'.repeat(64)]) expect(await failure(service.createAccount(bad))).toMatch(/^Invalid: invalid account name/);
    expect(store.accounts).toHaveLength(2);
  });

  it('draws another id when the drawn one is taken, and gives up after five', async () => {
    ids.accountIds = ['111111111111'];
    await service.createAccount('first');
    ids.accountIds = ['111111111111', '222222222222'];
    expect((await service.createAccount('second')).id).toBe('222222222222');
    ids.accountIds = Array(5).fill('111111111111');
    expect(await failure(service.createAccount('third'))).toBe('Error: could not allocate an account id');
  });

  it('getAccount throws NotFound, findAccount answers undefined', async () => {
    expect(await failure(service.getAccount('ghost'))).toBe('NotFound: no account "ghost"');
    expect(await service.findAccount('ghost')).toBeUndefined();
  });
});

describe('access keys', () => {
  it('stores secrets sealed and hands them back plain', async () => {
    await service.createAccount('bob');
    const k = await service.createAccessKey('bob');
    expect(store.keys[0]!.secretEncrypted).toBe(secrets.encrypt(k.secretAccessKey));
    expect(store.keys[0]!.secretEncrypted).not.toContain(k.secretAccessKey);
    expect(await service.credentials('bob')).toEqual({ ...k, created: false });
    expect(await failure(service.createAccessKey('ghost'))).toMatch(/^NotFound/);
  });

  it('credentials: the oldest active key, or a new one when none is active', async () => {
    await service.createAccount('bob');
    const first = await service.credentials('bob');
    expect(first.created).toBe(true);
    const second = await service.createAccessKey('bob');
    await service.setAccessKeyStatus('bob', first.accessKeyId, 'Inactive');
    expect((await service.credentials('bob')).accessKeyId).toBe(second.accessKeyId);
    expect((await service.listAccessKeys('bob')).map((k) => [k.accessKeyId, k.status, k.accountName])).toEqual([
      [first.accessKeyId, 'Inactive', 'bob'],
      [second.accessKeyId, 'Active', 'bob'],
    ]);
  });

  it('a key is changed or deleted only through its own account', async () => {
    await service.createAccount('bob');
    await service.createAccount('eve');
    const k = await service.createAccessKey('bob');
    expect(await failure(service.setAccessKeyStatus('eve', k.accessKeyId, 'Inactive'))).toBe(`NotFound: account "eve" has no access key ${k.accessKeyId}`);
    expect(await failure(service.deleteAccessKey('eve', k.accessKeyId))).toMatch(/^NotFound/);
    expect(store.keys[0]!.status).toBe('Active');
    await service.deleteAccessKey('bob', k.accessKeyId);
    expect(store.keys).toEqual([]);
  });
});

describe('resolveAccessKey', () => {
  it('answers the plain secret, activity and the account, frozen', async () => {
    await service.createAccount('bob');
    const k = await service.createAccessKey('bob');
    const r = await service.resolveAccessKey(k.accessKeyId);
    expect(r).toEqual({ secret: k.secretAccessKey, active: true, account: { id: k.accountId, name: 'bob', isAdmin: false } });
    expect(Object.isFrozen(r) && Object.isFrozen(r!.account)).toBe(true);
    expect(await service.resolveAccessKey('AKIAUNKNOWN000000000')).toBeUndefined();
  });

  it('is cached while the cache is on, and its own changes make the cache forget', async () => {
    service.keyCache.setEnabled(true);
    await service.createAccount('bob');
    const k = await service.createAccessKey('bob');
    await service.resolveAccessKey(k.accessKeyId);
    await service.resolveAccessKey(k.accessKeyId);
    expect(store.queries).toBe(1);
    await service.setAccessKeyStatus('bob', k.accessKeyId, 'Inactive');
    expect((await service.resolveAccessKey(k.accessKeyId))?.active).toBe(false);
    await service.deleteAccessKey('bob', k.accessKeyId);
    expect(await service.resolveAccessKey(k.accessKeyId)).toBeUndefined();
    expect(store.queries).toBe(3);
  });
});
