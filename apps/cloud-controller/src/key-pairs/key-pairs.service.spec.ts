// KeyPairsService on in-memory fakes of its repository (KeyPairsStore) and ports (key material,
// tags, quotas): its own rules, no database. The real repository is tested by
// test/resources/key-pairs.e2e-spec.ts on PostgreSQL.
import { Ec2Error, Params, type TagSpecification } from '@koala/ec2-query';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import type { QuotaRequest } from '../quotas/quota-rules.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import type { Ec2Context } from '../ec2/ec2-action.decorator.js';
import type { GeneratedKey, KeyMaterial, KeyType, ParsedPublicKey } from './key-material.js';
import { KeyPairsHandlers } from './key-pairs.handlers.js';
import type { KeyPairRow, KeyPairsStore, Tx } from './key-pairs.repository.js';
import { KeyPairsService, type KeyPairQuotas } from './key-pairs.service.js';
import { codeOf } from '../testing/ec2-code.js';
import { FakeTags } from '../tags/testing/fake-tags.js';

const TX = { fakeTx: true } as unknown as Tx;
const now = new Date('2026-12-01T00:00:00Z');
const ADMIN: Caller = { id: '000000000001', isAdmin: true };
const ALICE: Caller = { id: '111111111111', isAdmin: false };
const BOB: Caller = { id: '222222222222', isAdmin: false };

/** KeyPairsStore in memory; a transaction that throws leaves the state as it was. */
class FakeKeyPairsStore implements KeyPairsStore {
  rows = new Map<string, KeyPairRow>();
  /** Make the next insert lose a concurrent race on the name. */
  loseNextInsert = false;

  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const before = new Map(this.rows);
    try {
      return await work(TX);
    } catch (e) {
      this.rows = before;
      throw e;
    }
  }
  async owners(_tx: Tx, ids: readonly string[]) {
    return new Map([...this.rows.values()].filter((r) => ids.includes(r.id)).map((r) => [r.id, r.accountId]));
  }
  async listVisible(caller: Caller) {
    return [...this.rows.values()].filter((r) => allows(accessOf(caller, r), 'see')).sort((a, b) => (a.name === b.name ? (a.accountId < b.accountId ? -1 : 1) : a.name < b.name ? -1 : 1));
  }
  async nameTaken(accountId: string, name: string) {
    return [...this.rows.values()].some((r) => r.accountId === accountId && r.name === name);
  }
  async insert(_tx: Tx, row: KeyPairRow) {
    if (this.loseNextInsert) {
      this.loseNextInsert = false;
      return false;
    }
    if (await this.nameTaken(row.accountId, row.name)) return false;
    this.rows.set(row.id, { ...row });
    return true;
  }
  async findById(_tx: Tx, id: string) {
    return this.rows.get(id);
  }
  async findByName(_tx: Tx, accountId: string, name: string) {
    return [...this.rows.values()].find((r) => r.accountId === accountId && r.name === name);
  }
  async delete(_tx: Tx, id: string) {
    this.rows.delete(id);
  }
}

/** Deterministic keys: the fingerprint names the key's type and comment. */
class FakeKeys implements KeyMaterial {
  generated = 0;
  async generate(keyType: KeyType, comment: string): Promise<GeneratedKey> {
    this.generated++;
    return { keyType, privateKeyPem: `PRIVATE ${comment}`, publicKey: `ssh-${keyType} AAAA ${comment}`, fingerprint: `fp:${keyType}:${this.generated}` };
  }
  parsePublicKey(material: Buffer): ParsedPublicKey {
    const text = material.toString('utf8');
    if (!text.startsWith('ssh-ed25519 ')) throw Ec2Error.malformed('InvalidKeyPair.Format', '');
    return { keyType: 'ed25519', publicKey: text, fingerprint: `fp:imported:${text.length}` };
  }
}

class FakeQuotas implements KeyPairQuotas {
  readonly asked: QuotaRequest[] = [];
  refuse = false;
  async enforce(_tx: Tx, _caller: Caller, request: QuotaRequest) {
    this.asked.push(request);
    if (this.refuse) throw new Ec2Error('KeyPairLimitExceeded', 'too many key pairs');
  }
}

let repo: FakeKeyPairsStore;
let keys: FakeKeys;
let tags: FakeTags;
let quotas: FakeQuotas;
let service: KeyPairsService;
let handlers: KeyPairsHandlers;

