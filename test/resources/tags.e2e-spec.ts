// CreateTags / DeleteTags / DescribeTags across key pairs, security groups and addresses (SDK v3).
import {
  AllocateAddressCommand,
  CreateKeyPairCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeAddressesCommand,
  DescribeKeyPairsCommand,
  DescribeTagsCommand,
  paginateDescribeTags,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { failure } from './helpers.js';

let cloud: TestCloud;
let ec2: EC2Client;
let keyId: string;
let groupId: string;
let allocId: string;

beforeAll(async () => {
  cloud = await startCloud();
  ec2 = cloud.ec2(await cloud.createAccount('tagger'));
  keyId = (await ec2.send(new CreateKeyPairCommand({ KeyName: 'k', KeyType: 'ed25519' }))).KeyPairId!;
  groupId = (await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'g', Description: 'g' }))).GroupId!;
  allocId = (await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }))).AllocationId!;
}, 60_000);
afterAll(async () => {
  await cloud?.close();
});

async function tagsOf(id: string) {
  return (await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [id] }] }))).Tags!;
}

describe('CreateTags', () => {
  it('tags several resource kinds at once, overwrites values, shows them in DescribeTags and in each Describe', async () => {
    const r = await ec2.send(
      new CreateTagsCommand({
        Resources: [keyId, groupId, allocId],
        Tags: [
          { Key: 'Name', Value: 'one' },
          { Key: 'env', Value: '' },
        ],
      }),
    );
    expect(r.$metadata.httpStatusCode).toBe(200);
    await ec2.send(new CreateTagsCommand({ Resources: [keyId], Tags: [{ Key: 'Name', Value: 'two' }] }));
    expect(await tagsOf(keyId)).toEqual([
      { ResourceId: keyId, ResourceType: 'key-pair', Key: 'Name', Value: 'two' },
      { ResourceId: keyId, ResourceType: 'key-pair', Key: 'env', Value: '' },
    ]);
    expect((await tagsOf(groupId)).map((t) => t.ResourceType)).toEqual(['security-group', 'security-group']);
    expect((await tagsOf(allocId)).map((t) => t.ResourceType)).toEqual(['elastic-ip', 'elastic-ip']);
    expect((await ec2.send(new DescribeKeyPairsCommand({ KeyPairIds: [keyId] }))).KeyPairs![0]!.Tags).toEqual([
      { Key: 'Name', Value: 'two' },
      { Key: 'env', Value: '' },
    ]);
    expect((await ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'tag:Name', Values: ['one'] }] }))).Addresses!.map((a) => a.AllocationId)).toEqual([allocId]);
  });

  it('validates: InvalidID, NotFound per kind, limits, reserved prefix, all or nothing, DryRun', async () => {
    expect(await failure(ec2.send(new CreateTagsCommand({ Resources: ['zzz-0123456789abcdef0'], Tags: [{ Key: 'a', Value: 'b' }] })))).toMatchObject({ name: 'InvalidID', status: 400 });
    expect((await failure(ec2.send(new CreateTagsCommand({ Resources: ['whatever'], Tags: [{ Key: 'a', Value: 'b' }] })))).name).toBe('InvalidID');
    expect((await failure(ec2.send(new CreateTagsCommand({ Resources: ['key-00000000000000000'], Tags: [{ Key: 'a', Value: 'b' }] })))).name).toBe('InvalidKeyPair.NotFound');
    expect((await failure(ec2.send(new CreateTagsCommand({ Resources: ['sg-00000000000000000'], Tags: [{ Key: 'a', Value: 'b' }] })))).name).toBe('InvalidGroup.NotFound');
    expect((await failure(ec2.send(new CreateTagsCommand({ Resources: ['eipalloc-00000000000000000'], Tags: [{ Key: 'a', Value: 'b' }] })))).name).toBe('InvalidAllocationID.NotFound');
    // a bad id anywhere → nothing tagged
    expect((await failure(ec2.send(new CreateTagsCommand({ Resources: [groupId, 'sg-00000000000000000'], Tags: [{ Key: 'partial', Value: 'x' }] })))).name).toBe('InvalidGroup.NotFound');
    expect((await tagsOf(groupId)).map((t) => t.Key)).not.toContain('partial');
    expect((await failure(ec2.send(new CreateTagsCommand({ Resources: [keyId], Tags: [{ Key: 'aws:x', Value: 'b' }] })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new CreateTagsCommand({ Resources: [keyId], Tags: [{ Key: 'k'.repeat(129), Value: 'b' }] })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new CreateTagsCommand({ Resources: [keyId], Tags: [{ Key: 'v', Value: 'v'.repeat(257) }] })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new CreateTagsCommand({ Resources: [keyId], Tags: [] })))).name).toBe('MissingParameter');
    // 50 per resource, counting the existing ones (2 on the key pair)
    const many = Array.from({ length: 48 }, (_, i) => ({ Key: `t${i}`, Value: String(i) }));
    await ec2.send(new CreateTagsCommand({ Resources: [keyId], Tags: many }));
    expect(await tagsOf(keyId)).toHaveLength(50);
    expect(await failure(ec2.send(new CreateTagsCommand({ Resources: [keyId], Tags: [{ Key: 'one-too-many', Value: '' }] })))).toMatchObject({ name: 'TagLimitExceeded', status: 400 });
    await ec2.send(new CreateTagsCommand({ Resources: [keyId], Tags: [{ Key: 't0', Value: 'overwrite is fine at the limit' }] }));
    expect((await failure(ec2.send(new CreateTagsCommand({ Resources: [groupId], Tags: [{ Key: 'dry', Value: '' }], DryRun: true })))).name).toBe('DryRunOperation');
    expect((await tagsOf(groupId)).map((t) => t.Key)).not.toContain('dry');
  });
});

