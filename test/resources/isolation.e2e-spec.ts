// One account never sees or touches another's key pairs, groups, addresses or tags; the admin
// account sees all in Describe* and may act on any account's resource by id (Ec2Context contract).
import {
  AllocateAddressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateKeyPairCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DeleteTagsCommand,
  DescribeAddressesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  DescribeTagsCommand,
  ReleaseAddressCommand,
  RevokeSecurityGroupIngressCommand,
  type EC2Client,
  type ResourceType,
} from '@aws-sdk/client-ec2';
import { startCloud, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { failure } from './helpers.js';

let cloud: TestCloud;
let admin: EC2Client;
let a: EC2Client;
let b: EC2Client;
let aCreds: TestCredentials;
let bCreds: TestCredentials;
const A: { keyId: string; groupId: string; allocId: string; ip: string } = { keyId: '', groupId: '', allocId: '', ip: '' };

beforeAll(async () => {
  cloud = await startCloud();
  admin = cloud.ec2();
  aCreds = await cloud.createAccount('tenant-a');
  bCreds = await cloud.createAccount('tenant-b');
  a = cloud.ec2(aCreds);
  b = cloud.ec2(bCreds);
  const tag = (ResourceType: ResourceType) => [{ ResourceType, Tags: [{ Key: 'owner', Value: 'a' }] }];
  A.keyId = (await a.send(new CreateKeyPairCommand({ KeyName: 'shared-name', KeyType: 'ed25519', TagSpecifications: tag('key-pair') }))).KeyPairId!;
  A.groupId = (await a.send(new CreateSecurityGroupCommand({ GroupName: 'shared-name', Description: 'a', TagSpecifications: tag('security-group') }))).GroupId!;
  const addr = await a.send(new AllocateAddressCommand({ TagSpecifications: tag('elastic-ip') }));
  A.allocId = addr.AllocationId!;
  A.ip = addr.PublicIp!;
}, 60_000);
afterAll(async () => {
  await cloud?.close();
});

describe('account B', () => {
  it('cannot describe A’s resources', async () => {
    expect((await b.send(new DescribeKeyPairsCommand({}))).KeyPairs).toEqual([]);
    expect((await failure(b.send(new DescribeKeyPairsCommand({ KeyNames: ['shared-name'] })))).name).toBe('InvalidKeyPair.NotFound');
    expect((await failure(b.send(new DescribeKeyPairsCommand({ KeyPairIds: [A.keyId] })))).name).toBe('InvalidKeyPair.NotFound');
    const groups = (await b.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups!;
    expect(groups.map((g) => [g.GroupName, g.OwnerId])).toEqual([['default', bCreds.accountId]]);
    expect((await failure(b.send(new DescribeSecurityGroupsCommand({ GroupIds: [A.groupId] })))).name).toBe('InvalidGroup.NotFound');
    expect((await failure(b.send(new DescribeSecurityGroupsCommand({ GroupNames: ['shared-name'] })))).name).toBe('InvalidGroup.NotFound');
    expect((await b.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'owner-id', Values: [aCreds.accountId] }] }))).SecurityGroups).toEqual([]);
    expect((await b.send(new DescribeAddressesCommand({}))).Addresses).toEqual([]);
    expect((await failure(b.send(new DescribeAddressesCommand({ AllocationIds: [A.allocId] })))).name).toBe('InvalidAllocationID.NotFound');
    expect((await failure(b.send(new DescribeAddressesCommand({ PublicIps: [A.ip] })))).name).toBe('InvalidAddress.NotFound');
    expect((await b.send(new DescribeTagsCommand({}))).Tags).toEqual([]);
  });

  it('cannot tag or untag A’s resources', async () => {
    for (const [id, code] of [
      [A.keyId, 'InvalidKeyPair.NotFound'],
      [A.groupId, 'InvalidGroup.NotFound'],
      [A.allocId, 'InvalidAllocationID.NotFound'],
    ]) {
      expect((await failure(b.send(new CreateTagsCommand({ Resources: [id!], Tags: [{ Key: 'owner', Value: 'b' }] })))).name).toBe(code);
      expect((await failure(b.send(new DeleteTagsCommand({ Resources: [id!] })))).name).toBe(code);
    }
  });

  it('cannot delete, authorize, revoke, reference or release A’s resources', async () => {
    expect((await failure(b.send(new DeleteKeyPairCommand({ KeyPairId: A.keyId })))).name).toBe('InvalidKeyPair.NotFound');
    // by name: B has no such key, AWS answers success; A's key is untouched
    expect((await b.send(new DeleteKeyPairCommand({ KeyName: 'shared-name' }))).Return).toBe(true);
    expect((await failure(b.send(new DeleteSecurityGroupCommand({ GroupId: A.groupId })))).name).toBe('InvalidGroup.NotFound');
    expect((await failure(b.send(new DeleteSecurityGroupCommand({ GroupName: 'shared-name' })))).name).toBe('InvalidGroup.NotFound');
    const perm = { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }] };
    expect((await failure(b.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: A.groupId, IpPermissions: [perm] })))).name).toBe('InvalidGroup.NotFound');
    expect((await failure(b.send(new RevokeSecurityGroupIngressCommand({ GroupId: A.groupId, IpPermissions: [perm] })))).name).toBe('InvalidGroup.NotFound');
    expect((await failure(b.send(new AuthorizeSecurityGroupIngressCommand({ GroupName: 'default', IpPermissions: [{ IpProtocol: '-1', UserIdGroupPairs: [{ GroupId: A.groupId }] }] })))).name).toBe(
      'InvalidGroup.NotFound',
    );
    expect((await failure(b.send(new AuthorizeSecurityGroupIngressCommand({ GroupName: 'default', SourceSecurityGroupName: 'shared-name', SourceSecurityGroupOwnerId: aCreds.accountId })))).name).toBe(
      'InvalidGroup.NotFound',
    );
    expect((await failure(b.send(new ReleaseAddressCommand({ AllocationId: A.allocId })))).name).toBe('InvalidAllocationID.NotFound');
    expect((await failure(b.send(new ReleaseAddressCommand({ PublicIp: A.ip })))).name).toBe('InvalidAddress.NotFound');
    // B may use the same names in its own account
    await b.send(new CreateKeyPairCommand({ KeyName: 'shared-name', KeyType: 'ed25519' }));
    await b.send(new CreateSecurityGroupCommand({ GroupName: 'shared-name', Description: 'b' }));
  });

  it('A still has everything, untouched', async () => {
    expect((await a.send(new DescribeKeyPairsCommand({ KeyPairIds: [A.keyId] }))).KeyPairs![0]!.Tags).toEqual([{ Key: 'owner', Value: 'a' }]);
    const g = (await a.send(new DescribeSecurityGroupsCommand({ GroupIds: [A.groupId] }))).SecurityGroups![0]!;
    expect(g.IpPermissions).toEqual([]);
    expect(g.Tags).toEqual([{ Key: 'owner', Value: 'a' }]);
    expect((await a.send(new DescribeAddressesCommand({}))).Addresses!.map((x) => x.AllocationId)).toEqual([A.allocId]);
    expect((await a.send(new DescribeTagsCommand({}))).Tags).toHaveLength(3);
  });
});

