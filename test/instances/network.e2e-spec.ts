/**
 * Guest networking through the EC2 API with the real CLC (PostgreSQL, NATS) and a fake CC/NC
 * (fake-zone.ts): private/public addresses and MACs at launch (also under concurrency), their
 * release at terminate, DescribeInstances' network shapes and filters, metadata options, and the
 * zone's desired network state as the NCs receive it.
 */
import { jest } from '@jest/globals';
import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  AuthorizeSecurityGroupIngressCommand,
  DescribeAddressesCommand,
  DisassociateAddressCommand,
  ReleaseAddressCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  ModifyInstanceMetadataOptionsCommand,
  RevokeSecurityGroupIngressCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  waitUntilInstanceTerminated,
  type EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { jetstreamManager } from '@nats-io/jetstream';
import { randomBytes } from 'node:crypto';
import { Ec2Error } from '@koala/ec2-query';
import { EVENTS_STREAM, networkState, Subjects, ZoneNetworkState } from '@koala/contracts';
import { NatsBus } from '@koala/messaging';
import { IMAGE_LAUNCH, type ImageLaunchPort } from '../../apps/cloud-controller/src/images/image-launch.port.js';
import { NetworkRepository } from '../../apps/cloud-controller/src/network/network.repository.js';
import { NetworkService } from '../../apps/cloud-controller/src/network/network.service.js';
import { stateDigest } from '../../apps/cloud-controller/src/network/network-state.js';
import { startCloud, uniqueZone, type TestCloud } from '../support/cloud.js';
import { codeOf, until } from '../support/wait.js';
import { FakeZone } from './fake-zone.js';

jest.setTimeout(60_000); // several waits for terminated instances and published states

const IMAGE = 'emi-0123456789abcdef0';
const consumer = `clc-test-${randomBytes(4).toString('hex')}`;
// 10.77.0.0/28: .0 network, .1 router, .15 broadcast; .2-.14 for the node and instances.
const SUBNET = '10.77.0.0/28';
let cloud: TestCloud;
let zone: FakeZone;
let ec2: EC2Client;
let bus: NatsBus;
const states: ZoneNetworkState[] = [];

const run = (extra: Partial<ConstructorParameters<typeof RunInstancesCommand>[0]> = {}) =>
  ec2.send(new RunInstancesCommand({ ImageId: IMAGE, MinCount: 1, MaxCount: 1, Placement: { AvailabilityZone: zone.zone }, ...extra }));