beforeEach(() => {
  repo = new FakeKeyPairsStore();
  keys = new FakeKeys();
  tags = new FakeTags();
  quotas = new FakeQuotas();
  service = new KeyPairsService(repo, keys, tags, new TaggableResources(), quotas);
  handlers = new KeyPairsHandlers(service);
});

function ctx(account: Caller, params: Record<string, string>): Ec2Context {
  return { requestId: 'r', action: 'x', version: '2016-11-15', params: Params.from(params), account: { ...account, name: 'n' }, accessKeyId: 'AKIA', now };
}

const create = (who: Caller, name: string, tagSpecs: TagSpecification[] = []) => service.create(who, now, { name, keyType: 'ed25519', tagSpecifications: tagSpecs });
const imp = (who: Caller, name: string, material = 'ssh-ed25519 AAAAC3 me@host') => service.import(who, now, { name, material: Buffer.from(material), tagSpecifications: [] });
const names = async (who: Caller, q: Partial<Parameters<KeyPairsService['describe']>[1]> = {}) =>
  (await service.describe(who, { names: [], ids: [], filters: [], ...q })).map((v) => `${v.keyPair.accountId}:${v.keyPair.name}`);

describe('CreateKeyPair / ImportKeyPair', () => {
  it('create returns the private key once and stores the public key, tags and quota check', async () => {
    const v = await create(ALICE, 'k1', [{ resourceType: 'key-pair', tags: [{ key: 'env', value: 'dev' }] }]);
    expect(v.privateKey).toBe('PRIVATE k1');
    expect(v.keyPair).toMatchObject({ accountId: ALICE.id, name: 'k1', keyType: 'ed25519', publicKey: 'ssh-ed25519 AAAA k1', createdAt: now });
    expect(v.keyPair.id).toMatch(/^key-[0-9a-f]{17}$/);
    expect(v.tags).toEqual([{ key: 'env', value: 'dev' }]);
    expect(quotas.asked).toEqual([{ kind: 'key-pair' }]);
    expect(repo.rows.get(v.keyPair.id)).not.toHaveProperty('privateKey');
  });

  it('import stores the parsed public key; bad material is InvalidKeyPair.Format', async () => {
    const v = await imp(ALICE, 'imported');
    expect(v.keyPair).toMatchObject({ keyType: 'ed25519', publicKey: 'ssh-ed25519 AAAAC3 me@host' });
    expect(await codeOf(imp(ALICE, 'bad', 'not a key'))).toBe('InvalidKeyPair.Format');
    expect(repo.rows.size).toBe(1);
  });

  it('a name in use by the account is InvalidKeyPair.Duplicate (checked before generating); other accounts may use it', async () => {
    await create(ALICE, 'dup');
    expect(await codeOf(create(ALICE, 'dup'))).toBe('InvalidKeyPair.Duplicate');
    expect(await codeOf(imp(ALICE, 'dup'))).toBe('InvalidKeyPair.Duplicate');
    expect(keys.generated).toBe(1);
    await create(BOB, 'dup');
    expect(repo.rows.size).toBe(2);
  });

  it('losing a concurrent race on the name is InvalidKeyPair.Duplicate, nothing written', async () => {
    repo.loseNextInsert = true;
    expect(await codeOf(create(ALICE, 'race'))).toBe('InvalidKeyPair.Duplicate');
    expect(repo.rows.size).toBe(0);
  });

  it.each([
    ['an empty name', '', 'MissingParameter'],
    ['a non-ASCII name', 'clé', 'InvalidParameterValue'],
    ['a name over 255 characters', 'k'.repeat(256), 'InvalidParameterValue'],
  ])('refuses %s', async (_what, name, code) => {
    expect(await codeOf(create(ALICE, name))).toBe(code);
    expect(await codeOf(imp(ALICE, name))).toBe(code);
    expect(repo.rows.size).toBe(0);
  });

  it('a refused quota or a bad tag leaves nothing behind', async () => {
    quotas.refuse = true;
    expect(await codeOf(create(ALICE, 'q'))).toBe('KeyPairLimitExceeded');
    quotas.refuse = false;
    expect(await codeOf(create(ALICE, 'q', [{ resourceType: 'key-pair', tags: [{ key: 'aws:x', value: '' }] }]))).toBe('InvalidParameterValue');
    expect(repo.rows.size).toBe(0);
  });
});