describe('the admin account', () => {
  it('sees every account’s resources in Describe*', async () => {
    const keys = (await admin.send(new DescribeKeyPairsCommand({ KeyNames: ['shared-name'] }))).KeyPairs!;
    expect(keys).toHaveLength(2);
    const groups = (await admin.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['shared-name'] }] }))).SecurityGroups!;
    expect(groups.map((g) => g.OwnerId).sort()).toEqual([aCreds.accountId, bCreds.accountId].sort());
    expect((await admin.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'owner-id', Values: [aCreds.accountId] }] }))).SecurityGroups!.map((g) => g.GroupName).sort()).toEqual([
      'default',
      'shared-name',
    ]);
    expect((await admin.send(new DescribeAddressesCommand({ AllocationIds: [A.allocId] }))).Addresses).toHaveLength(1);
    expect((await admin.send(new DescribeTagsCommand({ Filters: [{ Name: 'key', Values: ['owner'] }] }))).Tags).toHaveLength(3);
  });

  it('acts on another account’s resource by id, never by name', async () => {
    await admin.send(new CreateTagsCommand({ Resources: [A.groupId], Tags: [{ Key: 'audited', Value: 'yes' }] }));
    expect((await a.send(new DescribeSecurityGroupsCommand({ GroupIds: [A.groupId] }))).SecurityGroups![0]!.Tags).toContainEqual({ Key: 'audited', Value: 'yes' });
    expect((await a.send(new DescribeTagsCommand({ Filters: [{ Name: 'key', Values: ['audited'] }] }))).Tags).toHaveLength(1);
    expect((await failure(admin.send(new DeleteSecurityGroupCommand({ GroupName: 'shared-name' })))).name).toBe('InvalidGroup.NotFound');
    expect((await admin.send(new DeleteKeyPairCommand({ KeyName: 'shared-name' }))).KeyPairId).toBeUndefined();
    expect((await a.send(new DescribeKeyPairsCommand({}))).KeyPairs).toHaveLength(1);
  });
});