const describe1 = async (id: string): Promise<Instance> => (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
const live = async () =>
  ((await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running'] }] }))).Reservations ?? []).flatMap((r) => r.Instances ?? []);
const lastState = () => states.reduce<ZoneNetworkState | undefined>((a, s) => (!a || s.version >= a.version ? s : a), undefined);
const ipInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);

beforeAll(async () => {
  zone = await FakeZone.start(uniqueZone('net'));
  zone.capacity = 100;
  cloud = await startCloud({
    env: {
      KOALA_EVENTS_CONSUMER: consumer,
      KOALA_ZONE_SUBNETS: `${zone.zone}=${SUBNET}`,
      KOALA_PUBLIC_IP_RANGE: '203.0.113.0/28',
      KOALA_NETWORK_REPUBLISH_MS: '60000',
      KOALA_MAX_INSTANCES_PER_RUN: '20',
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
  bus = await NatsBus.connect({ url: 'nats://127.0.0.1:4222', name: `test-net-${zone.zone}` });
  bus.subscribe(Subjects.zoneNetworkState(zone.zone), ZoneNetworkState, (s) => void states.push(s));
  await bus.flush();
}, 60_000);

afterAll(async () => {
  await bus?.close();
  await cloud?.close();
  await zone?.close();
  const b = await NatsBus.connect({ url: 'nats://127.0.0.1:4222', name: 'cleanup' });
  const jsm = await jetstreamManager(b.connection);
  await jsm.consumers.delete(EVENTS_STREAM, consumer).catch(() => undefined);
  await jsm.consumers.delete(EVENTS_STREAM, `${consumer}-2`).catch(() => undefined);
  await b.close();
});

let first: Instance;

it('launch: private IP from the zone subnet, MAC from the id, public IP from the pool, names, interface shape, the spec sent to the zone', async () => {
  const r = await run();
  first = r.Instances![0]!;
  const id = first.InstanceId!;
  const ip = first.PrivateIpAddress!;
  expect(ip).toMatch(/^10\.77\.0\.(\d+)$/);
  expect(ipInt(ip) - ipInt('10.77.0.0')).toBeGreaterThanOrEqual(2); // never network or router
  expect(first.PublicIpAddress).toMatch(/^203\.0\.113\.([1-9]|1[0-4])$/);
  expect(first.PrivateDnsName).toBe(`ip-${ip.replace(/\./g, '-')}.${cloud.region}.compute.internal`);
  expect(first.PublicDnsName).toBe(`ec2-${first.PublicIpAddress!.replace(/\./g, '-')}.${cloud.region}.compute.koala`);
  const mac = `02:${id.slice(-10).match(/../g)!.join(':')}`;
  const d = await describe1(id);
  expect(d.SubnetId).toMatch(/^subnet-[0-9a-f]{17}$/);
  expect(d.VpcId).toMatch(/^vpc-[0-9a-f]{17}$/);
  expect(d.SourceDestCheck).toBe(true);
  expect(d.NetworkInterfaces).toHaveLength(1);
  expect(d.NetworkInterfaces![0]).toMatchObject({
    NetworkInterfaceId: expect.stringMatching(/^eni-[0-9a-f]{17}$/),
    SubnetId: d.SubnetId,
    VpcId: d.VpcId,
    Status: 'in-use',
    MacAddress: mac,
    PrivateIpAddress: ip,
    PrivateDnsName: first.PrivateDnsName,
    SourceDestCheck: true,
    OwnerId: cloud.admin.accountId,
    Groups: [{ GroupId: first.SecurityGroups![0]!.GroupId, GroupName: 'default' }],
    Attachment: { AttachmentId: expect.stringMatching(/^eni-attach-[0-9a-f]{17}$/), DeviceIndex: 0, Status: 'attached', DeleteOnTermination: true, NetworkCardIndex: 0, AttachTime: expect.any(Date) },
    Association: { PublicIp: first.PublicIpAddress, PublicDnsName: first.PublicDnsName, IpOwnerId: 'amazon' },
    PrivateIpAddresses: [
      { PrivateIpAddress: ip, PrivateDnsName: first.PrivateDnsName, Primary: true, Association: { PublicIp: first.PublicIpAddress, PublicDnsName: first.PublicDnsName, IpOwnerId: 'amazon' } },
    ],
  });
  expect(d.MetadataOptions).toEqual({ State: 'applied', HttpTokens: 'optional', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled', HttpProtocolIpv6: 'disabled', InstanceMetadataTags: 'disabled' });
  expect(zone.specs.get(id)).toMatchObject({
    network: { mac, privateIp: ip, subnet: SUBNET, privateDnsName: first.PrivateDnsName, publicIp: first.PublicIpAddress, groups: [{ groupId: first.SecurityGroups![0]!.GroupId, name: 'default' }] },
    metadataOptions: { httpTokens: 'optional', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' },
  });
});

it('AssociatePublicIpAddress=false and MetadataOptions at launch; bad values are EC2 errors and launch nothing', async () => {
  const before = (await live()).length;
  expect(await codeOf(run({ MetadataOptions: { HttpTokens: 'sometimes' as never } }))).toBe('InvalidParameterValue');
  expect(await codeOf(run({ MetadataOptions: { HttpPutResponseHopLimit: 65 } }))).toBe('InvalidParameterValue');
  expect(await codeOf(run({ MetadataOptions: { HttpEndpoint: 'on' as never } }))).toBe('InvalidParameterValue');
  expect(await codeOf(run({ NetworkInterfaces: [{ DeviceIndex: 0, AssociatePublicIpAddress: 'maybe' as never }] }))).toBe('InvalidParameterValue');
  expect(await codeOf(run({ SubnetId: 'subnet-00000000000000000' }))).toBe('InvalidSubnetID.NotFound');
  expect(await codeOf(run({ SubnetId: first.SubnetId, Placement: { AvailabilityZone: 'elsewhere' } }))).toBe('InvalidParameterValue');
  expect((await live()).length).toBe(before);
  const r = await run({
    Placement: undefined,
    SubnetId: first.SubnetId,
    NetworkInterfaces: [{ DeviceIndex: 0, AssociatePublicIpAddress: false }],
    MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 2, HttpEndpoint: 'enabled' },
  });
  const i = r.Instances![0]!;
  expect(i.PrivateIpAddress).toMatch(/^10\.77\.0\./);
  expect(i.PublicIpAddress).toBeUndefined();
  expect(i.PublicDnsName).toBe('');
  expect(i.NetworkInterfaces![0]!.Association).toBeUndefined();
  expect(i.MetadataOptions).toMatchObject({ HttpTokens: 'required', HttpPutResponseHopLimit: 2, HttpEndpoint: 'enabled' });
  expect(zone.specs.get(i.InstanceId!)!.network!.publicIp).toBeUndefined();
  expect(zone.specs.get(i.InstanceId!)!.metadataOptions).toEqual({ httpTokens: 'required', httpPutResponseHopLimit: 2, httpEndpoint: 'enabled' });
});

it('concurrent launches never share a private IP, a MAC or a public IP; a full subnet is InsufficientFreeAddressesInSubnet with nothing half-written', async () => {
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => run({ MinCount: 2, MaxCount: 2 })));
  const launched = results.flatMap((r) => (r.status === 'fulfilled' ? r.value.Instances! : []));
  expect(results.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as Error).name)).toEqual([]);
  const all = await live();
  expect(all).toHaveLength(12);
  const ips = all.map((i) => i.PrivateIpAddress!);
  expect(new Set(ips).size).toBe(12);
  expect(new Set(all.map((i) => i.NetworkInterfaces![0]!.MacAddress)).size).toBe(12);
  const publics = all.map((i) => i.PublicIpAddress).filter(Boolean);
  expect(publics).toHaveLength(11);
  expect(new Set(publics).size).toBe(11);
  expect(launched).toHaveLength(10);
  // 13 usable addresses, 12 instances: the node's address (given when the zone's state was first built) is the 13th.
  const state = await until(() => lastState()?.nodes.length === 1 && lastState(), 10_000, 'a state with the node');
  expect(state.nodes).toEqual([{ node: zone.node, address: expect.stringMatching(/^10\.77\.0\./) }]);
  expect(ips).not.toContain(state.nodes[0]!.address);
  const err = await run().catch((e) => e);
  expect(err.name).toBe('InsufficientFreeAddressesInSubnet');
  expect(err.$metadata.httpStatusCode).toBe(400);
  expect(await live()).toHaveLength(12);
});

it('terminate releases the private and public addresses; the next launch reuses them', async () => {
  const id = first.InstanceId!;
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
  await waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [id] });
  const gone = await describe1(id);
  expect(gone.PrivateIpAddress).toBeUndefined();
  expect(gone.PublicIpAddress).toBeUndefined();
  expect(gone.NetworkInterfaces).toEqual([]);
  expect(gone.PrivateDnsName).toBe('');
  const again = (await run()).Instances![0]!;
  expect(again.PrivateIpAddress).toBe(first.PrivateIpAddress);
  expect(again.PublicIpAddress).toBe(first.PublicIpAddress);
  first = again;
});

it('filters on addresses, names and MACs', async () => {
  const f = async (Name: string, Values: string[]) =>
    ((await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name, Values }] }))).Reservations ?? []).flatMap((r) => r.Instances!.map((i) => i.InstanceId));
  const id = first.InstanceId!;
  expect(await f('private-ip-address', [first.PrivateIpAddress!])).toEqual([id]);
  expect(await f('network-interface.addresses.private-ip-address', [first.PrivateIpAddress!])).toEqual([id]);
  expect(await f('ip-address', [first.PublicIpAddress!])).toEqual([id]);
  expect(await f('association.public-ip', [first.PublicIpAddress!])).toEqual([id]);
  expect(await f('private-dns-name', [first.PrivateDnsName!])).toEqual([id]);
  expect(await f('dns-name', [first.PublicDnsName!])).toEqual([id]);
  expect(await f('network-interface.mac-address', [first.NetworkInterfaces![0]!.MacAddress!])).toEqual([id]);
  expect(await f('private-ip-address', ['10.77.0.1'])).toEqual([]);
  expect((await f('subnet-id', [first.SubnetId!])).length).toBeGreaterThanOrEqual(12);
  expect(await f('metadata-options.http-tokens', ['required'])).toHaveLength(1);
});

