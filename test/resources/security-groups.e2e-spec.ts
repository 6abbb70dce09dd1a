// Security groups through the EC2 endpoint with AWS SDK v3: default group, create, describe
// (filters, paginator), authorize/revoke ingress and egress in both forms, delete rules.
import {
  DescribeAccountAttributesCommand,
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeSecurityGroupsCommand,
  paginateDescribeSecurityGroups,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
  type EC2Client,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import { SecurityGroupsService } from '../../apps/cloud-controller/src/security-groups/security-groups.service.js';
import { startCloud, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { failure } from './helpers.js';

let cloud: TestCloud;
let ec2: EC2Client;
let me: TestCredentials;

beforeAll(async () => {
  cloud = await startCloud();
  me = await cloud.createAccount('groups');
  ec2 = cloud.ec2(me);
}, 60_000);
afterAll(async () => {
  await cloud?.close();
});

async function group(id: string): Promise<SecurityGroup> {
  return (await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [id] }))).SecurityGroups![0]!;
}
async function create(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  return (await ec2.send(new CreateSecurityGroupCommand({ GroupName: name, Description: `${name} group`, ...extra }))).GroupId!;
}

describe('default group', () => {
  it('exists on first use with AWS default rules and cannot be deleted', async () => {
    const r = await ec2.send(new DescribeSecurityGroupsCommand({ GroupNames: ['default'] }));
    expect(r.SecurityGroups).toHaveLength(1);
    const d = r.SecurityGroups![0]!;
    expect(d).toMatchObject({ GroupName: 'default', Description: 'default group', OwnerId: me.accountId, Tags: [] });
    expect(d.GroupId).toMatch(/^sg-[0-9a-f]{17}$/);
    expect(d.IpPermissions).toEqual([{ IpProtocol: '-1', UserIdGroupPairs: [{ UserId: me.accountId, GroupId: d.GroupId, GroupName: 'default' }], IpRanges: [], Ipv6Ranges: [], PrefixListIds: [] }]);
    expect(d.IpPermissionsEgress).toEqual([{ IpProtocol: '-1', UserIdGroupPairs: [], IpRanges: [{ CidrIp: '0.0.0.0/0' }], Ipv6Ranges: [], PrefixListIds: [] }]);
    // only one default, however many calls
    await Promise.all([1, 2, 3].map(() => ec2.send(new DescribeSecurityGroupsCommand({}))));
    expect((await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['default'] }] }))).SecurityGroups).toHaveLength(1);
    expect(await failure(ec2.send(new DeleteSecurityGroupCommand({ GroupName: 'default' })))).toMatchObject({ name: 'CannotDelete', status: 400 });
    expect((await failure(ec2.send(new DeleteSecurityGroupCommand({ GroupId: d.GroupId })))).name).toBe('CannotDelete');
  });

  it('is created exactly once under concurrent first use (the repository on PostgreSQL)', async () => {
    const fresh = await cloud.createAccount('groups-race');
    const service = cloud.app.get(SecurityGroupsService);
    const ids = await Promise.all(Array.from({ length: 8 }, () => service.ensureDefaultGroup(fresh.accountId, new Date())));
    expect(new Set(ids).size).toBe(1);
    const rows = await cloud.dataSource.query(`SELECT count(*)::int AS n FROM security_groups WHERE account_id = $1 AND name = 'default'`, [fresh.accountId]);
    expect(rows[0].n).toBe(1);
    const rules = await cloud.dataSource.query(`SELECT is_egress, ip_protocol, cidr_ipv4, referenced_group_id, referenced_user_id FROM security_group_rules WHERE group_id = $1 ORDER BY is_egress`, [
      ids[0],
    ]);
    expect(rules).toEqual([
      { is_egress: false, ip_protocol: '-1', cidr_ipv4: null, referenced_group_id: ids[0], referenced_user_id: fresh.accountId },
      { is_egress: true, ip_protocol: '-1', cidr_ipv4: '0.0.0.0/0', referenced_group_id: null, referenced_user_id: null },
    ]);
  });
});

