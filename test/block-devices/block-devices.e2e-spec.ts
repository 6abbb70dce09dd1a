/**
 * RunInstances with BlockDeviceMapping through the EC2 API with the real CLC (PostgreSQL, NATS,
 * JetStream), a fake CC/NC (test/instances/fake-zone.ts) and a fake SC with the CC's
 * attach/detach (test/volumes/fake-storage.ts) for a unique zone. Images come from a stub of the
 * images port (instance-store, root device /dev/vda).
 */
import { jest } from '@jest/globals';
import {
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  ModifyInstanceAttributeCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilSnapshotCompleted,
  waitUntilVolumeAvailable,
  type BlockDeviceMapping,
  type EC2Client,
  type Volume,
} from '@aws-sdk/client-ec2';
import { jetstreamManager } from '@nats-io/jetstream';
import { randomBytes } from 'node:crypto';
import { Ec2Error } from '@koala/ec2-query';
import { EVENTS_STREAM } from '@koala/contracts';
import { NatsBus } from '@koala/messaging';
import { IMAGE_LAUNCH, type ImageLaunchPort } from '../../apps/cloud-controller/src/images/image-launch.port.js';
import { BlockDevicesService } from '../../apps/cloud-controller/src/volumes/block-devices.service.js';
import { startCloud, uniqueZone, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { FakeZone } from '../instances/fake-zone.js';
import { FakeStorage } from '../volumes/fake-storage.js';
import { codeOf, until } from '../support/wait.js';

const IMAGE = 'emi-0123456789abcdef0';
const consumers = { instances: `clc-test-${randomBytes(4).toString('hex')}`, volumes: `clc-test-vol-${randomBytes(4).toString('hex')}` };
let cloud: TestCloud;
let zone: FakeZone;
let sc: FakeStorage;
let ec2: EC2Client;
let bob: TestCredentials;
let bobEc2: EC2Client;
let snapshot: string;

const wait = { minDelay: 1, maxDelay: 1, maxWaitTime: 30 };
jest.setTimeout(40_000);
const run = (mappings: BlockDeviceMapping[], extra: Partial<ConstructorParameters<typeof RunInstancesCommand>[0]> = {}, client = ec2) =>
  client.send(new RunInstancesCommand({ ImageId: IMAGE, MinCount: 1, MaxCount: 1, Placement: { AvailabilityZone: zone.zone }, BlockDeviceMappings: mappings, ...extra }));
const instance = async (id: string) => (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
const volumesOf = async (instanceId: string): Promise<Volume[]> =>
  ((await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [instanceId] }] }))).Volumes ?? []).sort((a, b) =>
    a.Attachments![0]!.Device!.localeCompare(b.Attachments![0]!.Device!),
  );
const volume = async (id: string) => (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0]!;
const rows = (instanceId: string): Promise<Array<{ device_name: string; state: string; volume_id: string | null; reason_code: string | null }>> =>
  cloud.dataSource.query('SELECT device_name, state, volume_id, reason_code FROM instance_block_devices WHERE instance_id = $1 ORDER BY device_name', [instanceId]);
const instanceCount = async () => Number((await cloud.dataSource.query('SELECT count(*) AS n FROM instances'))[0].n);
const volumeCount = async () => Number((await cloud.dataSource.query('SELECT count(*) AS n FROM volumes'))[0].n);

async function newSnapshot(size: number): Promise<string> {
  const v = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone.zone, Size: size }));
  await waitUntilVolumeAvailable({ client: ec2, ...wait }, { VolumeIds: [v.VolumeId!] });
  const s = await ec2.send(new CreateSnapshotCommand({ VolumeId: v.VolumeId! }));
  await waitUntilSnapshotCompleted({ client: ec2, ...wait }, { SnapshotIds: [s.SnapshotId!] });
  return s.SnapshotId!;
}

beforeAll(async () => {
  zone = await FakeZone.start(uniqueZone('bdm'));
  sc = await FakeStorage.start(zone.zone);
  cloud = await startCloud({ env: { KOALA_EVENTS_CONSUMER: consumers.instances, KOALA_VOLUME_EVENTS_CONSUMER: consumers.volumes, KOALA_VOLUME_SWEEP_MS: '200' } });
  jest.spyOn(cloud.app.get<ImageLaunchPort>(IMAGE_LAUNCH), 'launchSpec').mockImplementation(async (_caller, imageId) => {
    if (imageId !== IMAGE) throw Ec2Error.notFound('InvalidAMIID.NotFound', imageId);
    return {
      spec: { virtualizationType: 'hvm', root: { imageId, sha256: 'a'.repeat(64), sizeBytes: 1024, format: 'qcow2', url: 'http://127.0.0.1:1/blob' } },
      architecture: 'x86_64',
      rootDeviceName: '/dev/vda',
    };
  });
  ec2 = cloud.ec2();
  bob = await cloud.createAccount('bob');
  bobEc2 = cloud.ec2(bob);
  snapshot = await newSnapshot(3);
}, 90_000);

