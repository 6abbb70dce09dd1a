/**
 * The default-VPC face through the EC2 API (real CLC, PostgreSQL, NATS; fake CCs for two zones):
 * DescribeAccountAttributes, DescribeVpcs, DescribeSubnets (free addresses from real
 * allocations), security groups in the default VPC, RunInstances placed by a subnet id and
 * its NetworkInterface.1.* form, and the actions a flat zone network refuses.
 */
import { jest } from '@jest/globals';
import {
  CreateDefaultVpcCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DeleteSubnetCommand,
  DeleteVpcCommand,
  DescribeAccountAttributesCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type Subnet,
} from '@aws-sdk/client-ec2';
import { jetstreamManager } from '@nats-io/jetstream';
import { randomBytes } from 'node:crypto';
import { Ec2Error } from '@koala/ec2-query';
import { EVENTS_STREAM } from '@koala/contracts';
import { NatsBus } from '@koala/messaging';
import { IMAGE_LAUNCH, type ImageLaunchPort } from '../../apps/cloud-controller/src/images/image-launch.port.js';
import { startCloud, uniqueZone, type TestCloud } from '../support/cloud.js';
import { failure } from '../resources/helpers.js';
import { FakeZone } from './fake-zone.js';

jest.setTimeout(60_000);

const IMAGE = 'emi-0123456789abcdef0';
const consumer = `clc-test-${randomBytes(4).toString('hex')}`;
let cloud: TestCloud;
let z1: FakeZone;
let z2: FakeZone;
let ec2: EC2Client;

beforeAll(async () => {
  z1 = await FakeZone.start(uniqueZone('vpca'));
  z2 = await FakeZone.start(uniqueZone('vpcb'));
  z1.capacity = z2.capacity = 20;
  cloud = await startCloud({
    env: {
      KOALA_EVENTS_CONSUMER: consumer,
      // no `*`: zones of other test files on the shared NATS get no subnet here
      KOALA_ZONE_SUBNETS: `${z1.zone}=10.78.0.0/24,${z2.zone}=10.78.1.0/24`,
      KOALA_PUBLIC_IP_RANGE: '203.0.113.0/28',
      KOALA_NETWORK_REPUBLISH_MS: '60000',
      KOALA_ADDRESSES_PER_ACCOUNT: '7',
    },
  });
  jest.spyOn(cloud.app.get<ImageLaunchPort>(IMAGE_LAUNCH), 'launchSpec').mockImplementation(async (_caller, imageId) => {
    if (imageId !== IMAGE) throw Ec2Error.notFound('InvalidAMIID.NotFound', imageId);
    return {
      spec: { virtualizationType: 'hvm', root: { imageId, sha256: 'a'.repeat(64), sizeBytes: 1024, format: 'qcow2', url: 'http://127.0.0.1:1/blob' } },
      architecture: 'x86_64',
      rootDeviceName: '/dev/vda',
    };
  });
  ec2 = cloud.ec2();
}, 60_000);

afterAll(async () => {
  await cloud?.close();
  await z1?.close();
  await z2?.close();
  const b = await NatsBus.connect({ url: 'nats://127.0.0.1:4222', name: 'cleanup' });
  const jsm = await jetstreamManager(b.connection);
  await jsm.consumers.delete(EVENTS_STREAM, consumer).catch(() => undefined);
  await b.close();
});

const subnets = async (filters: Array<{ Name: string; Values: string[] }> = [], ids?: string[]) => (await ec2.send(new DescribeSubnetsCommand({ Filters: filters, SubnetIds: ids }))).Subnets ?? [];
const subnetOf = async (zone: string): Promise<Subnet> => (await subnets([{ Name: 'availability-zone', Values: [zone] }]))[0]!;

let vpcId: string;

it('DescribeAccountAttributes: VPC only, the default VPC, the limits; AttributeName.N picks', async () => {
  const all = (await ec2.send(new DescribeAccountAttributesCommand({}))).AccountAttributes!;
  const byName = Object.fromEntries(all.map((a) => [a.AttributeName, a.AttributeValues!.map((v) => v.AttributeValue)]));
  expect(byName['supported-platforms']).toEqual(['VPC']);
  expect(byName['default-vpc']![0]).toMatch(/^vpc-[0-9a-f]{17}$/);
  expect(byName['max-elastic-ips']).toEqual(['7']);
  expect(byName['vpc-max-elastic-ips']).toEqual(['7']);
  expect(byName['vpc-max-security-groups-per-interface']).toEqual(['5']);
  expect(Number(byName['max-instances']![0])).toBeGreaterThan(0);
  vpcId = byName['default-vpc']![0]!;
  const one = (await ec2.send(new DescribeAccountAttributesCommand({ AttributeNames: ['default-vpc'] }))).AccountAttributes!;
  expect(one.map((a) => a.AttributeName)).toEqual(['default-vpc']);
  expect((await failure(ec2.send(new DescribeAccountAttributesCommand({ AttributeNames: ['no-such' as never] })))).code).toBe('InvalidParameterValue');
});