describe('CreateSecurityGroup', () => {
  it('creates with the default egress rule, tags, in the default VPC (another VpcId refused)', async () => {
    const vpcId = (await ec2.send(new DescribeAccountAttributesCommand({ AttributeNames: ['default-vpc'] }))).AccountAttributes![0]!.AttributeValues![0]!.AttributeValue!;
    expect(await failure(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'web', Description: 'web servers', VpcId: 'vpc-0123456789abcdef0' })))).toMatchObject({ code: 'InvalidVpcID.NotFound' });
    const r = await ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: 'web',
        Description: 'web servers',
        VpcId: vpcId,
        TagSpecifications: [{ ResourceType: 'security-group', Tags: [{ Key: 'tier', Value: 'front' }] }],
      }),
    );
    expect(r.GroupId).toMatch(/^sg-[0-9a-f]{17}$/);
    expect(r.Tags).toEqual([{ Key: 'tier', Value: 'front' }]);
    const g = await group(r.GroupId!);
    expect(g).toMatchObject({ GroupName: 'web', Description: 'web servers', VpcId: vpcId, OwnerId: me.accountId, IpPermissions: [], Tags: [{ Key: 'tier', Value: 'front' }] });
    expect(g.IpPermissionsEgress).toEqual([{ IpProtocol: '-1', UserIdGroupPairs: [], IpRanges: [{ CidrIp: '0.0.0.0/0' }], Ipv6Ranges: [], PrefixListIds: [] }]);
  });

  it('errors: duplicate, reserved and malformed names, missing description, bad tag spec, DryRun', async () => {
    expect(await failure(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'web', Description: 'again' })))).toMatchObject({
      name: 'InvalidGroup.Duplicate',
      status: 400,
      message: "The security group 'web' already exists",
    });
    expect((await failure(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'default', Description: 'x' })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'sg-abc', Description: 'x' })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'g'.repeat(256), Description: 'x' })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'nodesc' } as never)))).name).toBe('MissingParameter');
    expect(
      (await failure(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'badtag', Description: 'x', TagSpecifications: [{ ResourceType: 'key-pair', Tags: [{ Key: 'a', Value: 'b' }] }] })))).name,
    ).toBe('InvalidParameterValue');
    expect(await failure(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'dry', Description: 'x', DryRun: true })))).toMatchObject({ name: 'DryRunOperation', status: 412 });
    expect((await failure(ec2.send(new DescribeSecurityGroupsCommand({ GroupNames: ['badtag'] })))).name).toBe('InvalidGroup.NotFound');
    expect((await failure(ec2.send(new DescribeSecurityGroupsCommand({ GroupNames: ['dry'] })))).name).toBe('InvalidGroup.NotFound');
  });
});

