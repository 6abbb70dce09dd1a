import { isEc2Error } from '@koala/ec2-query';
import { tagsFromSpecifications, validateTags } from './tag-rules.js';
import { TaggableResources, type TaggableKind } from './taggable-resources.js';
import type { Tx } from './tags.repository.js';

async function codeOf(f: () => unknown): Promise<string | undefined> {
  try {
    await f();
  } catch (e) {
    return isEc2Error(e) ? `${e.code}: ${e.message}` : String(e);
  }
  return undefined;
}

describe('tag rules', () => {
  it('accepts up to 50 tags, keys ≤ 128 and values ≤ 256 characters (Unicode)', async () => {
    const tags = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
    expect(validateTags(tags)).toHaveLength(50);
    expect(validateTags([{ key: 'é'.repeat(128), value: '😀'.repeat(256) }])).toHaveLength(1);
    expect(await codeOf(() => validateTags([...tags, { key: 'one-more', value: '' }]))).toMatch(/^TagLimitExceeded/);
    expect(await codeOf(() => validateTags([{ key: 'k'.repeat(129), value: '' }]))).toMatch(/^InvalidParameterValue/);
    expect(await codeOf(() => validateTags([{ key: 'k', value: 'v'.repeat(257) }]))).toMatch(/^InvalidParameterValue/);
    expect(await codeOf(() => validateTags([{ key: 'aws:cloudformation', value: '' }]))).toMatch(/reserved/);
    expect(await codeOf(() => validateTags([{ key: 'AWS:x', value: '' }]))).toMatch(/reserved/);
  });

  it('later duplicates of a key win', () => {
    expect(
      validateTags([
        { key: 'a', value: '1' },
        { key: 'a', value: '2' },
      ]),
    ).toEqual([{ key: 'a', value: '2' }]);
  });

  it('TagSpecification resource types must match the created resource', async () => {
    expect(tagsFromSpecifications('key-pair', [{ resourceType: 'key-pair', tags: [{ key: 'a', value: 'b' }] }])).toEqual([{ key: 'a', value: 'b' }]);
    expect(tagsFromSpecifications('key-pair', [])).toEqual([]);
    expect(await codeOf(() => tagsFromSpecifications('key-pair', [{ resourceType: 'instance', tags: [] }]))).toMatch(/^InvalidParameterValue: 'instance' is not a valid taggable resource type/);
  });
});

describe('TaggableResources', () => {
  const em = {} as Tx;
  const owners: Record<string, string> = { 'key-0123456789abcdef0': '111111111111', 'sg-0123456789abcdef0': '222222222222' };
  const kind = (prefix: string, resourceType: string, notFoundCode: TaggableKind['notFoundCode']): TaggableKind => ({
    prefix,
    resourceType,
    notFoundCode,
    owners: async (_tx, ids) => new Map(ids.filter((id) => owners[id]).map((id) => [id, owners[id]!])),
  });
  const registry = new TaggableResources();
  registry.register(kind('key', 'key-pair', 'InvalidKeyPair.NotFound'));
  registry.register(kind('sg', 'security-group', 'InvalidGroup.NotFound'));
  const alice = { id: '111111111111', isAdmin: false };
  const admin = { id: '999999999999', isAdmin: true };

  it('resolves ids of the caller to kind and owner', async () => {
    const r = await registry.resolve(em, alice, ['key-0123456789abcdef0']);
    expect(r.get('key-0123456789abcdef0')).toMatchObject({ owner: '111111111111', kind: { resourceType: 'key-pair' } });
    expect(registry.byResourceType('security-group')?.prefix).toBe('sg');
  });

  it('unknown prefix or malformed id → InvalidID; missing or foreign → the kind’s NotFound', async () => {
    expect(await codeOf(() => registry.resolve(em, alice, ['i-0123456789abcdef0']))).toMatch(/^InvalidID/);
    expect(await codeOf(() => registry.resolve(em, alice, ['bogus']))).toMatch(/^InvalidID/);
    expect(await codeOf(() => registry.resolve(em, alice, ['sg-xyz']))).toMatch(/^InvalidID/);
    expect(await codeOf(() => registry.resolve(em, alice, ['key-00000000000000000']))).toMatch(/^InvalidKeyPair\.NotFound/);
    expect(await codeOf(() => registry.resolve(em, alice, ['sg-0123456789abcdef0']))).toBe("InvalidGroup.NotFound: The security group 'sg-0123456789abcdef0' does not exist");
  });

  it('the admin resolves any account’s ids', async () => {
    const r = await registry.resolve(em, admin, ['sg-0123456789abcdef0', 'key-0123456789abcdef0']);
    expect(r.get('sg-0123456789abcdef0')?.owner).toBe('222222222222');
    expect(r.get('key-0123456789abcdef0')?.owner).toBe('111111111111');
  });
});
