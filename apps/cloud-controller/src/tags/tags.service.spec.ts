// TagsService's own rules on an in-memory TagsStore and registry: who may tag what, all or
// nothing, the 50-tag limit, DeleteTags matching, DescribeTags visibility and paging.
import { type Tag } from '@koala/ec2-query';
import { TaggableResources, type TaggableKind } from './taggable-resources.js';
import { FakeTagsStore } from './testing/fake-tags-store.js';
import { TagsService } from './tags.service.js';
import { codeOf } from '../testing/ec2-code.js';

const ALICE = { id: '111111111111', isAdmin: false };
const BOB = { id: '222222222222', isAdmin: false };
const ADMIN = { id: '999999999999', isAdmin: true };
const KEY_A = 'key-0123456789abcdef0'; // alice's
const KEY_A2 = 'key-0123456789abcdef1'; // alice's
const SG_B = 'sg-0123456789abcdef0'; // bob's

const owners: Record<string, string> = { [KEY_A]: ALICE.id, [KEY_A2]: ALICE.id, [SG_B]: BOB.id };
const kind = (prefix: string, resourceType: string, notFoundCode: TaggableKind['notFoundCode']): TaggableKind => ({
  prefix,
  resourceType,
  notFoundCode,
  owners: async (_tx, ids) => new Map(ids.filter((id) => owners[id]).map((id) => [id, owners[id]!])),
});

let store: FakeTagsStore;
let service: TagsService;
beforeEach(() => {
  store = new FakeTagsStore();
  const registry = new TaggableResources();
  registry.register(kind('key', 'key-pair', 'InvalidKeyPair.NotFound'));
  registry.register(kind('sg', 'security-group', 'InvalidGroup.NotFound'));
  service = new TagsService(store, registry);
});

const tags = (n: number, prefix = 'k'): Tag[] => Array.from({ length: n }, (_, i) => ({ key: `${prefix}${i}`, value: String(i) }));
const keysOf = async (id: string) => ((await service.tagsOf([id])).get(id) ?? []).map((t) => t.key);

describe('CreateTags', () => {
  it('tags the caller’s resources; another account’s are NotFound and nothing is written', async () => {
    await service.createTags(ALICE, [KEY_A, KEY_A], [{ key: 'Name', value: 'a' }]);
    expect(store.rows).toEqual([{ resourceId: KEY_A, key: 'Name', value: 'a', accountId: ALICE.id, resourceType: 'key-pair' }]);
    expect(await codeOf(service.createTags(ALICE, [KEY_A2, SG_B], [{ key: 'x', value: '' }]))).toBe('InvalidGroup.NotFound');
    expect(await codeOf(service.createTags(ALICE, ['key-00000000000000000'], [{ key: 'x', value: '' }]))).toBe('InvalidKeyPair.NotFound');
    expect(await codeOf(service.createTags(ALICE, ['vol-0123456789abcdef0'], [{ key: 'x', value: '' }]))).toBe('InvalidID');
    expect(store.rows).toHaveLength(1);
  });

  it('the admin tags any account’s resource; the tag belongs to the resource’s owner', async () => {
    await service.createTags(ADMIN, [SG_B], [{ key: 'env', value: 'prod' }]);
    expect(store.rows[0]).toMatchObject({ resourceId: SG_B, accountId: BOB.id, resourceType: 'security-group' });
  });

  it('overwrites values; over 50 tags on a resource → TagLimitExceeded, all or nothing', async () => {
    await service.createTags(ALICE, [KEY_A], tags(49));
    await service.createTags(ALICE, [KEY_A], [{ key: 'k0', value: 'new' }]);
    expect((await service.tagsOf([KEY_A])).get(KEY_A)).toHaveLength(49);
    expect(store.rows.find((r) => r.key === 'k0')?.value).toBe('new');
    // KEY_A2 would be fine, KEY_A goes over: neither changes
    expect(await codeOf(service.createTags(ALICE, [KEY_A2, KEY_A], tags(2, 'more')))).toBe('TagLimitExceeded');
    expect(await keysOf(KEY_A2)).toEqual([]);
    expect(await keysOf(KEY_A)).toHaveLength(49);
    expect(store.rows.find((r) => r.key === 'k0')?.value).toBe('new');
  });

  it('validates tags before touching anything', async () => {
    expect(await codeOf(service.createTags(ALICE, [SG_B], [{ key: 'aws:x', value: '' }]))).toBe('InvalidParameterValue');
  });
});