it('the zone state: published after changes with the instances, answered on request; a revoked rule gives a newer version without it', async () => {
  const ids = (await live()).map((i) => i.InstanceId!).sort();
  const s = await until(
    () => {
      const l = lastState();
      return l && l.interfaces.map((i) => i.instanceId).join() === ids.join() && l;
    },
    10_000,
    'a state with every live instance',
  );
  expect(s.subnet).toBe(SUBNET);
  expect(s.dnsSuffix).toBe(`${cloud.region}.compute.internal`);
  const mine = s.interfaces.find((i) => i.instanceId === first.InstanceId)!;
  expect(mine).toEqual({
    instanceId: first.InstanceId,
    // the interface id DescribeInstances shows is the one the node's metadata service serves
    interfaceId: first.NetworkInterfaces![0]!.NetworkInterfaceId,
    node: zone.node,
    mac: first.NetworkInterfaces![0]!.MacAddress,
    privateIp: first.PrivateIpAddress,
    publicIp: first.PublicIpAddress,
    groupIds: [first.SecurityGroups![0]!.GroupId],
    metadataOptions: { httpTokens: 'optional', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' },
  });
  const groupId = first.SecurityGroups![0]!.GroupId!;
  expect(s.groups).toEqual([
    {
      groupId,
      name: 'default',
      ingress: [{ protocol: 'all', fromPort: -1, toPort: -1, cidrs: [], groupIds: [groupId] }],
      egress: [{ protocol: 'all', fromPort: -1, toPort: -1, cidrs: ['0.0.0.0/0'], groupIds: [] }],
    },
  ]);
  const asked = await bus.request(networkState(), { zone: zone.zone, node: zone.node }, { timeoutMs: 5000 });
  expect(asked.version).toBe(s.version); // nothing changed since: same version, same content
  expect(asked.interfaces).toEqual(s.interfaces);

  const ssh = { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '192.0.2.0/24' }] };
  await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: [ssh] }));
  const withSsh = await until(
    () => {
      const l = lastState();
      return l && l.version > s.version && l.groups[0]!.ingress.some((r) => r.fromPort === 22) && l;
    },
    10_000,
    'a state with the ssh rule',
  );
  expect(withSsh.groups[0]!.ingress).toContainEqual({ protocol: 'tcp', fromPort: 22, toPort: 22, cidrs: ['192.0.2.0/24'], groupIds: [] });
  await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: [ssh] }));
  const without = await until(
    () => {
      const l = lastState();
      return l && l.version > withSsh.version && l;
    },
    10_000,
    'a newer state after the revoke',
  );
  expect(without.groups[0]!.ingress.some((r) => r.fromPort === 22)).toBe(false);
  expect((await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] }))).SecurityGroups![0]!.IpPermissions).toHaveLength(1);
  // A zone this cloud does not know gets no answer from it.
  expect(await codeOf(bus.request(networkState(), { zone: uniqueZone('none'), node: 'n' }, { timeoutMs: 500 }))).not.toBe('no error');
});