it('DescribeVpcs: the one default VPC covering every zone subnet, and its filters', async () => {
  const vpcs = (await ec2.send(new DescribeVpcsCommand({}))).Vpcs!;
  expect(vpcs).toHaveLength(1);
  expect(vpcs[0]).toMatchObject({ VpcId: vpcId, IsDefault: true, CidrBlock: '10.78.0.0/23', State: 'available', OwnerId: cloud.admin.accountId, InstanceTenancy: 'default' });
  const count = async (Name: string, v: string) => ((await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name, Values: [v] }] }))).Vpcs ?? []).length;
  expect(await count('is-default', 'true')).toBe(1);
  expect(await count('is-default', 'false')).toBe(0);
  expect(await count('vpc-id', vpcId)).toBe(1);
  expect(await count('cidr', '10.78.0.0/23')).toBe(1);
  expect(await count('cidr', '10.0.0.0/8')).toBe(0);
  expect(await count('state', 'available')).toBe(1);
  expect(await count('tag:Name', 'x')).toBe(0);
  expect((await ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }))).Vpcs).toHaveLength(1);
  expect((await failure(ec2.send(new DescribeVpcsCommand({ VpcIds: ['vpc-0123456789abcdef0'] })))).code).toBe('InvalidVpcID.NotFound');
  expect((await failure(ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'no-such', Values: ['x'] }] })))).code).toBe('InvalidParameterValue');
});

it('DescribeSubnets: one default subnet per zone, free addresses from real allocations, filters', async () => {
  const mine = (await subnets()).filter((s) => s.AvailabilityZone === z1.zone || s.AvailabilityZone === z2.zone);
  expect(mine).toHaveLength(2);
  const a = await subnetOf(z1.zone);
  expect(a).toMatchObject({ VpcId: vpcId, CidrBlock: '10.78.0.0/24', DefaultForAz: true, MapPublicIpOnLaunch: true, State: 'available', AvailableIpAddressCount: 253 });
  expect(a.SubnetId).toMatch(/^subnet-[0-9a-f]{17}$/);
  expect((await subnets([{ Name: 'subnet-id', Values: [a.SubnetId!] }])).map((s) => s.AvailabilityZone)).toEqual([z1.zone]);
  expect((await subnets([{ Name: 'cidr-block', Values: ['10.78.1.0/24'] }])).map((s) => s.AvailabilityZone)).toEqual([z2.zone]);
  expect(
    (
      await subnets([
        { Name: 'vpc-id', Values: [vpcId] },
        { Name: 'default-for-az', Values: ['true'] },
      ])
    ).length,
  ).toBe(2);
  expect((await subnets([{ Name: 'vpc-id', Values: ['vpc-0123456789abcdef0'] }])).length).toBe(0);
  expect((await subnets([], [a.SubnetId!])).length).toBe(1);
  expect((await failure(subnets([], ['subnet-0123456789abcdef0']))).code).toBe('InvalidSubnetID.NotFound');
  // a launch takes an address (and the node has one)
  const r = await ec2.send(new RunInstancesCommand({ ImageId: IMAGE, MinCount: 1, MaxCount: 1, SubnetId: a.SubnetId }));
  expect(r.Instances![0]!.Placement!.AvailabilityZone).toBe(z1.zone);
  expect((await subnetOf(z1.zone)).AvailableIpAddressCount).toBeLessThanOrEqual(252);
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: [r.Instances![0]!.InstanceId!] }));
});

it('security groups live in the default VPC: VpcId of it accepted, another refused, vpc-id shown and filtered', async () => {
  const g = await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'in-vpc', Description: 'd', VpcId: vpcId }));
  const plain = await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'no-vpc-given', Description: 'd' }));
  expect((await failure(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'other', Description: 'd', VpcId: 'vpc-0123456789abcdef0' })))).code).toBe('InvalidVpcID.NotFound');
  const shown = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [g.GroupId!, plain.GroupId!] }))).SecurityGroups!;
  expect(shown.map((s) => s.VpcId)).toEqual([vpcId, vpcId]);
  const inVpc = (await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }))).SecurityGroups!;
  expect(inVpc.map((s) => s.GroupName)).toEqual(expect.arrayContaining(['in-vpc', 'no-vpc-given', 'default']));
  expect((await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: ['vpc-0123456789abcdef0'] }] }))).SecurityGroups).toEqual([]);
});

