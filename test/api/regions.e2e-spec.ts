// DescribeRegions, DescribeAvailabilityZones (with a real CC + NC in this file's own zone) and
// DescribeInstanceTypes through the SDK.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeAvailabilityZonesCommand, DescribeInstanceTypesCommand, DescribeRegionsCommand, EC2Client, EC2ServiceException, paginateDescribeInstanceTypes } from '@aws-sdk/client-ec2';
import { startCloud, startZone, uniqueZone, type TestCloud, type TestZone } from '../support/cloud.js';
import { awsCliEnv } from '../support/cli-env.js';

let cloud: TestCloud;
let zone: TestZone;
let ec2: EC2Client;

beforeAll(async () => {
  zone = await startZone(uniqueZone('regions'));
  cloud = await startCloud();
  ec2 = cloud.ec2();
}, 30_000);
afterAll(async () => {
  await cloud?.close();
  await zone?.close();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EC2ServiceException);
    return (e as EC2ServiceException).name;
  }
  throw new Error('expected an error');
}

describe('DescribeRegions', () => {
  it('lists the one region with the public endpoint host', async () => {
    const r = await ec2.send(new DescribeRegionsCommand({ AllRegions: true }));
    expect(r.Regions).toEqual([{ RegionName: 'koala-1', Endpoint: new URL(cloud.endpoint).host, OptInStatus: 'opt-in-not-required' }]);
  });
  it('honours RegionName.N and filters', async () => {
    expect((await ec2.send(new DescribeRegionsCommand({ RegionNames: ['koala-1'] }))).Regions).toHaveLength(1);
    expect((await ec2.send(new DescribeRegionsCommand({ Filters: [{ Name: 'region-name', Values: ['koala-*'] }] }))).Regions).toHaveLength(1);
    expect((await ec2.send(new DescribeRegionsCommand({ Filters: [{ Name: 'endpoint', Values: ['nowhere'] }] }))).Regions).toEqual([]);
    expect(await codeOf(ec2.send(new DescribeRegionsCommand({ RegionNames: ['us-east-1'] })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new DescribeRegionsCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })))).toBe('InvalidParameterValue');
  });
});

describe('DescribeAvailabilityZones', () => {
  it('lists the zone of a running cluster controller as available', async () => {
    const r = await ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: [zone.zone] }));
    expect(r.AvailabilityZones).toHaveLength(1);
    expect(r.AvailabilityZones![0]).toMatchObject({ ZoneName: zone.zone, State: 'available', RegionName: 'koala-1', ZoneType: 'availability-zone' });
    expect(r.AvailabilityZones![0]!.ZoneId).toMatch(/^koala-1-az-[0-9a-f]{6}$/);
  });
  it('filters by zone-name, state, region-name and zone-id', async () => {
    const [z] = (await ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: [zone.zone] }))).AvailabilityZones!;
    const names = async (filters: { Name: string; Values: string[] }[]) =>
      ((await ec2.send(new DescribeAvailabilityZonesCommand({ Filters: filters }))).AvailabilityZones ?? []).map((x) => x.ZoneName);
    expect(await names([{ Name: 'zone-name', Values: [zone.zone] }])).toEqual([zone.zone]);
    expect(await names([{ Name: 'zone-id', Values: [z!.ZoneId!] }])).toEqual([zone.zone]);
    expect(
      await names([
        { Name: 'zone-name', Values: [zone.zone] },
        { Name: 'state', Values: ['available'] },
        { Name: 'region-name', Values: ['koala-1'] },
      ]),
    ).toEqual([zone.zone]);
    expect(
      await names([
        { Name: 'zone-name', Values: [zone.zone] },
        { Name: 'state', Values: ['impaired'] },
      ]),
    ).toEqual([]);
    expect(await names([{ Name: 'region-name', Values: ['elsewhere'] }])).toEqual([]);
  });
  it('answers InvalidParameterValue for an unknown zone', async () => {
    expect(await codeOf(ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: ['no-such-zone'] })))).toBe('InvalidParameterValue');
  });
  it('lists free/max capacity per instance type with the Eucalyptus `verbose` zone name', async () => {
    const r = await ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: ['verbose', zone.zone] }));
    const items = r.AvailabilityZones!;
    expect(items[0]).toMatchObject({ ZoneName: zone.zone, State: 'available' });
    const small = items.find((i) => i.ZoneName === '|- m1.small');
    expect(small).toBeDefined();
    // "0012 / 0024   1    256     2": free / max, cpu, ram MiB, disk GiB
    const m = /^(\d{4,}) \/ (\d{4,})\s+(\d+)\s+(\d+)\s+(\d+)$/.exec(small!.State!);
    expect(m).not.toBeNull();
    const [free, max, cpu, ram, disk] = m!.slice(1).map(Number);
    expect(max).toBeGreaterThan(0); // the in-process node reports this machine's cores/memory/disk
    expect(free).toBeLessThanOrEqual(max!);
    expect([cpu, ram, disk]).toEqual([1, 256, 2]);
    expect(items.map((i) => i.ZoneName)).toEqual(expect.arrayContaining(['|- vm types', '|- t1.micro', '|- m1.large', '|- c1.medium']));
  });
});