it('ModifyInstanceMetadataOptions: EC2 answer, DescribeInstances and the zone state follow; errors', async () => {
  const id = first.InstanceId!;
  const r = await ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: id, HttpTokens: 'required', HttpPutResponseHopLimit: 3 }));
  expect(r.InstanceId).toBe(id);
  expect(r.InstanceMetadataOptions).toEqual({
    State: 'pending',
    HttpTokens: 'required',
    HttpPutResponseHopLimit: 3,
    HttpEndpoint: 'enabled',
    HttpProtocolIpv6: 'disabled',
    InstanceMetadataTags: 'disabled',
  });
  expect((await describe1(id)).MetadataOptions).toMatchObject({ State: 'applied', HttpTokens: 'required', HttpPutResponseHopLimit: 3, HttpEndpoint: 'enabled' });
  await until(() => lastState()?.interfaces.find((i) => i.instanceId === id)?.metadataOptions?.httpTokens === 'required', 10_000, 'the state with the new options');
  expect(lastState()!.interfaces.find((i) => i.instanceId === id)!.metadataOptions).toEqual({ httpTokens: 'required', httpPutResponseHopLimit: 3, httpEndpoint: 'enabled' });
  expect(await codeOf(ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: id, HttpTokens: 'always' as never })))).toBe('InvalidParameterValue');
  expect(await codeOf(ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: id, HttpPutResponseHopLimit: 0 })))).toBe('InvalidParameterValue');
  expect(await codeOf(ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: id, HttpEndpoint: 'disabled', DryRun: true })))).toBe('DryRunOperation');
  expect(await codeOf(ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: 'i-00000000000000000' })))).toBe('InvalidInstanceID.NotFound');
  expect(await codeOf(ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: 'i-zz' })))).toBe('InvalidInstanceID.Malformed');
  const alice = cloud.ec2(await cloud.createAccount('net-alice'));
  expect(await codeOf(alice.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: id, HttpTokens: 'optional' })))).toBe('InvalidInstanceID.NotFound');
  expect((await describe1(id)).MetadataOptions!.HttpEndpoint).toBe('enabled');
});