describe('DescribeKeyPairs', () => {
  beforeEach(async () => {
    await create(ALICE, 'b-key');
    await imp(ALICE, 'a-key');
    await create(BOB, 'a-key');
  });

  it('the caller’s own key pairs by name; the admin sees every account’s', async () => {
    expect(await names(ALICE)).toEqual([`${ALICE.id}:a-key`, `${ALICE.id}:b-key`]);
    expect(await names(BOB)).toEqual([`${BOB.id}:a-key`]);
    expect(await names(ADMIN)).toEqual([`${ALICE.id}:a-key`, `${BOB.id}:a-key`, `${ALICE.id}:b-key`]);
  });

  it('a name or id the caller cannot see is InvalidKeyPair.NotFound', async () => {
    const bobs = [...repo.rows.values()].find((r) => r.accountId === BOB.id)!;
    expect(await codeOf(service.describe(ALICE, { names: ['c-key'], ids: [], filters: [] }))).toBe('InvalidKeyPair.NotFound');
    expect(await codeOf(service.describe(ALICE, { names: [], ids: [bobs.id], filters: [] }))).toBe('InvalidKeyPair.NotFound');
    expect(await names(ADMIN, { ids: [bobs.id] })).toEqual([`${BOB.id}:a-key`]);
  });

  it('filters by name and fingerprint', async () => {
    expect(await names(ALICE, { filters: [{ name: 'key-name', values: ['b-*'] }] })).toEqual([`${ALICE.id}:b-key`]);
    expect(await names(ALICE, { names: ['a-key', 'b-key'], filters: [{ name: 'fingerprint', values: ['fp:imported:*'] }] })).toEqual([`${ALICE.id}:a-key`]);
  });
});

describe('DeleteKeyPair', () => {
  it('by name: the caller’s own; a missing name succeeds (as AWS), even when another account has it', async () => {
    const alice = await create(ALICE, 'k', [{ resourceType: 'key-pair', tags: [{ key: 'a', value: 'b' }] }]);
    const bob = await create(BOB, 'only-bob');
    expect(await service.delete(ALICE, { name: 'only-bob' })).toBeUndefined();
    expect(await service.delete(ADMIN, { name: 'k' })).toBeUndefined();
    expect(await service.delete(ALICE, { name: 'k' })).toBe(alice.keyPair.id);
    expect(tags.tags.has(alice.keyPair.id)).toBe(false);
    expect([...repo.rows.keys()]).toEqual([bob.keyPair.id]);
  });

  it('by id: another account’s is NotFound; the admin may delete any', async () => {
    const bob = await create(BOB, 'bk');
    expect(await codeOf(service.delete(ALICE, { id: bob.keyPair.id }))).toBe('InvalidKeyPair.NotFound');
    expect(await codeOf(service.delete(ALICE, { id: 'key-0123456789abcdef0' }))).toBe('InvalidKeyPair.NotFound');
    expect(await service.delete(ADMIN, { id: bob.keyPair.id })).toBe(bob.keyPair.id);
    expect(repo.rows.size).toBe(0);
  });
});

describe('DryRun (through the handlers)', () => {
  it('answers DryRunOperation after validation and writes nothing', async () => {
    await create(ALICE, 'kept');
    expect(await codeOf(handlers.create(ctx(ALICE, { KeyName: 'new', DryRun: 'true' })))).toBe('DryRunOperation');
    expect(await codeOf(handlers.import(ctx(ALICE, { KeyName: 'new', PublicKeyMaterial: 'ssh-ed25519 AAAAC3 x', DryRun: 'true' })))).toBe('DryRunOperation');
    expect(await codeOf(handlers.delete(ctx(ALICE, { KeyName: 'kept', DryRun: 'true' })))).toBe('DryRunOperation');
    expect(await codeOf(handlers.describe(ctx(ALICE, { DryRun: 'true' })))).toBe('DryRunOperation');
    expect([...repo.rows.values()].map((r) => r.name)).toEqual(['kept']);
    expect(keys.generated).toBe(1);
  });

  it('validates the parameters before DryRun', async () => {
    expect(await codeOf(handlers.create(ctx(ALICE, { KeyName: 'x', KeyType: 'dsa', DryRun: 'true' })))).toBe('InvalidParameterValue');
    expect(await codeOf(handlers.delete(ctx(ALICE, { DryRun: 'true' })))).toBe('MissingParameter');
  });
});
