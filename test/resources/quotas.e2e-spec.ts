/**
 * Per-account quotas through the EC2 API with the real CLC (PostgreSQL, NATS), a fake CC/NC
 * (test/instances/fake-zone.ts) and a fake SC (test/volumes/fake-storage.ts) for one unique zone.
 * Overrides go through the operator's admin command (`koala quota set`), as an operator sets them.
 */
import { jest } from '@jest/globals';
import {
  AllocateAddressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateKeyPairCommand,
  CreateSecurityGroupCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  RegisterImageCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  waitUntilVolumeAvailable,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { jetstreamManager } from '@nats-io/jetstream';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ec2Error } from '@koala/ec2-query';
import { EVENTS_STREAM } from '@koala/contracts';
import { NatsBus } from '@koala/messaging';
import { runAdminCommand } from '../../apps/cloud-controller/src/admin/admin-commands.js';
import { IMAGE_LAUNCH, type ImageLaunchPort } from '../../apps/cloud-controller/src/images/image-launch.port.js';
import { QuotaService } from '../../apps/cloud-controller/src/quotas/quota.service.js';
import { startCloud, uniqueZone, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { FakeZone } from '../instances/fake-zone.js';
import { FakeStorage } from '../volumes/fake-storage.js';
import { codeOf, until } from '../support/wait.js';

jest.setTimeout(30_000);
const IMAGE = 'emi-0123456789abcdef0';
const consumers = { instances: `clc-test-${randomBytes(4).toString('hex')}`, volumes: `clc-test-vol-${randomBytes(4).toString('hex')}` };
const wait = { minDelay: 1, maxDelay: 1, maxWaitTime: 30 };
let cloud: TestCloud;
let zone: FakeZone;
let sc: FakeStorage;
let server: Server;
const stalled: ServerResponse[] = [];
let imageUrl: string;

/** `koala quota ...` as the operator runs it; returns [exit code, stdout, stderr]. */
async function quota(...args: string[]): Promise<[number, string, string]> {
  let out = '';
  let err = '';
  const code = await runAdminCommand(cloud.config, ['quota', ...args], { out: (s) => void (out += s), err: (s) => void (err += s) });
  return [code, out, err];
}

/** A new account with its own client and the given overrides (set through the admin command). */
async function tenant(overrides: Record<string, number>): Promise<{ ec2: EC2Client; creds: TestCredentials; name: string }> {
  const name = `q${randomBytes(4).toString('hex')}`;
  const creds = await cloud.createAccount(name);
  for (const [k, v] of Object.entries(overrides)) expect((await quota('set', name, k, String(v)))[0]).toBe(0);
  return { ec2: cloud.ec2(creds), creds, name };
}

const run = (ec2: EC2Client, extra: Partial<ConstructorParameters<typeof RunInstancesCommand>[0]> = {}) =>
  ec2.send(new RunInstancesCommand({ ImageId: IMAGE, MinCount: 1, MaxCount: 1, Placement: { AvailabilityZone: zone.zone }, ...extra }));

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(Buffer.alloc(16));
    stalled.push(res); // never ends: the image stays pending (a running fetch)
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  imageUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/disk.img`;
  zone = await FakeZone.start(uniqueZone('quota'));
  zone.capacity = 100;
  sc = await FakeStorage.start(zone.zone);
  cloud = await startCloud({
    env: { KOALA_EVENTS_CONSUMER: consumers.instances, KOALA_VOLUME_EVENTS_CONSUMER: consumers.volumes, KOALA_IMAGE_FETCH_ALLOW: '127.0.0.1', KOALA_QUOTA_INSTANCES: '4', KOALA_QUOTA_KEY_PAIRS: '3' },
  });
  jest.spyOn(cloud.app.get<ImageLaunchPort>(IMAGE_LAUNCH), 'launchSpec').mockImplementation(async (_caller, imageId) => {
    if (imageId !== IMAGE) throw Ec2Error.notFound('InvalidAMIID.NotFound', imageId);
    return {
      spec: { virtualizationType: 'hvm', root: { imageId, sha256: 'a'.repeat(64), sizeBytes: 1024, format: 'qcow2', url: 'http://127.0.0.1:1/blob' } },
      architecture: 'x86_64',
      rootDeviceName: '/dev/vda',
    };
  });
}, 60_000);

afterAll(async () => {
  for (const r of stalled) r.destroy();
  server?.closeAllConnections();
  await cloud?.close();
  await zone?.close();
  await sc?.close();
  await new Promise((r) => server?.close(r));
  const probe = await NatsBus.connect({ url: 'nats://127.0.0.1:4222', name: 'quotas-test-probe' });
  const jsm = await jetstreamManager(probe.connection);
  for (const c of Object.values(consumers)) await jsm.consumers.delete(EVENTS_STREAM, c).catch(() => undefined);
  await probe.close();
});

describe('koala quota (admin command)', () => {
  it('lists defaults from the configuration, sets and resets overrides, refuses bad names and values', async () => {
    const t = await tenant({});
    let [code, out] = await quota('list', t.name);
    expect(code).toBe(0);
    expect(out).toMatch(/^instances\s+4\s+default$/m);
    expect(out).toMatch(/^key-pairs\s+3\s+default$/m);
    expect((await quota('set', t.name, 'vcpus', '7'))[0]).toBe(0);
    [code, out] = await quota('list', t.name);
    expect(out).toMatch(/^vcpus\s+7\s+account$/m);
    expect((await cloud.app.get(QuotaService).limitsOf(t.creds.accountId)).vcpus).toBe(7);
    expect((await quota('set', t.name, 'vcpus', 'default'))[0]).toBe(0);
    expect((await cloud.app.get(QuotaService).limitsOf(t.creds.accountId)).vcpus).toBe(64);
    for (const bad of [
      ['set', t.name, 'cores', '1'],
      ['set', t.name, 'vcpus', '-1'],
      ['set', t.name, 'vcpus', '1e3'],
      ['set', t.name, 'vcpus', '9'.repeat(12)],
      ['set', t.name, 'vcpus', '1\u0000'],
    ]) {
      const [c, , err] = await quota(...bad);
      expect([c, err]).toEqual([1, expect.stringMatching(/quota/)]);
    }
    expect((await quota('list', 'no-such-account'))[0]).toBe(1);
    expect((await quota('set', t.name))[0]).toBe(64);
  });
});

describe('instances and vCPUs', () => {
  it('InstanceLimitExceeded beyond the count; MaxCount is trimmed to what fits; terminated instances free their share', async () => {
    const t = await tenant({ instances: 3 });
    const first = await run(t.ec2, { MinCount: 1, MaxCount: 5 });
    expect(first.Instances).toHaveLength(3); // as EC2: as many as the quota allows, at least MinCount
    expect(await codeOf(run(t.ec2))).toBe('InstanceLimitExceeded');
    const gone = first.Instances![0]!.InstanceId!;
    await t.ec2.send(new TerminateInstancesCommand({ InstanceIds: [gone] }));
    await until(async () => (await t.ec2.send(new DescribeInstancesCommand({ InstanceIds: [gone] }))).Reservations![0]!.Instances![0]!.State!.Name === 'terminated', 15_000, 'terminated');
    expect((await run(t.ec2)).Instances).toHaveLength(1);
    expect(await codeOf(run(t.ec2))).toBe('InstanceLimitExceeded');
  });

  it("VcpuLimitExceeded by the instance type's vCPUs", async () => {
    const t = await tenant({ vcpus: 3 });
    await run(t.ec2, { InstanceType: 'c1.medium' }); // 2 vCPUs
    expect(await codeOf(run(t.ec2, { InstanceType: 'c1.medium' }))).toBe('VcpuLimitExceeded');
    expect((await run(t.ec2, { InstanceType: 'm1.small' })).Instances).toHaveLength(1); // 1 vCPU still fits
  });

  it('concurrent RunInstances never exceed the quota', async () => {
    const t = await tenant({ instances: 2 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => run(t.ec2)));
    const outcomes = results.map((r) => (r.status === 'fulfilled' ? 'launched' : (r.reason as Error).name)).sort();
    expect(outcomes).toEqual([...Array(4).fill('InstanceLimitExceeded'), 'launched', 'launched']);
    const rows: Array<{ n: number }> = await cloud.dataSource.query(`SELECT count(*)::int AS n FROM instances WHERE account_id = $1 AND state <> 'terminated'`, [t.creds.accountId]);
    expect(rows[0]!.n).toBe(2);
  });

  it('concurrent launches and address allocations of one account take the locks in one order (no deadlock)', async () => {
    const t = await tenant({ instances: 3, addresses: 3 });
    const calls = Array.from({ length: 5 }, (_, i) => (i % 2 ? run(t.ec2) : t.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }))));
    calls.push(...Array.from({ length: 5 }, (_, i) => (i % 2 ? t.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' })) : run(t.ec2))));
    const outcomes = (await Promise.allSettled(calls)).map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as Error).name));
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(6);
    expect(outcomes.filter((o) => o !== 'ok').sort()).toEqual(['AddressLimitExceeded', 'AddressLimitExceeded', 'InstanceLimitExceeded', 'InstanceLimitExceeded']);
  });

  it('the configured default applies without an override; the admin account is exempt', async () => {
    const t = await tenant({});
    expect((await run(t.ec2, { MinCount: 4, MaxCount: 4 })).Instances).toHaveLength(4);
    expect(await codeOf(run(t.ec2))).toBe('InstanceLimitExceeded');
    expect((await run(cloud.ec2(), { MinCount: 5, MaxCount: 5 })).Instances).toHaveLength(5);
  });
});

describe('volumes and snapshots', () => {
  it('VolumeLimitExceeded by count and by total GiB; deleted volumes free their share', async () => {
    const t = await tenant({ volumes: 2, 'volume-gib': 10 });
    const a = await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone.zone, Size: 6 }));
    expect(await codeOf(t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone.zone, Size: 5 })))).toBe('VolumeLimitExceeded'); // 11 GiB
    await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone.zone, Size: 4 }));
    expect(await codeOf(t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone.zone, Size: 1 })))).toBe('VolumeLimitExceeded'); // 3 volumes
    await waitUntilVolumeAvailable({ client: t.ec2, ...wait }, { VolumeIds: [a.VolumeId!] });
    await t.ec2.send(new DeleteVolumeCommand({ VolumeId: a.VolumeId! }));
    for (let i = 0; i < 100 && (await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [a.VolumeId!] }))).Volumes![0]!.State !== 'deleted'; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone.zone, Size: 6 }))).VolumeId).toMatch(/^vol-/);
    const rows: Array<{ n: number }> = await cloud.dataSource.query(`SELECT count(*)::int AS n FROM volumes WHERE account_id = $1 AND state <> 'deleted'`, [t.creds.accountId]);
    expect(rows[0]!.n).toBe(2); // nothing half-written by the refusals
  });

  it('SnapshotLimitExceeded', async () => {
    const t = await tenant({ snapshots: 1 });
    const v = await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone.zone, Size: 1 }));
    await waitUntilVolumeAvailable({ client: t.ec2, ...wait }, { VolumeIds: [v.VolumeId!] });
    await t.ec2.send(new CreateSnapshotCommand({ VolumeId: v.VolumeId! }));
    expect(await codeOf(t.ec2.send(new CreateSnapshotCommand({ VolumeId: v.VolumeId! })))).toBe('SnapshotLimitExceeded');
  });
});

describe('images, key pairs, security groups, addresses', () => {
  it('images: ResourceLimitExceeded for the count and for fetches running at once', async () => {
    const t = await tenant({ images: 2, 'image-fetches': 1 });
    await t.ec2.send(new RegisterImageCommand({ Name: 'one', ImageLocation: imageUrl }));
    const fetches = await t.ec2.send(new RegisterImageCommand({ Name: 'two', ImageLocation: imageUrl })).catch((e: Error & { message: string }) => e);
    expect([(fetches as Error).name, (fetches as Error).message]).toEqual(['ResourceLimitExceeded', expect.stringMatching(/fetched at once/)]);
    await quota('set', t.name, 'image-fetches', '5');
    await t.ec2.send(new RegisterImageCommand({ Name: 'two', ImageLocation: imageUrl }));
    const count = await t.ec2.send(new RegisterImageCommand({ Name: 'three', ImageLocation: imageUrl })).catch((e: Error) => e);
    expect([(count as Error).name, (count as Error).message]).toEqual(['ResourceLimitExceeded', expect.stringMatching(/number of images \(2\)/)]);
  });

  it('key pairs: ResourceLimitExceeded (configured default 3)', async () => {
    const t = await tenant({});
    for (const n of ['a', 'b', 'c']) await t.ec2.send(new CreateKeyPairCommand({ KeyName: n }));
    expect(await codeOf(t.ec2.send(new CreateKeyPairCommand({ KeyName: 'd' })))).toBe('ResourceLimitExceeded');
  });

  it('security groups (the default group counts) and rules per group', async () => {
    const t = await tenant({ 'security-groups': 2, 'rules-per-group': 2 });
    const g = await t.ec2.send(new CreateSecurityGroupCommand({ GroupName: 'web', Description: 'web' }));
    expect(await codeOf(t.ec2.send(new CreateSecurityGroupCommand({ GroupName: 'db', Description: 'db' })))).toBe('SecurityGroupLimitExceeded');
    const rule = (port: number) => ({ IpProtocol: 'tcp', FromPort: port, ToPort: port, IpRanges: [{ CidrIp: '0.0.0.0/0' }] });
    expect(await codeOf(t.ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: g.GroupId, IpPermissions: [rule(22), rule(80), rule(443)] })))).toBe('RulesPerSecurityGroupLimitExceeded');
    await t.ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: g.GroupId, IpPermissions: [rule(22), rule(80)] }));
    expect(await codeOf(t.ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: g.GroupId, IpPermissions: [rule(443)] })))).toBe('RulesPerSecurityGroupLimitExceeded');
  });

  it('elastic addresses: AddressLimitExceeded by the override of the addresses quota', async () => {
    const t = await tenant({ addresses: 1 });
    await t.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
    expect(await codeOf(t.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' })))).toBe('AddressLimitExceeded');
  });
});