it('RunInstances with NetworkInterface.1: subnet picks the zone, groups, no public address, a chosen private address; vpc/subnet filters', async () => {
  const b = await subnetOf(z2.zone);
  const g = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupNames: ['in-vpc'] }))).SecurityGroups![0]!;
  const r = await ec2.send(
    new RunInstancesCommand({
      ImageId: IMAGE,
      MinCount: 1,
      MaxCount: 1,
      NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: b.SubnetId, Groups: [g.GroupId!], AssociatePublicIpAddress: false, DeleteOnTermination: true, PrivateIpAddress: '10.78.1.50' }],
    }),
  );
  const i = r.Instances![0]!;
  expect(i.Placement!.AvailabilityZone).toBe(z2.zone);
  expect(i.PrivateIpAddress).toBe('10.78.1.50');
  expect(i.PublicIpAddress).toBeUndefined();
  expect(i.SubnetId).toBe(b.SubnetId);
  expect(i.VpcId).toBe(vpcId);
  expect(i.SecurityGroups!.map((s) => s.GroupId)).toEqual([g.GroupId]);
  const found = async (Name: string, v: string) =>
    (
      (
        await ec2.send(
          new DescribeInstancesCommand({
            Filters: [
              { Name, Values: [v] },
              { Name: 'instance-id', Values: [i.InstanceId!] },
            ],
          }),
        )
      ).Reservations ?? []
    ).length;
  expect(await found('subnet-id', b.SubnetId!)).toBe(1);
  expect(await found('vpc-id', vpcId)).toBe(1);
  expect(await found('subnet-id', (await subnetOf(z1.zone)).SubnetId!)).toBe(0);
  const again = (p: Record<string, unknown>) => failure(ec2.send(new RunInstancesCommand({ ImageId: IMAGE, MinCount: 1, MaxCount: 1, ...p })));
  const ni = (extra: Record<string, unknown>) => ({ NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: b.SubnetId, ...extra }] });
  expect((await again(ni({ PrivateIpAddress: '10.78.1.50' }))).code).toBe('InvalidIPAddress.InUse');
  expect((await again(ni({ PrivateIpAddress: '10.78.0.50' }))).code).toBe('InvalidParameterValue');
  expect((await again(ni({ PrivateIpAddress: '10.78.1.1' }))).code).toBe('InvalidParameterValue'); // the router
  expect((await again({ ...ni({ PrivateIpAddress: '10.78.1.60' }), MaxCount: 2 })).code).toBe('InvalidParameterCombination');
  expect((await again(ni({ DeleteOnTermination: false }))).code).toBe('UnsupportedOperation');
  expect((await again(ni({ DeviceIndex: 1 }))).code).toBe('UnsupportedOperation');
  expect((await again({ NetworkInterfaces: [{ DeviceIndex: 0 }, { DeviceIndex: 1 }] })).code).toBe('UnsupportedOperation');
  expect((await again({ ...ni({}), SubnetId: b.SubnetId })).code).toBe('InvalidParameterCombination');
  expect((await again({ ...ni({ Groups: [g.GroupId!] }), SecurityGroupIds: [g.GroupId!] })).code).toBe('InvalidParameterCombination');
  expect((await again({ SubnetId: 'subnet-0123456789abcdef0' })).code).toBe('InvalidSubnetID.NotFound');
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: [i.InstanceId!] }));
});

it('more VPCs or subnets: UnsupportedOperation naming the flat zone network, never a crash', async () => {
  const calls = [
    () => ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' })),
    () => ec2.send(new CreateDefaultVpcCommand({})),
    () => ec2.send(new DeleteVpcCommand({ VpcId: vpcId })),
    () => ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.78.2.0/24' })),
    () => ec2.send(new DeleteSubnetCommand({ SubnetId: 'subnet-0123456789abcdef0' })),
  ];
  for (const c of calls) {
    const e = await failure(c());
    expect(e.code).toBe('UnsupportedOperation');
    expect(e.message).toMatch(/flat network per availability zone/);
  }
});