describe('DeleteTags', () => {
  beforeEach(async () => {
    await service.createTags(
      ALICE,
      [KEY_A, KEY_A2],
      [
        { key: 'a', value: '1' },
        { key: 'b', value: '2' },
        { key: 'c', value: '3' },
      ],
    );
  });

  it('by key, by key and value (only when equal), or every tag', async () => {
    await service.deleteTags(ALICE, [KEY_A], [{ key: 'a' }, { key: 'b', value: 'other' }]);
    expect(await keysOf(KEY_A)).toEqual(['b', 'c']);
    await service.deleteTags(ALICE, [KEY_A], [{ key: 'b', value: '2' }]);
    expect(await keysOf(KEY_A)).toEqual(['c']);
    await service.deleteTags(ALICE, [KEY_A], []);
    expect(await keysOf(KEY_A)).toEqual([]);
    expect(await keysOf(KEY_A2)).toEqual(['a', 'b', 'c']);
  });

  it('another account’s resource → NotFound, and nothing is deleted', async () => {
    expect(await codeOf(service.deleteTags(BOB, [KEY_A], []))).toBe('InvalidKeyPair.NotFound');
    expect(store.rows).toHaveLength(6);
    await service.deleteTags(ADMIN, [KEY_A2], [{ key: 'c' }]);
    expect(await keysOf(KEY_A2)).toEqual(['a', 'b']);
  });
});

describe('DescribeTags', () => {
  beforeEach(async () => {
    await service.createTags(
      ALICE,
      [KEY_A2, KEY_A],
      [
        { key: 'b', value: '1' },
        { key: 'a', value: '2' },
      ],
    );
    await service.createTags(BOB, [SG_B], [{ key: 'a', value: 'bob' }]);
  });

  it('each account sees its own tags, the admin everyone’s, sorted by resource id and key', async () => {
    const seen = async (c: typeof ALICE) => (await service.describeTags(c, [], {})).tags.map((t) => `${t.resourceId}/${t.key}`);
    expect(await seen(ALICE)).toEqual([`${KEY_A}/a`, `${KEY_A}/b`, `${KEY_A2}/a`, `${KEY_A2}/b`]);
    expect(await seen(BOB)).toEqual([`${SG_B}/a`]);
    expect(await seen(ADMIN)).toHaveLength(5);
  });

  it('filters and pages', async () => {
    const r = await service.describeTags(ADMIN, [{ name: 'key', values: ['a'] }], { maxResults: 5 });
    expect(r.tags.map((t) => t.value)).toEqual(['2', '2', 'bob']);
    const first = await service.describeTags(ALICE, [{ name: 'resource-type', values: ['key-pair'] }], { maxResults: 5 });
    expect(first.tags).toHaveLength(4);
    await service.createTags(BOB, [SG_B], [{ key: 'z', value: '' }]);
    const p1 = await service.describeTags(ADMIN, [], { maxResults: 5 });
    const p2 = await service.describeTags(ADMIN, [], { maxResults: 5, nextToken: p1.nextToken });
    expect([p1.tags.length, p2.tags.length, p2.nextToken]).toEqual([5, 1, undefined]);
    expect(p2.tags[0]).toMatchObject({ resourceId: SG_B, key: 'z' });
  });
});

describe('TagSpecifications and resource helpers', () => {
  it('applies a create’s tags for the caller; a wrong resource type writes nothing', async () => {
    expect(await service.applyTagSpecifications(ALICE, 'key-pair', KEY_A, [{ resourceType: 'key-pair', tags: [{ key: 'n', value: 'v' }] }])).toEqual([{ key: 'n', value: 'v' }]);
    expect(store.rows[0]).toMatchObject({ accountId: ALICE.id, resourceType: 'key-pair' });
    expect(await codeOf(service.applyTagSpecifications(ALICE, 'key-pair', KEY_A2, [{ resourceType: 'instance', tags: [{ key: 'n', value: 'v' }] }]))).toBe('InvalidParameterValue');
    expect(() => service.checkTagSpecifications('key-pair', [{ resourceType: 'volume', tags: [] }])).toThrow(/not a valid taggable resource type/);
    expect(await keysOf(KEY_A2)).toEqual([]);
  });

  it('tagsOf answers every id asked, deleteAllFor removes one resource’s tags', async () => {
    await service.createTags(ALICE, [KEY_A, KEY_A2], [{ key: 'x', value: '1' }]);
    await service.deleteAllFor(KEY_A);
    const m = await service.tagsOf([KEY_A, KEY_A2, SG_B]);
    expect([...m]).toEqual([
      [KEY_A, []],
      [KEY_A2, [{ key: 'x', value: '1' }]],
      [SG_B, []],
    ]);
  });
});