describe('DescribeInstanceTypes', () => {
  it('lists the built-in types in the AWS shape', async () => {
    const r = await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['m1.small'] }));
    expect(r.InstanceTypes).toHaveLength(1);
    expect(r.InstanceTypes![0]).toMatchObject({
      InstanceType: 'm1.small',
      VCpuInfo: { DefaultVCpus: 1 },
      MemoryInfo: { SizeInMiB: 256 },
      InstanceStorageSupported: true,
      InstanceStorageInfo: { TotalSizeInGB: 2 },
      ProcessorInfo: { SupportedArchitectures: ['x86_64'] },
    });
  });
  it('filters by vcpus and memory', async () => {
    const types = async (Filters: { Name: string; Values: string[] }[]) => ((await ec2.send(new DescribeInstanceTypesCommand({ Filters }))).InstanceTypes ?? []).map((t) => t.InstanceType).sort();
    expect(await types([{ Name: 'vcpu-info.default-vcpus', Values: ['2'] }])).toEqual(['c1.medium', 'm1.large', 'm1.xlarge']);
    expect(await types([{ Name: 'memory-info.size-in-mib', Values: ['512'] }])).toEqual(['c1.medium', 'm1.medium']);
    expect(
      await types([
        { Name: 'instance-type', Values: ['m1.*'] },
        { Name: 'vcpu-info.default-vcpus', Values: ['1'] },
      ]),
    ).toEqual(['m1.medium', 'm1.small']);
  });
  it('paginates with MaxResults/NextToken (SDK paginator)', async () => {
    const pages: string[][] = [];
    for await (const page of paginateDescribeInstanceTypes({ client: ec2, pageSize: 5 }, {})) pages.push((page.InstanceTypes ?? []).map((t) => t.InstanceType!));
    expect(pages.map((p) => p.length)).toEqual([5, 1]);
    expect(new Set(pages.flat()).size).toBe(6);
  });
  it('answers Eucalyptus clients: instanceTypeDetails in the msgs.eucalyptus.com namespace, Availability per zone', async () => {
    // What euca-describe-instance-types --show-capacity and libcloud's Eucalyptus driver send and read.
    const script = `
import sys, json, boto3, botocore.awsrequest, botocore.auth, urllib.request, xml.etree.ElementTree as ET
def ask(version, extra):
    body = 'Action=DescribeInstanceTypes&Version=' + version + extra
    req = botocore.awsrequest.AWSRequest(method='POST', url=sys.argv[1], data=body, headers={'Content-Type': 'application/x-www-form-urlencoded'})
    botocore.auth.SigV4Auth(boto3.Session().get_credentials(), 'ec2', 'koala-1').add_auth(req)
    r = urllib.request.Request(sys.argv[1], data=body.encode(), headers=dict(req.headers.items()), method='POST')
    return ET.fromstring(urllib.request.urlopen(r).read())
ns = 'http://msgs.eucalyptus.com/3.3.0'
root = ask('3.3.0', '&Availability=true&InstanceType.1=m1.small')
out = {'aws': [c.tag for c in root if c.tag.endswith('instanceTypeSet')]}
out['types'] = [[it.findtext('{%s}name' % ns), it.findtext('{%s}cpu' % ns), it.findtext('{%s}memory' % ns), it.findtext('{%s}disk' % ns),
                 {a.findtext('{%s}zoneName' % ns): [int(a.findtext('{%s}available' % ns)), int(a.findtext('{%s}max' % ns))] for a in it.findall('{%s}availability/{%s}item' % (ns, ns))}]
                for it in root.findall('{%s}instanceTypeDetails/{%s}item' % (ns, ns))]
plain = ask('2014-10-01', '')
out['plain'] = [[c.tag for c in it] for it in plain.find('{http://msgs.eucalyptus.com/4.4.5}instanceTypeDetails')][:1]
print(json.dumps(out))
`;
    const { stdout } = await promisify(execFile)('python3', ['-c', script, cloud.endpoint], { env: awsCliEnv(cloud.admin), timeout: 60_000 });
    const r = JSON.parse(stdout);
    expect(r.aws).toEqual([]); // an old version: no AWS list, boto 2 would take its items for types
    expect(r.types).toHaveLength(1);
    const [name, cpu, memory, disk, zones] = r.types[0];
    expect([name, cpu, memory, disk]).toEqual(['m1.small', '1', '256', '2']);
    const [available, max] = zones[zone.zone];
    expect(max).toBeGreaterThan(0);
    expect(available).toBeLessThanOrEqual(max);
    const e = '{http://msgs.eucalyptus.com/4.4.5}';
    expect(r.plain).toEqual([[`${e}name`, `${e}cpu`, `${e}memory`, `${e}disk`]]);
  });
  it('refuses unknown types and bad MaxResults', async () => {
    expect(await codeOf(ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['p9.huge' as never] })))).toBe('InvalidInstanceType');
    expect(await codeOf(ec2.send(new DescribeInstanceTypesCommand({ MaxResults: 1 })))).toBe('InvalidParameterValue');
  });
  it('replaces the table with KOALA_INSTANCE_TYPES_FILE, validated at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'koala-types-'));
    try {
      const good = join(dir, 'types.json');
      writeFileSync(good, JSON.stringify([{ name: 'k1.tiny', vcpus: 1, memoryMiB: 64, rootDiskGiB: 1 }]));
      const other = await startCloud({ env: { KOALA_INSTANCE_TYPES_FILE: good } });
      try {
        const r = await other.ec2().send(new DescribeInstanceTypesCommand({}));
        expect(r.InstanceTypes!.map((t) => [t.InstanceType, t.MemoryInfo?.SizeInMiB])).toEqual([['k1.tiny', 64]]);
      } finally {
        await other.close();
      }
      const bad = join(dir, 'bad.json');
      writeFileSync(bad, JSON.stringify([{ name: 'k1.tiny', vcpus: 0, memoryMiB: 64, rootDiskGiB: 1 }]));
      await expect(startCloud({ env: { KOALA_INSTANCE_TYPES_FILE: bad } })).rejects.toThrow(/KOALA_INSTANCE_TYPES_FILE .*vcpus/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