it('elastic addresses: associate (the launch address goes), reassociation, disassociate, release per domain, terminate disassociates; the state follows', async () => {
  const rest = (await live()).filter((i) => i.InstanceId !== first.InstanceId);
  const keep = rest.find((i) => i.PublicIpAddress)!.InstanceId!; // one launched with a public address
  const others = rest.map((i) => i.InstanceId!).filter((id) => id !== keep);
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: others }));
  await waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: others });
  const second = await describe1(keep);
  const a = first.InstanceId!;
  const b = second.InstanceId!;
  const vpc = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
  const std = await ec2.send(new AllocateAddressCommand({}));
  expect([vpc.Domain, std.Domain]).toEqual(['vpc', 'standard']);
  const ipOf = async (id: string) => (await describe1(id)).PublicIpAddress;
  const addr = async (ip: string) => (await ec2.send(new DescribeAddressesCommand({ PublicIps: [ip] }))).Addresses![0]!;
  const stateIp = (id: string) => lastState()?.interfaces.find((i) => i.instanceId === id)?.publicIp;

  // Errors first: nothing changes.
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId })))).toBe('MissingParameter');
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ InstanceId: a })))).toBe('MissingParameter');
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, InstanceId: 'i-00000000000000000' })))).toBe('InvalidInstanceID.NotFound');
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ AllocationId: 'eipalloc-00000000000000000', InstanceId: a })))).toBe('InvalidAllocationID.NotFound');
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ PublicIp: '203.0.113.200', InstanceId: a })))).toBe('InvalidAddress.NotFound');
  // NUL and over-long values stop at the endpoint's edge check; the rest reach the service.
  const hostiles: Array<[string, string]> = [
    ['203.0.113.1\u0000', 'InvalidParameterValue'],
    ['x'.repeat(5000), 'InvalidParameterValue'],
    ['２０３.0.113.1', 'InvalidAddress.NotFound'],
    ["1' OR '1'='1", 'InvalidAddress.NotFound'],
  ];
  for (const [hostile, code] of hostiles) {
    expect(await codeOf(ec2.send(new AssociateAddressCommand({ PublicIp: hostile, InstanceId: a })))).toBe(code);
    expect(await codeOf(ec2.send(new DisassociateAddressCommand({ PublicIp: hostile })))).toBe(code);
    expect(await codeOf(ec2.send(new ReleaseAddressCommand({ PublicIp: hostile })))).toBe(code);
  }
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, InstanceId: 'i-\u0000' })))).toBe('InvalidParameterValue');
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, NetworkInterfaceId: 'eni-00000000000000000' })))).toBe('InvalidNetworkInterfaceID.NotFound');
  expect(await codeOf(ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: a, HttpTokens: 'required\u0000' as never })))).toBe('InvalidParameterValue');
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, InstanceId: a, PrivateIpAddress: '10.77.0.1' })))).toBe('InvalidParameterValue');
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, InstanceId: a, DryRun: true })))).toBe('DryRunOperation');
  const alice = cloud.ec2(await cloud.createAccount('net-addr'));
  const hers = await alice.send(new AllocateAddressCommand({ Domain: 'vpc' }));
  expect(await codeOf(alice.send(new AssociateAddressCommand({ AllocationId: hers.AllocationId, InstanceId: a })))).toBe('InvalidInstanceID.NotFound');
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ AllocationId: hers.AllocationId, InstanceId: a })))).toBe('InvalidInstanceID.NotFound');
  expect(await ipOf(a)).toBe(first.PublicIpAddress);

  // Associate: the instance's launch-time address is released, the elastic one takes its place.
  const launchIp = first.PublicIpAddress!;
  const r1 = await ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, InstanceId: a }));
  expect(r1.AssociationId).toMatch(/^eipassoc-[0-9a-f]{17}$/);
  const da = await describe1(a);
  expect(da.PublicIpAddress).toBe(vpc.PublicIp);
  expect(da.NetworkInterfaces![0]!.Association).toMatchObject({ PublicIp: vpc.PublicIp, IpOwnerId: cloud.admin.accountId });
  expect(await addr(vpc.PublicIp!)).toMatchObject({ InstanceId: a, AssociationId: r1.AssociationId, PrivateIpAddress: first.PrivateIpAddress, Domain: 'vpc' });
  const f = async (Name: string, Values: string[]) => (await ec2.send(new DescribeAddressesCommand({ Filters: [{ Name, Values }] }))).Addresses!.map((x) => x.PublicIp);
  expect(await f('instance-id', [a])).toEqual([vpc.PublicIp]);
  expect(await f('association-id', [r1.AssociationId!])).toEqual([vpc.PublicIp]);
  expect(await f('private-ip-address', [first.PrivateIpAddress!])).toEqual([vpc.PublicIp]);
  expect(await f('domain', ['standard'])).toEqual([std.PublicIp]);
  expect(await f('network-interface-id', [da.NetworkInterfaces![0]!.NetworkInterfaceId!])).toEqual([vpc.PublicIp]);
  expect(await addr(vpc.PublicIp!)).toMatchObject({ NetworkInterfaceId: da.NetworkInterfaces![0]!.NetworkInterfaceId, NetworkInterfaceOwnerId: cloud.admin.accountId });
  expect(await f('public-ip', [launchIp])).toEqual([]); // launch-time addresses are never listed
  await until(() => stateIp(a) === vpc.PublicIp, 10_000, 'the state with the elastic address');
  // Same instance again: nothing to do, same association.
  expect((await ec2.send(new AssociateAddressCommand({ PublicIp: vpc.PublicIp, InstanceId: a }))).AssociationId).toBe(r1.AssociationId);
  expect((await ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, NetworkInterfaceId: da.NetworkInterfaces![0]!.NetworkInterfaceId }))).AssociationId).toBe(r1.AssociationId);

  // Reassociation needs AllowReassociation; the old instance (launched with a public address) gets a new launch-time one, as in EC2.
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, InstanceId: b })))).toBe('Resource.AlreadyAssociated');
  const r2 = await ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, InstanceId: b, AllowReassociation: true }));
  expect(r2.AssociationId).not.toBe(r1.AssociationId);
  const newA = await ipOf(a);
  expect(newA).toMatch(/^203\.0\.113\.\d+$/);
  expect([vpc.PublicIp, std.PublicIp, hers.PublicIp]).not.toContain(newA);
  expect((await describe1(a)).NetworkInterfaces![0]!.Association!.IpOwnerId).toBe('amazon');
  expect(await ipOf(b)).toBe(vpc.PublicIp);
  await until(() => stateIp(b) === vpc.PublicIp && stateIp(a) === newA, 10_000, 'the state after reassociation');

  // A vpc address in use cannot be released; disassociate by association id.
  expect(await codeOf(ec2.send(new ReleaseAddressCommand({ AllocationId: vpc.AllocationId })))).toBe('InvalidIPAddress.InUse');
  expect(await codeOf(ec2.send(new DisassociateAddressCommand({ AssociationId: 'eipassoc-00000000000000000' })))).toBe('InvalidAssociationID.NotFound');
  expect(await codeOf(ec2.send(new DisassociateAddressCommand({ AssociationId: 'eipassoc-x' })))).toBe('InvalidAssociationID.Malformed');
  expect(await codeOf(ec2.send(new DisassociateAddressCommand({})))).toBe('MissingParameter');
  await ec2.send(new DisassociateAddressCommand({ AssociationId: r2.AssociationId }));
  const newB = await ipOf(b);
  expect(newB).toMatch(/^203\.0\.113\.\d+$/);
  expect([vpc.PublicIp, newA]).not.toContain(newB);
  expect((await addr(vpc.PublicIp!)).InstanceId).toBeUndefined();
  await until(() => stateIp(b) === newB, 10_000, 'the state after disassociation');
  // An instance launched without a public address is left without one.
  const bare = (await run({ NetworkInterfaces: [{ DeviceIndex: 0, AssociatePublicIpAddress: false }] })).Instances![0]!.InstanceId!;
  await ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, InstanceId: bare }));
  expect(await ipOf(bare)).toBe(vpc.PublicIp);
  await ec2.send(new DisassociateAddressCommand({ PublicIp: vpc.PublicIp }));
  expect(await ipOf(bare)).toBeUndefined();
  await ec2.send(new DisassociateAddressCommand({ PublicIp: vpc.PublicIp })); // not associated: nothing to do
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: [bare] }));

  // A standard address is disassociated by its release (EC2-Classic).
  await ec2.send(new AssociateAddressCommand({ PublicIp: std.PublicIp, InstanceId: a }));
  expect(await ipOf(a)).toBe(std.PublicIp);
  await ec2.send(new ReleaseAddressCommand({ PublicIp: std.PublicIp }));
  expect(await ipOf(a)).toMatch(/^203\.0\.113\.\d+$/);
  expect(await ipOf(a)).not.toBe(std.PublicIp);
  expect(await codeOf(ec2.send(new DescribeAddressesCommand({ PublicIps: [std.PublicIp!] })))).toBe('InvalidAddress.NotFound');

  // Terminating the instance disassociates its address.
  await ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, InstanceId: b }));
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: [b] }));
  await waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [b] });
  expect(await addr(vpc.PublicIp!)).toMatchObject({ AllocationId: vpc.AllocationId });
  expect((await addr(vpc.PublicIp!)).InstanceId).toBeUndefined();
  expect(await codeOf(ec2.send(new AssociateAddressCommand({ AllocationId: vpc.AllocationId, InstanceId: b })))).toBe('IncorrectInstanceState');
  await ec2.send(new ReleaseAddressCommand({ AllocationId: vpc.AllocationId }));
});