describe('ingress and egress rules', () => {
  let app: string;
  let db: string;
  beforeAll(async () => {
    app = await create('app');
    db = await create('db');
  });

  it('authorizes in the new form and answers the securityGroupRuleSet', async () => {
    const r = await ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: app,
        IpPermissions: [
          { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '10.0.0.0/8', Description: 'office' }, { CidrIp: '192.168.1.0/24' }] },
          { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, Ipv6Ranges: [{ CidrIpv6: '2001:db8::/32' }], UserIdGroupPairs: [{ GroupId: db }] },
          { IpProtocol: 'icmp', FromPort: 8, ToPort: -1, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
          { IpProtocol: '17', FromPort: 53, ToPort: 53, UserIdGroupPairs: [{ GroupName: 'db', UserId: me.accountId }] },
        ],
      }),
    );
    expect(r.Return).toBe(true);
    expect(r.SecurityGroupRules).toHaveLength(6);
    expect(r.SecurityGroupRules![0]).toMatchObject({
      GroupId: app,
      GroupOwnerId: me.accountId,
      IsEgress: false,
      IpProtocol: 'tcp',
      FromPort: 22,
      ToPort: 22,
      CidrIpv4: '10.0.0.0/8',
      Description: 'office',
    });
    expect(r.SecurityGroupRules![0]!.SecurityGroupRuleId).toMatch(/^sgr-[0-9a-f]{17}$/);
    expect(r.SecurityGroupRules!.find((x) => x.ReferencedGroupInfo)?.ReferencedGroupInfo).toEqual({ GroupId: db, UserId: me.accountId });
    const g = await group(app);
    expect(g.IpPermissions).toEqual([
      {
        IpProtocol: 'tcp',
        FromPort: 22,
        ToPort: 22,
        UserIdGroupPairs: [],
        IpRanges: [{ CidrIp: '10.0.0.0/8', Description: 'office' }, { CidrIp: '192.168.1.0/24' }],
        Ipv6Ranges: [],
        PrefixListIds: [],
      },
      {
        IpProtocol: 'tcp',
        FromPort: 443,
        ToPort: 443,
        UserIdGroupPairs: [{ UserId: me.accountId, GroupId: db, GroupName: 'db' }],
        IpRanges: [],
        Ipv6Ranges: [{ CidrIpv6: '2001:db8::/32' }],
        PrefixListIds: [],
      },
      { IpProtocol: 'icmp', FromPort: 8, ToPort: -1, UserIdGroupPairs: [], IpRanges: [{ CidrIp: '0.0.0.0/0' }], Ipv6Ranges: [], PrefixListIds: [] },
      { IpProtocol: 'udp', FromPort: 53, ToPort: 53, UserIdGroupPairs: [{ UserId: me.accountId, GroupId: db, GroupName: 'db' }], IpRanges: [], Ipv6Ranges: [], PrefixListIds: [] },
    ]);
  });

  it('authorizes in the old form by group name (CidrIp; SourceSecurityGroupName → tcp, udp, icmp)', async () => {
    const ssh = await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupName: 'db', IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432, CidrIp: '10.1.0.0/16' }));
    expect(ssh.Return).toBe(true);
    const classic = await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupName: 'db', SourceSecurityGroupName: 'app', SourceSecurityGroupOwnerId: me.accountId }));
    expect(classic.SecurityGroupRules!.map((r) => [r.IpProtocol, r.FromPort, r.ToPort])).toEqual([
      ['tcp', 0, 65535],
      ['udp', 0, 65535],
      ['icmp', -1, -1],
    ]);
    const g = await group(db);
    expect(g.IpPermissions!.map((p) => p.IpProtocol)).toEqual(['tcp', 'tcp', 'udp', 'icmp']);
  });

  it('refuses duplicates (whole request, nothing written) and invalid rules', async () => {
    const before = await group(app);
    expect(
      await failure(
        ec2.send(
          new AuthorizeSecurityGroupIngressCommand({
            GroupId: app,
            IpPermissions: [
              { IpProtocol: 'tcp', FromPort: 80, ToPort: 80, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
              { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '10.0.0.0/8', Description: 'other text' }] },
            ],
          }),
        ),
      ),
    ).toMatchObject({ name: 'InvalidPermission.Duplicate', status: 400, message: 'the specified rule "peer: 10.0.0.0/8, TCP, from port: 22, to port: 22, ALLOW" already exists' });
    expect(await group(app)).toEqual(before);
    const bad = async (p: Record<string, unknown>) => (await failure(ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: app, IpPermissions: [p as never] })))).name;
    expect(await bad({ IpProtocol: 'tcp', FromPort: 0, ToPort: 65536, IpRanges: [{ CidrIp: '0.0.0.0/0' }] })).toBe('InvalidParameterValue');
    expect(await bad({ IpProtocol: 'tcp', FromPort: 90, ToPort: 80, IpRanges: [{ CidrIp: '0.0.0.0/0' }] })).toBe('InvalidParameterValue');
    expect(await bad({ IpProtocol: 'tcp', IpRanges: [{ CidrIp: '0.0.0.0/0' }] })).toBe('InvalidParameterValue');
    expect(await bad({ IpProtocol: 'icmp', FromPort: 300, ToPort: 0, IpRanges: [{ CidrIp: '0.0.0.0/0' }] })).toBe('InvalidParameterValue');
    expect(await bad({ IpProtocol: 'bogus', IpRanges: [{ CidrIp: '0.0.0.0/0' }] })).toBe('InvalidParameterValue');
    expect(await bad({ IpProtocol: 'tcp', FromPort: 1, ToPort: 2, IpRanges: [{ CidrIp: '10.0.0.0/40' }] })).toBe('InvalidParameterValue');
    expect(await bad({ IpProtocol: 'tcp', FromPort: 1, ToPort: 2, Ipv6Ranges: [{ CidrIpv6: '10.0.0.0/8' }] })).toBe('InvalidParameterValue');
    expect(await bad({ IpProtocol: 'tcp', FromPort: 1, ToPort: 2, UserIdGroupPairs: [{ GroupId: 'sg-00000000000000000' }] })).toBe('InvalidGroup.NotFound');
    expect((await failure(ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupName: 'nope', IpProtocol: 'tcp', FromPort: 1, ToPort: 1, CidrIp: '1.1.1.1/32' })))).name).toBe(
      'InvalidGroup.NotFound',
    );
    expect((await failure(ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: 'sg-bad', IpProtocol: 'tcp', FromPort: 1, ToPort: 1, CidrIp: '1.1.1.1/32' })))).name).toBe(
      'InvalidGroupId.Malformed',
    );
    expect((await failure(ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: app, DryRun: true, IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '9.9.9.9/32' }] }] })))).name).toBe(
      'DryRunOperation',
    );
    expect(await group(app)).toEqual(before);
  });

  it('egress: authorize, duplicate, revoke the default allow-all', async () => {
    const r = await ec2.send(new AuthorizeSecurityGroupEgressCommand({ GroupId: db, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] }));
    expect(r.SecurityGroupRules![0]).toMatchObject({ IsEgress: true, IpProtocol: 'tcp', FromPort: 443 });
    expect((await failure(ec2.send(new AuthorizeSecurityGroupEgressCommand({ GroupId: db, IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] })))).name).toBe(
      'InvalidPermission.Duplicate',
    );
    const rv = await ec2.send(new RevokeSecurityGroupEgressCommand({ GroupId: db, IpPermissions: [{ IpProtocol: 'all', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] }));
    expect(rv.Return).toBe(true);
    expect(rv.UnknownIpPermissions).toBeUndefined();
    expect((await group(db)).IpPermissionsEgress).toEqual([
      { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, UserIdGroupPairs: [], IpRanges: [{ CidrIp: '0.0.0.0/0' }], Ipv6Ranges: [], PrefixListIds: [] },
    ]);
  });

  it('revokes: exact match, partial match reports unknownIpPermissionSet, no match → InvalidPermission.NotFound', async () => {
    const full = await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: app, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '192.168.1.0/24' }] }] }));
    expect(full.Return).toBe(true);
    expect(full.RevokedSecurityGroupRules).toHaveLength(1);
    const partial = await ec2.send(
      new RevokeSecurityGroupIngressCommand({
        GroupId: app,
        IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '10.0.0.0/8' }, { CidrIp: '172.16.0.0/12' }] }],
      }),
    );
    expect(partial.Return).toBe(true);
    expect(partial.UnknownIpPermissions).toEqual([{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, UserIdGroupPairs: [], IpRanges: [{ CidrIp: '172.16.0.0/12' }], Ipv6Ranges: [], PrefixListIds: [] }]);
    expect(await failure(ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: app, IpProtocol: 'tcp', FromPort: 22, ToPort: 22, CidrIp: '10.0.0.0/8' })))).toMatchObject({
      name: 'InvalidPermission.NotFound',
      status: 400,
    });
    // old form by name
    expect((await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupName: 'db', IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432, CidrIp: '10.1.0.0/16' }))).Return).toBe(true);
    // by rule id
    const rules = (await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: app, IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, CidrIp: '1.2.3.4/32' }))).SecurityGroupRules!;
    expect((await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: app, SecurityGroupRuleIds: [rules[0]!.SecurityGroupRuleId!] }))).Return).toBe(true);
    expect((await failure(ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: app, SecurityGroupRuleIds: [rules[0]!.SecurityGroupRuleId!] })))).name).toBe('InvalidSecurityGroupRuleId.NotFound');
    expect((await failure(ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: app, DryRun: true, IpProtocol: 'icmp', FromPort: 8, ToPort: -1, CidrIp: '0.0.0.0/0' })))).name).toBe(
      'DryRunOperation',
    );
  });

  it('DeleteSecurityGroup: DependencyViolation while referenced, then deleted by id and by name', async () => {
    expect(await failure(ec2.send(new DeleteSecurityGroupCommand({ GroupId: db })))).toMatchObject({ name: 'DependencyViolation', status: 400 });
    // app references db; db references app (classic rules): remove db's references to app then delete app
    await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupName: 'db', SourceSecurityGroupName: 'app' }));
    expect((await failure(ec2.send(new DeleteSecurityGroupCommand({ GroupId: app, DryRun: true })))).name).toBe('DryRunOperation');
    const d = await ec2.send(new DeleteSecurityGroupCommand({ GroupId: app }));
    expect(d.Return).toBe(true);
    expect(d.GroupId).toBe(app);
    expect((await ec2.send(new DeleteSecurityGroupCommand({ GroupName: 'db' }))).Return).toBe(true);
    expect((await failure(ec2.send(new DeleteSecurityGroupCommand({ GroupName: 'db' })))).name).toBe('InvalidGroup.NotFound');
    expect((await failure(ec2.send(new DeleteSecurityGroupCommand({ GroupId: app })))).name).toBe('InvalidGroup.NotFound');
    expect((await failure(ec2.send(new DeleteSecurityGroupCommand({})))).name).toBe('MissingParameter');
  });
});