describe('DescribeTags', () => {
  it('filters key, value, resource-id, resource-type; pages with the SDK paginator', async () => {
    const keys = async (Filters: { Name: string; Values: string[] }[]) => (await ec2.send(new DescribeTagsCommand({ Filters }))).Tags!.map((t) => `${t.ResourceId}:${t.Key}`);
    expect(await keys([{ Name: 'resource-type', Values: ['security-group'] }])).toEqual([`${groupId}:Name`, `${groupId}:env`]);
    expect(
      await keys([
        { Name: 'key', Values: ['Name'] },
        { Name: 'value', Values: ['one'] },
      ]),
    ).toEqual([`${allocId}:Name`, `${groupId}:Name`].sort());
    expect(await keys([{ Name: 'key', Values: ['t4?'] }])).toHaveLength(8);
    expect((await failure(ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })))).name).toBe('InvalidParameterValue');
    const seen: string[] = [];
    let pages = 0;
    for await (const page of paginateDescribeTags({ client: ec2, pageSize: 7 }, { Filters: [{ Name: 'resource-id', Values: [keyId] }] })) {
      pages++;
      seen.push(...page.Tags!.map((t) => t.Key!));
    }
    expect(pages).toBe(8); // 50 tags by 7
    expect(new Set(seen).size).toBe(50);
    expect((await failure(ec2.send(new DescribeTagsCommand({ MaxResults: 1001 })))).name).toBe('InvalidParameterValue');
  });
});

describe('DeleteTags', () => {
  it('by key, by key and value (only when equal), all tags; validates ids', async () => {
    await ec2.send(new DeleteTagsCommand({ Resources: [groupId], Tags: [{ Key: 'Name', Value: 'not-this' }] }));
    expect((await tagsOf(groupId)).map((t) => t.Key)).toEqual(['Name', 'env']);
    await ec2.send(new DeleteTagsCommand({ Resources: [groupId], Tags: [{ Key: 'Name', Value: 'one' }] }));
    expect((await tagsOf(groupId)).map((t) => t.Key)).toEqual(['env']);
    await ec2.send(new DeleteTagsCommand({ Resources: [groupId, allocId], Tags: [{ Key: 'env' }] }));
    expect(await tagsOf(groupId)).toEqual([]);
    expect((await tagsOf(allocId)).map((t) => t.Key)).toEqual(['Name']);
    expect((await failure(ec2.send(new DeleteTagsCommand({ Resources: [keyId], DryRun: true })))).name).toBe('DryRunOperation');
    await ec2.send(new DeleteTagsCommand({ Resources: [keyId] }));
    expect(await tagsOf(keyId)).toEqual([]);
    expect((await failure(ec2.send(new DeleteTagsCommand({ Resources: ['sg-00000000000000000'] })))).name).toBe('InvalidGroup.NotFound');
    expect((await failure(ec2.send(new DeleteTagsCommand({ Resources: ['zzz-00000000000000000'] })))).name).toBe('InvalidID');
  });
});