afterAll(async () => {
  await cloud?.close();
  for (const c of [zone, sc]) await c?.close();
  const probe = await NatsBus.connect({ url: 'nats://127.0.0.1:4222', name: 'block-devices-test-probe' });
  const jsm = await jetstreamManager(probe.connection);
  for (const c of Object.values(consumers)) await jsm.consumers.delete(EVENTS_STREAM, c).catch(() => undefined);
  await probe.close();
});

beforeEach(() => {
  sc.failAttach = undefined;
});

describe('RunInstances with BlockDeviceMapping', () => {
  let id: string;
  let fresh: string;
  let restored: string;

  it('creates one volume per mapping (tagged from TagSpecification volume) and attaches them once the instance runs', async () => {
    const r = await run(
      [
        { DeviceName: '/dev/sdf', Ebs: { VolumeSize: 2, VolumeType: 'gp3' } },
        { DeviceName: '/dev/sdg', Ebs: { SnapshotId: snapshot, DeleteOnTermination: false } },
        { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
        { DeviceName: '/dev/sdh', NoDevice: '' },
      ],
      {
        TagSpecifications: [
          { ResourceType: 'volume', Tags: [{ Key: 'role', Value: 'data' }] },
          { ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'bdm' }] },
        ],
      },
    );
    id = r.Instances![0]!.InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, ...wait }, { InstanceIds: [id] });
    const attached = await until(async () => {
      const vs = await volumesOf(id);
      return vs.length === 2 && vs.every((v) => v.Attachments![0]!.State === 'attached') && vs;
    });
    const [f, g] = attached as [Volume, Volume];
    fresh = f.VolumeId!;
    restored = g.VolumeId!;
    expect(f).toMatchObject({ Size: 2, VolumeType: 'gp3', AvailabilityZone: zone.zone, State: 'in-use', SnapshotId: '', Tags: [{ Key: 'role', Value: 'data' }] });
    expect(f.Attachments![0]).toMatchObject({ InstanceId: id, Device: '/dev/sdf', State: 'attached', DeleteOnTermination: true });
    expect(g).toMatchObject({ Size: 3, SnapshotId: snapshot, State: 'in-use', Tags: [{ Key: 'role', Value: 'data' }] });
    expect(g.Attachments![0]).toMatchObject({ InstanceId: id, Device: '/dev/sdg', State: 'attached', DeleteOnTermination: false });
    expect(sc.exports.has(fresh) && sc.exports.has(restored)).toBe(true);
    expect(sc.attached.has(fresh) && sc.attached.has(restored)).toBe(true);

    const i = await instance(id);
    expect(i.BlockDeviceMappings).toEqual([
      { DeviceName: '/dev/sdf', Ebs: { VolumeId: fresh, Status: 'attached', AttachTime: expect.any(Date), DeleteOnTermination: true } },
      { DeviceName: '/dev/sdg', Ebs: { VolumeId: restored, Status: 'attached', AttachTime: expect.any(Date), DeleteOnTermination: false } },
    ]);
    expect(i.Tags).toEqual([{ Key: 'Name', Value: 'bdm' }]);
    const byVolume = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'block-device-mapping.volume-id', Values: [restored] }] }));
    expect(byVolume.Reservations!.flatMap((x) => x.Instances!).map((x) => x.InstanceId)).toEqual([id]);
    const attr = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'blockDeviceMapping' }));
    expect(attr.BlockDeviceMappings!.map((b) => b.DeviceName)).toEqual(['/dev/sdf', '/dev/sdg']);
    expect((await rows(id)).map((x) => [x.device_name, x.state])).toEqual([
      ['/dev/sdf', 'attached'],
      ['/dev/sdg', 'attached'],
    ]);
  });

  it('ModifyInstanceAttribute updates DeleteOnTermination of a mapped volume', async () => {
    await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, BlockDeviceMappings: [{ DeviceName: '/dev/sdg', Ebs: { DeleteOnTermination: true } }] }));
    expect((await volume(restored)).Attachments![0]!.DeleteOnTermination).toBe(true);
    await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, BlockDeviceMappings: [{ DeviceName: '/dev/sdg', Ebs: { DeleteOnTermination: false } }] }));
    expect((await volume(restored)).Attachments![0]!.DeleteOnTermination).toBe(false);
    expect((await instance(id)).BlockDeviceMappings!.find((b) => b.DeviceName === '/dev/sdg')!.Ebs!.DeleteOnTermination).toBe(false);
    expect(await codeOf(ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, BlockDeviceMappings: [{ DeviceName: '/dev/sdp', Ebs: { DeleteOnTermination: false } }] })))).toBe(
      'InvalidParameterValue',
    );
  });

  it('terminate: the DeleteOnTermination volume is deleted, the other detached and available', async () => {
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await until(async () => (await volume(fresh)).State === 'deleted');
    await until(async () => (await volume(restored)).State === 'available');
    expect((await volume(restored)).Attachments).toEqual([]);
    expect(sc.volumes.has(fresh)).toBe(false);
    expect(sc.volumes.has(restored)).toBe(true);
    expect(sc.exports.has(restored)).toBe(false);
    expect(await volumesOf(id)).toEqual([]);
  });
});