describe('DescribeSecurityGroups', () => {
  beforeAll(async () => {
    for (let i = 0; i < 12; i++) {
      const id = await create(`page-${String(i).padStart(2, '0')}`, { TagSpecifications: [{ ResourceType: 'security-group', Tags: [{ Key: 'n', Value: String(i % 3) }] }] });
      if (i === 3) {
        await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: id, IpPermissions: [{ IpProtocol: 'udp', FromPort: 1000, ToPort: 2000, IpRanges: [{ CidrIp: '203.0.113.0/24' }] }] }));
        await ec2.send(new AuthorizeSecurityGroupEgressCommand({ GroupId: id, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 25, ToPort: 25, Ipv6Ranges: [{ CidrIpv6: '::/0' }] }] }));
      }
    }
  });

  it('pages with the SDK paginator (no repeated token, every group once)', async () => {
    const seen: string[] = [];
    let pages = 0;
    for await (const page of paginateDescribeSecurityGroups({ client: ec2, pageSize: 5 }, { Filters: [{ Name: 'group-name', Values: ['page-*'] }] })) {
      pages++;
      expect(page.SecurityGroups!.length).toBeLessThanOrEqual(5);
      seen.push(...page.SecurityGroups!.map((g) => g.GroupName!));
    }
    expect(pages).toBe(3);
    expect(seen.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `page-${String(i).padStart(2, '0')}`));
    expect((await failure(ec2.send(new DescribeSecurityGroupsCommand({ MaxResults: 2 })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new DescribeSecurityGroupsCommand({ MaxResults: 5, NextToken: 'garbage' })))).name).toBe('InvalidPaginationToken');
  });

  it('filters: group-name, group-id, description, owner-id, ip-permission.*, egress.ip-permission.*, tag:*, tag-key', async () => {
    const names = async (Filters: { Name: string; Values: string[] }[]) => (await ec2.send(new DescribeSecurityGroupsCommand({ Filters }))).SecurityGroups!.map((g) => g.GroupName!).sort();
    expect(
      await names([
        { Name: 'group-name', Values: ['page-0?'] },
        { Name: 'tag:n', Values: ['1'] },
      ]),
    ).toEqual(['page-01', 'page-04', 'page-07']);
    expect(await names([{ Name: 'description', Values: ['page-11 group'] }])).toEqual(['page-11']);
    expect(await names([{ Name: 'ip-permission.protocol', Values: ['udp'] }])).toEqual(['page-03']);
    expect(
      await names([
        { Name: 'ip-permission.from-port', Values: ['1000'] },
        { Name: 'ip-permission.to-port', Values: ['2000'] },
      ]),
    ).toEqual(['page-03']);
    expect(await names([{ Name: 'ip-permission.cidr', Values: ['203.0.113.*'] }])).toEqual(['page-03']);
    expect(await names([{ Name: 'egress.ip-permission.ipv6-cidr', Values: ['::/0'] }])).toEqual(['page-03']);
    expect(await names([{ Name: 'egress.ip-permission.protocol', Values: ['tcp'] }])).toEqual(['page-03']);
    expect(await names([{ Name: 'ip-permission.group-name', Values: ['default'] }])).toEqual(['default']);
    expect((await names([{ Name: 'egress.ip-permission.cidr', Values: ['0.0.0.0/0'] }])).length).toBe(14);
    expect((await names([{ Name: 'owner-id', Values: [me.accountId] }])).length).toBe(14);
    expect(await names([{ Name: 'owner-id', Values: ['000000000000'] }])).toEqual([]);
    expect((await names([{ Name: 'tag-key', Values: ['n'] }])).length).toBe(12);
    const one = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupNames: ['page-05'] }))).SecurityGroups![0]!;
    expect(one.Tags).toEqual([{ Key: 'n', Value: '2' }]);
    expect(await names([{ Name: 'group-id', Values: [one.GroupId!] }])).toEqual(['page-05']);
    expect((await failure(ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'flavour', Values: ['x'] }] })))).name).toBe('InvalidParameterValue');
    expect(await failure(ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ['sg-00000000000000000'] })))).toMatchObject({
      name: 'InvalidGroup.NotFound',
      message: "The security group 'sg-00000000000000000' does not exist",
    });
    expect((await failure(ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ['nope'] })))).name).toBe('InvalidGroupId.Malformed');
  });
});