it('versions live in the database: a restarted CLC (a new service on the same database) goes on from the last one', async () => {
  const restarted = new NetworkService(new NetworkRepository(cloud.dataSource), cloud.config, { now: () => new Date() }, { nodes: async () => [zone.node] });
  const current = await cloud.app.get(NetworkService).state(zone.zone);
  const again = await restarted.state(zone.zone);
  expect(again.version).toBe(current.version);
  expect(stateDigest(again)).toBe(stateDigest(current));
  const id = (await live())[0]!.InstanceId!;
  await ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: id, HttpEndpoint: 'disabled' }));
  // Whoever builds first after the change (the running CLC's publisher or the restarted one) bumps it once.
  const [x, y] = await Promise.all([restarted.state(zone.zone), cloud.app.get(NetworkService).state(zone.zone)]);
  expect(x.version).toBe(current.version + 1);
  expect(y.version).toBe(current.version + 1);
  expect(x.interfaces.find((i) => i.instanceId === id)!.metadataOptions!.httpEndpoint).toBe('disabled');
  await until(() => lastState()!.version === current.version + 1, 10_000, 'the published state');
  // A node that asks is seen: it gets an address from the subnet; a name no node can have is ignored.
  const n2 = `${zone.zone}-n2`;
  const asked = await bus.request(networkState(), { zone: zone.zone, node: n2 }, { timeoutMs: 5000 });
  expect(asked.version).toBe(current.version + 2);
  expect(asked.nodes.map((n) => n.node)).toEqual([zone.node, n2]);
  expect(new Set(asked.nodes.map((n) => n.address)).size).toBe(2);
  expect(asked.interfaces.map((i) => i.privateIp)).not.toContain(asked.nodes[1]!.address);
  const bad = await bus.request(networkState(), { zone: zone.zone, node: 'X'.repeat(500) }, { timeoutMs: 5000 });
  expect(bad.version).toBe(asked.version);
});