describe('RunInstances BlockDeviceMapping validation (nothing written)', () => {
  it.each([
    ['a device outside /dev/sd[f-p], /dev/xvd[f-p], /dev/vd[b-z]', [{ DeviceName: '/dev/sdz', Ebs: { VolumeSize: 1 } }], 'InvalidParameterValue'],
    ['the image root device', [{ DeviceName: '/dev/vda', Ebs: { VolumeSize: 1 } }], 'InvalidParameterValue'],
    ['size 0', [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 0 } }], 'InvalidParameterValue'],
    ['size 16385', [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 16385 } }], 'InvalidParameterValue'],
    ['neither size nor snapshot', [{ DeviceName: '/dev/sdf', Ebs: { VolumeType: 'gp2' } }], 'MissingParameter'],
    ['Encrypted', [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 1, Encrypted: true } }], 'InvalidParameterValue'],
    [
      'a duplicate device',
      [
        { DeviceName: '/dev/sdf', Ebs: { VolumeSize: 1 } },
        { DeviceName: '/dev/sdf', Ebs: { VolumeSize: 2 } },
      ],
      'InvalidParameterValue',
    ],
    ['an unknown snapshot', [{ DeviceName: '/dev/sdf', Ebs: { SnapshotId: 'snap-0123456789abcdef0' } }], 'InvalidSnapshot.NotFound'],
    ['a size below the snapshot', () => [{ DeviceName: '/dev/sdf', Ebs: { SnapshotId: snapshot, VolumeSize: 2 } }], 'InvalidParameterValue'],
    ['a bad VirtualName', [{ DeviceName: '/dev/sdb', VirtualName: 'swap' }], 'InvalidParameterValue'],
    ['a bad volume type', [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 1, VolumeType: 'fast' as never } }], 'InvalidParameterValue'],
  ])('refuses %s', async (_what, mappings, code) => {
    const [instances, volumes] = [await instanceCount(), await volumeCount()];
    const m = (typeof mappings === 'function' ? mappings() : mappings) as BlockDeviceMapping[];
    expect(await codeOf(run(m))).toBe(code);
    expect([await instanceCount(), await volumeCount()]).toEqual([instances, volumes]);
  });

  it('refuses a snapshot the caller may not restore', async () => {
    expect(await codeOf(run([{ DeviceName: '/dev/sdf', Ebs: { SnapshotId: snapshot } }], {}, bobEc2))).toBe('InvalidSnapshot.NotFound');
  });
});

describe('failures and restarts', () => {
  it('an attach that fails leaves the instance running and the mapping failed; the volume stays, and is deleted with the instance', async () => {
    sc.failAttach = 'InternalError';
    const r = await run([{ DeviceName: '/dev/xvdf', Ebs: { VolumeSize: 1 } }]);
    const id = r.Instances![0]!.InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, ...wait }, { InstanceIds: [id] });
    const [row] = await until(async () => {
      const rs = await rows(id);
      return rs[0]?.state === 'failed' && rs;
    });
    expect(row).toMatchObject({ device_name: '/dev/xvdf', state: 'failed', reason_code: 'InternalError' });
    expect((await instance(id)).State!.Name).toBe('running');
    expect((await instance(id)).BlockDeviceMappings).toEqual([]);
    expect((await volume(row!.volume_id!)).State).toBe('available');
    sc.failAttach = undefined;
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await until(async () => (await volume(row!.volume_id!)).State === 'deleted');
    expect((await rows(id))[0]!.state).toBe('released');
  });

  it('mappings kept in the database are carried on by the periodic step (a CLC restarted before the volume was created)', async () => {
    // The instance stays pending (its events are lost), as after a CLC restart before the attach.
    zone.publishEvents = false;
    const spy = jest.spyOn(cloud.app.get(BlockDevicesService), 'step');
    spy.mockImplementation(async () => 0); // a CLC that stops before doing anything with the rows
    let id: string;
    try {
      id = (await run([{ DeviceName: '/dev/vdc', Ebs: { VolumeSize: 1, DeleteOnTermination: false } }])).Instances![0]!.InstanceId!;
      expect((await rows(id)).map((x) => x.state)).toEqual(['pending']);
    } finally {
      spy.mockRestore();
    }
    // The periodic step creates the volume, and attaches it once the instance runs.
    try {
      await until(async () => (await rows(id))[0]!.state === 'creating');
    } finally {
      zone.publishEvents = true;
    }
    await zone.emit(id, 'running');
    const [v] = await until(async () => {
      const vs = await volumesOf(id);
      return vs[0]?.Attachments![0]!.State === 'attached' && vs;
    });
    expect(v!.Attachments![0]).toMatchObject({ Device: '/dev/vdc', DeleteOnTermination: false });
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await until(async () => (await volume(v!.VolumeId!)).State === 'available');
  });
});