it('a full public pool fails the launch with InsufficientAddressCapacity and keeps nothing; without a public address it launches', async () => {
  const z2 = await FakeZone.start(uniqueZone('net2'));
  z2.capacity = 100;
  const small = await startCloud({ env: { KOALA_EVENTS_CONSUMER: `${consumer}-2`, KOALA_PUBLIC_IP_RANGE: '203.0.113.0/30' } }); // two addresses
  try {
    jest.spyOn(small.app.get<ImageLaunchPort>(IMAGE_LAUNCH), 'launchSpec').mockImplementation(async (_caller, imageId) => ({
      spec: { virtualizationType: 'hvm', root: { imageId, sha256: 'a'.repeat(64), sizeBytes: 1024, format: 'qcow2', url: 'http://127.0.0.1:1/blob' } },
      architecture: 'x86_64',
      rootDeviceName: '/dev/vda',
    }));
    const c = small.ec2();
    const go = (n: number) => c.send(new RunInstancesCommand({ ImageId: IMAGE, MinCount: n, MaxCount: n, Placement: { AvailabilityZone: z2.zone } }));
    const two = await go(2);
    expect(two.Instances!.map((i) => i.PublicIpAddress).sort()).toEqual(['203.0.113.1', '203.0.113.2']);
    expect(two.Instances![0]!.PrivateIpAddress).toBe('172.31.0.2'); // the default subnet, first address after the router
    const err = await go(1).catch((e) => e);
    expect(err.name).toBe('InsufficientAddressCapacity');
    const count = async () => ((await c.send(new DescribeInstancesCommand({}))).Reservations ?? []).flatMap((r) => r.Instances!).length;
    expect(await count()).toBe(2);
    expect(await codeOf(c.send(new AllocateAddressCommand({})))).toBe('InsufficientAddressCapacity');
    const none = await c.send(
      new RunInstancesCommand({ ImageId: IMAGE, MinCount: 1, MaxCount: 1, Placement: { AvailabilityZone: z2.zone }, NetworkInterfaces: [{ DeviceIndex: 0, AssociatePublicIpAddress: false }] }),
    );
    expect(none.Instances![0]!.PublicIpAddress).toBeUndefined();
    expect(none.Instances![0]!.PrivateIpAddress).toMatch(/^172\.31\.0\.\d+$/);
    expect(two.Instances!.map((i) => i.PrivateIpAddress)).not.toContain(none.Instances![0]!.PrivateIpAddress);
  } finally {
    await small.close();
    await z2.close();
  }
});
