/**
 * Volumes and snapshots through the EC2 API with the real CLC (PostgreSQL, NATS, JetStream) and,
 * for two unique zones, a fake CC/NC (test/instances/fake-zone.ts) plus a fake SC with the CC's
 * attach/detach (fake-storage.ts). Images come from a stub of the images port.
 */
import { jest } from '@jest/globals';
import {
  AttachVolumeCommand,
  CopySnapshotCommand,
  CreateTagsCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeSnapshotsCommand,
  DescribeTagsCommand,
  DescribeVolumesCommand,
  DescribeVolumeStatusCommand,
  DescribeInstancesCommand,
  DetachVolumeCommand,
  ModifySnapshotAttributeCommand,
  StopInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  paginateDescribeVolumes,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
  waitUntilSnapshotCompleted,
  waitUntilVolumeAvailable,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { jetstreamManager } from '@nats-io/jetstream';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Ec2Error } from '@koala/ec2-query';
import { EVENTS_STREAM, listExports, nodeInitiatorIqn } from '@koala/contracts';
import { NatsBus } from '@koala/messaging';
import { IMAGE_LAUNCH, type ImageLaunchPort } from '../../apps/cloud-controller/src/images/image-launch.port.js';
import { VolumesService } from '../../apps/cloud-controller/src/volumes/volumes.service.js';
import { VolumeEntity } from '../../apps/cloud-controller/src/volumes/volume.entity.js';
import { startCloud, uniqueZone, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { makeVolumes, seedVolumes } from './seed-volumes.js';
import { FakeZone } from '../instances/fake-zone.js';
import { FakeStorage } from './fake-storage.js';
import { codeOf, until } from '../support/wait.js';

const IMAGE = 'emi-0123456789abcdef0';
const consumers = { instances: `clc-test-${randomBytes(4).toString('hex')}`, volumes: `clc-test-vol-${randomBytes(4).toString('hex')}` };
let cloud: TestCloud;
let zoneA: FakeZone;
let zoneB: FakeZone;
let scA: FakeStorage;
let scB: FakeStorage;
let ec2: EC2Client;
let bob: TestCredentials;
let bobEc2: EC2Client;
let probe: NatsBus;
let instanceA: string;
let instanceB: string;

const wait = { minDelay: 1, maxDelay: 1, maxWaitTime: 30 };
jest.setTimeout(30_000);
const volume = async (id: string, client = ec2) => (await client.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0]!;
async function newVolume(extra: Partial<ConstructorParameters<typeof CreateVolumeCommand>[0]> = {}, client = ec2): Promise<string> {
  const v = await client.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 1, ...extra }));
  await waitUntilVolumeAvailable({ client, ...wait }, { VolumeIds: [v.VolumeId!] });
  return v.VolumeId!;
}
async function launch(zone: string): Promise<string> {
  const r = await ec2.send(new RunInstancesCommand({ ImageId: IMAGE, MinCount: 1, MaxCount: 1, Placement: { AvailabilityZone: zone } }));
  const id = r.Instances![0]!.InstanceId!;
  await waitUntilInstanceRunning({ client: ec2, ...wait }, { InstanceIds: [id] });
  return id;
}

beforeAll(async () => {
  zoneA = await FakeZone.start(uniqueZone('vola'));
  zoneB = await FakeZone.start(uniqueZone('volb'));
  scA = await FakeStorage.start(zoneA.zone);
  scB = await FakeStorage.start(zoneB.zone);
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
  probe = await NatsBus.connect({ url: 'nats://127.0.0.1:4222', name: 'volumes-test-probe' });
  instanceA = await launch(zoneA.zone);
  instanceB = await launch(zoneB.zone);
}, 90_000);

afterAll(async () => {
  await cloud?.close();
  for (const c of [zoneA, zoneB, scA, scB]) await c?.close();
  if (probe) {
    const jsm = await jetstreamManager(probe.connection);
    for (const c of Object.values(consumers)) await jsm.consumers.delete(EVENTS_STREAM, c).catch(() => undefined);
    await probe.close();
  }
});

beforeEach(() => {
  scA.failAttach = undefined;
  scA.detachUnreachable = false;
});

describe('CreateVolume / DescribeVolumes / DeleteVolume', () => {
  it('creates a volume that becomes available (SDK waiter), with the EC2 item shape and tags', async () => {
    const r = await ec2.send(
      new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 2, VolumeType: 'gp3', Iops: 3000, TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'Name', Value: 'data' }] }] }),
    );
    expect(r.VolumeId).toMatch(/^vol-[0-9a-f]{17}$/);
    expect(r).toMatchObject({
      Size: 2,
      AvailabilityZone: zoneA.zone,
      State: 'creating',
      VolumeType: 'gp3',
      Iops: 3000,
      Encrypted: false,
      MultiAttachEnabled: false,
      Tags: [{ Key: 'Name', Value: 'data' }],
    });
    expect(r.CreateTime).toBeInstanceOf(Date);
    await waitUntilVolumeAvailable({ client: ec2, ...wait }, { VolumeIds: [r.VolumeId!] });
    expect(await volume(r.VolumeId!)).toMatchObject({ State: 'available', Attachments: [], SnapshotId: '' });
    expect(scA.volumes.get(r.VolumeId!)).toBe(2);
  });

  it('validates the zone, the size, the type and Encrypted; DryRun creates nothing', async () => {
    expect(await codeOf(ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'nowhere-1z', Size: 1 })))).toBe('InvalidZone.NotFound');
    expect(await codeOf(ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone })))).toBe('MissingParameter');
    expect(await codeOf(ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 0 })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 1, VolumeType: 'fast' as never })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 1, VolumeType: 'io1' })))).toBe('MissingParameter');
    expect(await codeOf(ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 1, Encrypted: true })))).toBe('InvalidParameterValue');
    const before = scA.log.length;
    expect(await codeOf(ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 1, DryRun: true })))).toBe('DryRunOperation');
    expect(scA.log.length).toBe(before);
  });

  it('an SC refusal answers its code and leaves no volume behind', async () => {
    expect(await codeOf(ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 2000, ClientToken: 'too-big' })))).toBe('InsufficientVolumeCapacity');
    const all = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'size', Values: ['2000'] }] }));
    expect(all.Volumes).toEqual([]);
  });

  it('is idempotent with ClientToken', async () => {
    const token = `tok-${randomBytes(4).toString('hex')}`;
    const a = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 1, ClientToken: token }));
    const b = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 1, ClientToken: token }));
    expect(b.VolumeId).toBe(a.VolumeId);
    expect(await codeOf(ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, Size: 3, ClientToken: token })))).toBe('IdempotentParameterMismatch');
  });

  it('filters and paginates', async () => {
    const tag = randomBytes(3).toString('hex');
    const ids = await Promise.all([0, 1, 2, 3, 4, 5].map(() => newVolume({ Size: 3, TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'batch', Value: tag }] }] })));
    const byTag = await ec2.send(
      new DescribeVolumesCommand({
        Filters: [
          { Name: 'tag:batch', Values: [tag] },
          { Name: 'size', Values: ['3'] },
          { Name: 'status', Values: ['available'] },
          { Name: 'availability-zone', Values: [zoneA.zone] },
        ],
      }),
    );
    expect(byTag.Volumes!.map((v) => v.VolumeId).sort()).toEqual([...ids].sort());
    const pages: string[][] = [];
    for await (const page of paginateDescribeVolumes({ client: ec2, pageSize: 5 }, { Filters: [{ Name: 'tag:batch', Values: [tag] }] })) pages.push(page.Volumes!.map((v) => v.VolumeId!));
    expect(pages.map((p) => p.length)).toEqual([5, 1]);
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ VolumeIds: ['vol-00000000000000000'] })))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(ec2.send(new DescribeVolumesCommand({ VolumeIds: ['vol-xyz'] })))).toBe('InvalidVolumeID.Malformed');
    const status = await ec2.send(new DescribeVolumeStatusCommand({ VolumeIds: [ids[0]!] }));
    expect(status.VolumeStatuses![0]).toMatchObject({
      VolumeId: ids[0],
      AvailabilityZone: zoneA.zone,
      VolumeStatus: {
        Status: 'ok',
        Details: [
          { Name: 'io-enabled', Status: 'passed' },
          { Name: 'io-performance', Status: 'not-applicable' },
        ],
      },
      Events: [],
      Actions: [],
    });
  });

  it('deletes: deleting, then deleted on the SC event', async () => {
    const id = await newVolume();
    await ec2.send(new DeleteVolumeCommand({ VolumeId: id }));
    await until(async () => (await volume(id)).State === 'deleted');
    expect(scA.volumes.has(id)).toBe(false);
    expect(await codeOf(ec2.send(new DeleteVolumeCommand({ VolumeId: id })))).toBe('InvalidVolume.NotFound');
  });
});

describe('AttachVolume / DetachVolume', () => {
  it('attaches (export with CHAP for the node, then the CC), refuses DeleteVolume, lists the export, detaches', async () => {
    const id = await newVolume();
    const a = await ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: instanceA, Device: '/dev/sdf' }));
    expect(a).toMatchObject({ VolumeId: id, InstanceId: instanceA, Device: '/dev/sdf', State: 'attached' });
    const exp = scA.exports.get(id)!;
    expect(exp).toMatchObject({ volumeId: id, node: zoneA.node, initiatorIqn: nodeInitiatorIqn(zoneA.node), chapUser: id });
    expect(exp.chapSecret!.length).toBeGreaterThanOrEqual(24);
    const v = await volume(id);
    expect(v).toMatchObject({ State: 'in-use', Attachments: [{ VolumeId: id, InstanceId: instanceA, Device: '/dev/sdf', State: 'attached', DeleteOnTermination: false }] });
    expect(JSON.stringify(v)).not.toContain(exp.chapSecret);
    const filtered = await ec2.send(
      new DescribeVolumesCommand({
        Filters: [
          { Name: 'attachment.instance-id', Values: [instanceA] },
          { Name: 'attachment.status', Values: ['attached'] },
          { Name: 'attachment.device', Values: ['/dev/sdf'] },
        ],
      }),
    );
    expect(filtered.Volumes!.map((x) => x.VolumeId)).toContain(id);

    // The secret at rest is encrypted; listExports gives it back decrypted.
    const row = await cloud.dataSource.getRepository(VolumeEntity).findOneByOrFail({ id });
    expect(row.chapSecretEnc).not.toContain(exp.chapSecret);
    const exports = await cloud.app.get(VolumesService).exports(zoneA.zone);
    expect(exports).toContainEqual({ volumeId: id, node: zoneA.node, initiatorIqn: nodeInitiatorIqn(zoneA.node), chapUser: id, chapSecret: exp.chapSecret });
    // Over NATS (other test clouds in the same `clc` queue group may answer first: ask until ours does).
    await until(async () => (await probe.request(listExports(), { zone: zoneA.zone })).exports.some((e) => e.volumeId === id && e.chapSecret === exp.chapSecret));

    expect(await codeOf(ec2.send(new DeleteVolumeCommand({ VolumeId: id })))).toBe('VolumeInUse');
    expect(await codeOf(ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: instanceA, Device: '/dev/sdg' })))).toBe('VolumeInUse');
    const other = await newVolume();
    expect(await codeOf(ec2.send(new AttachVolumeCommand({ VolumeId: other, InstanceId: instanceA, Device: '/dev/sdf' })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new DetachVolumeCommand({ VolumeId: id, InstanceId: instanceB })))).toBe('InvalidAttachment.NotFound');

    const d = await ec2.send(new DetachVolumeCommand({ VolumeId: id }));
    expect(d).toMatchObject({ VolumeId: id, InstanceId: instanceA, Device: '/dev/sdf' });
    expect(await volume(id)).toMatchObject({ State: 'available', Attachments: [] });
    expect(scA.exports.has(id)).toBe(false);
    expect(scA.log.filter((l) => l.includes(id))).toEqual([`create ${id}`, `export ${id} ${zoneA.node}`, `attach ${id} ${instanceA} /dev/sdf`, `detach ${id} ${instanceA}`, `unexport ${id}`]);
    expect((await cloud.app.get(VolumesService).exports(zoneA.zone)).some((e) => e.volumeId === id)).toBe(false);
    expect(await codeOf(ec2.send(new DetachVolumeCommand({ VolumeId: id })))).toBe('IncorrectState');
    await ec2.send(new DeleteVolumeCommand({ VolumeId: id }));
  });

  it('attaches to and detaches from a stopped instance (as EC2); refuses a stopping one', async () => {
    const inst = await launch(zoneA.zone);
    await ec2.send(new StopInstancesCommand({ InstanceIds: [inst] }));
    await waitUntilInstanceStopped({ client: ec2, ...wait }, { InstanceIds: [inst] });
    const id = await newVolume();
    const a = await ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: inst, Device: '/dev/sdf' }));
    expect(a).toMatchObject({ VolumeId: id, InstanceId: inst, State: 'attached' });
    expect(await volume(id)).toMatchObject({ State: 'in-use', Attachments: [{ InstanceId: inst, Device: '/dev/sdf', State: 'attached' }] });
    const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [inst] }));
    const i = described.Reservations![0]!.Instances![0]!;
    expect(i.State!.Name).toBe('stopped');
    expect(i.BlockDeviceMappings).toContainEqual(expect.objectContaining({ DeviceName: '/dev/sdf', Ebs: expect.objectContaining({ VolumeId: id, Status: 'attached' }) }));
    expect(scA.log.filter((l) => l.includes(id)).slice(1)).toEqual([`export ${id} ${zoneA.node}`, `attach ${id} ${inst} /dev/sdf`]);
    await ec2.send(new DetachVolumeCommand({ VolumeId: id }));
    expect(await volume(id)).toMatchObject({ State: 'available', Attachments: [] });
    expect(scA.exports.has(id)).toBe(false);
    // pending/stopping instances are still refused
    await cloud.dataSource.query(`UPDATE instances SET state = 'stopping' WHERE id = $1`, [inst]);
    expect(await codeOf(ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: inst, Device: '/dev/sdf' })))).toBe('IncorrectState');
    await cloud.dataSource.query(`UPDATE instances SET state = 'stopped' WHERE id = $1`, [inst]);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [inst] }));
    await ec2.send(new DeleteVolumeCommand({ VolumeId: id }));
  });

  it('refuses an instance in another zone, bad devices, and unknown instances', async () => {
    const id = await newVolume();
    expect(await codeOf(ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: instanceB, Device: '/dev/sdf' })))).toBe('InvalidVolume.ZoneMismatch');
    expect(await codeOf(ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: instanceA, Device: '/dev/sda' })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: instanceA, Device: 'nonsense' })))).toBe('InvalidParameterValue');
    expect(await codeOf(ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: 'i-00000000000000000', Device: '/dev/sdf' })))).toBe('InvalidInstanceID.NotFound');
    expect(await volume(id)).toMatchObject({ State: 'available', Attachments: [] });
    expect(scA.log.some((l) => l.startsWith(`export ${id}`))).toBe(false);
  });

  it('an attach failure at the NC is rolled back: error answered, volume available with a reason, no export left', async () => {
    const id = await newVolume();
    scA.failAttach = 'Server.IscsiLoginFailed';
    // The node's own failure: InternalError (500) for the caller with a generic message and the
    // request id (the node's text, with its iSCSI target name, only in the log); the code kept on the volume.
    const err = (await ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: instanceA, Device: '/dev/sdh' })).catch((e: unknown) => e)) as {
      name: string;
      message: string;
      $metadata: { requestId?: string };
    };
    expect(err.name).toBe('InternalError');
    expect(err.message).toBe(`An internal error has occurred (request id ${err.$metadata.requestId}).`);
    expect(err.message).not.toMatch(/iqn|log in/);
    expect(await volume(id)).toMatchObject({ State: 'available', Attachments: [] });
    expect(scA.exports.has(id)).toBe(false);
    expect(scA.log.filter((l) => l.includes(id)).slice(1)).toEqual([`export ${id} ${zoneA.node}`, `attach ${id} ${instanceA} /dev/sdh`, `detach ${id} ${instanceA} force`, `unexport ${id}`]);
    const row = await cloud.dataSource.getRepository(VolumeEntity).findOneByOrFail({ id });
    expect(row).toMatchObject({ stateReasonCode: 'Server.IscsiLoginFailed', attachInstanceId: null, chapSecretEnc: null });
    expect(row.stateReasonMessage).toBe(`AttachVolume failed. An internal error has occurred (request id ${err.$metadata.requestId}).`);
    scA.failAttach = undefined;
    await ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: instanceA, Device: '/dev/sdh' }));
    // Force still unexports when the node does not answer.
    scA.detachUnreachable = true;
    expect(await codeOf(ec2.send(new DetachVolumeCommand({ VolumeId: id })))).toBe('Unavailable');
    expect((await volume(id)).Attachments![0]!.State).toBe('attached');
    await ec2.send(new DetachVolumeCommand({ VolumeId: id, Force: true }));
    expect(await volume(id)).toMatchObject({ State: 'available', Attachments: [] });
    expect(scA.exports.has(id)).toBe(false);
  });

  it('a terminated instance releases its volumes (DeleteOnTermination volumes are deleted)', async () => {
    const inst = await launch(zoneA.zone);
    const keep = await newVolume();
    await ec2.send(new AttachVolumeCommand({ VolumeId: keep, InstanceId: inst, Device: '/dev/sdj' }));
    const svc = cloud.app.get(VolumesService);
    const dropped = await newVolume();
    await ec2.send(new AttachVolumeCommand({ VolumeId: dropped, InstanceId: inst, Device: '/dev/sdk' }));
    await cloud.dataSource.getRepository(VolumeEntity).update({ id: dropped }, { deleteOnTermination: true });
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [inst] }));
    await until(async () => (await volume(keep)).State === 'available');
    expect((await volume(keep)).Attachments).toEqual([]);
    await until(async () => ['deleting', 'deleted'].includes((await volume(dropped)).State!));
    expect(scA.exports.has(keep) || scA.exports.has(dropped)).toBe(false);
    expect((await svc.exports(zoneA.zone)).some((e) => e.volumeId === keep || e.volumeId === dropped)).toBe(false);
  });
});

describe('snapshots', () => {
  it('takes a snapshot with progress to completed, restores a volume from it, copies it, deletes it', async () => {
    const vol = await newVolume({ Size: 4 });
    const s = await ec2.send(new CreateSnapshotCommand({ VolumeId: vol, Description: 'nightly', TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'k', Value: 'v' }] }] }));
    expect(s).toMatchObject({
      VolumeId: vol,
      State: 'pending',
      Progress: '0%',
      OwnerId: cloud.admin.accountId,
      VolumeSize: 4,
      Description: 'nightly',
      Encrypted: false,
      Tags: [{ Key: 'k', Value: 'v' }],
    });
    expect(s.SnapshotId).toMatch(/^snap-[0-9a-f]{17}$/);
    await waitUntilSnapshotCompleted({ client: ec2, ...wait }, { SnapshotIds: [s.SnapshotId!] });
    const done = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [s.SnapshotId!] }))).Snapshots![0]!;
    expect(done).toMatchObject({ State: 'completed', Progress: '100%' });
    const filtered = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [
          { Name: 'volume-id', Values: [vol] },
          { Name: 'status', Values: ['completed'] },
          { Name: 'description', Values: ['night*'] },
        ],
      }),
    );
    expect(filtered.Snapshots!.map((x) => x.SnapshotId)).toEqual([s.SnapshotId]);

    expect(await codeOf(ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, SnapshotId: s.SnapshotId, Size: 2 })))).toBe('InvalidParameterValue');
    const restored = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, SnapshotId: s.SnapshotId }));
    expect(restored).toMatchObject({ Size: 4, SnapshotId: s.SnapshotId });
    await waitUntilVolumeAvailable({ client: ec2, ...wait }, { VolumeIds: [restored.VolumeId!] });
    expect(scA.log).toContain(`create ${restored.VolumeId}`);
    expect((await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'snapshot-id', Values: [s.SnapshotId!] }] }))).Volumes!.map((v) => v.VolumeId)).toEqual([restored.VolumeId]);

    expect(await codeOf(ec2.send(new CopySnapshotCommand({ SourceSnapshotId: s.SnapshotId, SourceRegion: 'us-east-1' })))).toBe('InvalidParameterValue');
    const copy = await ec2.send(new CopySnapshotCommand({ SourceSnapshotId: s.SnapshotId, SourceRegion: cloud.region, Description: 'copy' }));
    await waitUntilSnapshotCompleted({ client: ec2, ...wait }, { SnapshotIds: [copy.SnapshotId!] });
    expect(scA.log).toContain(`copy ${s.SnapshotId} ${copy.SnapshotId}`);
    expect((await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [copy.SnapshotId!] }))).Snapshots![0]).toMatchObject({ Description: 'copy', VolumeSize: 4, State: 'completed' });

    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: copy.SnapshotId }));
    expect(await codeOf(ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [copy.SnapshotId!] })))).toBe('InvalidSnapshot.NotFound');
    expect(scA.snapshots.has(copy.SnapshotId!)).toBe(false);
  });

  it('keeps accounts apart; createVolumePermission lets another account restore', async () => {
    const vol = await newVolume();
    const s = await ec2.send(new CreateSnapshotCommand({ VolumeId: vol }));
    await waitUntilSnapshotCompleted({ client: ec2, ...wait }, { SnapshotIds: [s.SnapshotId!] });
    // Bob sees neither the volume nor the snapshot.
    expect(await codeOf(bobEc2.send(new DescribeVolumesCommand({ VolumeIds: [vol] })))).toBe('InvalidVolume.NotFound');
    expect((await bobEc2.send(new DescribeVolumesCommand({}))).Volumes!.some((v) => v.VolumeId === vol)).toBe(false);
    expect(await codeOf(bobEc2.send(new DeleteVolumeCommand({ VolumeId: vol })))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(bobEc2.send(new AttachVolumeCommand({ VolumeId: vol, InstanceId: instanceA, Device: '/dev/sdf' })))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(bobEc2.send(new CreateSnapshotCommand({ VolumeId: vol })))).toBe('InvalidVolume.NotFound');
    expect(await codeOf(bobEc2.send(new DescribeSnapshotsCommand({ SnapshotIds: [s.SnapshotId!] })))).toBe('InvalidSnapshot.NotFound');
    expect(await codeOf(bobEc2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, SnapshotId: s.SnapshotId })))).toBe('InvalidSnapshot.NotFound');
    // Bob's own volume cannot go on the admin's instance.
    const bobVol = await newVolume({}, bobEc2);
    expect(await codeOf(bobEc2.send(new AttachVolumeCommand({ VolumeId: bobVol, InstanceId: instanceA, Device: '/dev/sdf' })))).toBe('InvalidInstanceID.NotFound');
    // Shared with Bob: restorable, listed with RestorableBy=self, not deletable by him.
    await ec2.send(new ModifySnapshotAttributeCommand({ SnapshotId: s.SnapshotId, Attribute: 'createVolumePermission', CreateVolumePermission: { Add: [{ UserId: bob.accountId }] } }));
    const shared = await bobEc2.send(new DescribeSnapshotsCommand({ RestorableByUserIds: ['self'] }));
    expect(shared.Snapshots!.map((x) => x.SnapshotId)).toContain(s.SnapshotId);
    expect((await bobEc2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots!.some((x) => x.SnapshotId === s.SnapshotId)).toBe(false);
    const bobRestored = await bobEc2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA.zone, SnapshotId: s.SnapshotId }));
    expect(bobRestored.SnapshotId).toBe(s.SnapshotId);
    expect(await codeOf(bobEc2.send(new DeleteSnapshotCommand({ SnapshotId: s.SnapshotId })))).toBe('UnauthorizedOperation');
    // The owner's tags stay the owner's: Bob sees the shared snapshot without them, and tag filters find nothing.
    await ec2.send(new CreateTagsCommand({ Resources: [s.SnapshotId!], Tags: [{ Key: 'cost-center', Value: 'internal-42' }] }));
    const snapTags = async (c: EC2Client, f: object = {}) => (await c.send(new DescribeSnapshotsCommand({ SnapshotIds: [s.SnapshotId!], ...f }))).Snapshots!.map((x) => x.Tags ?? []);
    expect(await snapTags(ec2)).toEqual([[{ Key: 'cost-center', Value: 'internal-42' }]]);
    expect(await snapTags(bobEc2)).toEqual([[]]);
    const byTag = { Filters: [{ Name: 'tag:cost-center', Values: ['internal-42'] }] };
    expect((await bobEc2.send(new DescribeSnapshotsCommand(byTag))).Snapshots!.map((x) => x.SnapshotId)).toEqual([]);
    expect((await ec2.send(new DescribeSnapshotsCommand(byTag))).Snapshots!.map((x) => x.SnapshotId)).toEqual([s.SnapshotId]);
    expect((await bobEc2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [s.SnapshotId!] }] }))).Tags).toEqual([]);
    // The admin sees Bob's volumes.
    expect((await ec2.send(new DescribeVolumesCommand({ VolumeIds: [bobVol] }))).Volumes![0]!.VolumeId).toBe(bobVol);
  });
});

describe('MaxResults above the page limit (aws-cli sends 1000 by default)', () => {
  it('DescribeVolumes answers pages of 500, DescribeSnapshots pages of 1000, instead of an error', async () => {
    const dave = await cloud.createAccount('dave');
    // 510 plain available volumes (nothing for the volume sweep to act on), written straight into the database.
    const seeded = makeVolumes({ count: 510, accounts: [dave.accountId], zones: ['cap-1a'], seed: 3 }).map((v) => ({ ...v, state: 'available' as const, expired: false, attach: null }));
    await seedVolumes(cloud.dataSource, seeded);
    const visible = seeded.map((v) => v.id).sort();
    const daveEc2 = cloud.ec2(dave);
    const first = await daveEc2.send(new DescribeVolumesCommand({ MaxResults: 1000 }));
    expect(first.Volumes).toHaveLength(500);
    expect(first.NextToken).toBeDefined();
    const second = await daveEc2.send(new DescribeVolumesCommand({ MaxResults: 1000, NextToken: first.NextToken }));
    expect(second.NextToken).toBeUndefined();
    expect([...first.Volumes!, ...second.Volumes!].map((v) => v.VolumeId)).toEqual(visible);
    expect((await daveEc2.send(new DescribeSnapshotsCommand({ MaxResults: 5000 }))).Snapshots).toEqual([]);
    expect(await codeOf(daveEc2.send(new DescribeVolumesCommand({ MaxResults: 4 })))).toBe('InvalidParameterValue'); // the minimum still holds
  });
});

describe('aws-cli v2', () => {
  const run = promisify(execFile);
  async function aws(args: string[]): Promise<any> {
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: 'C.UTF-8',
      AWS_ACCESS_KEY_ID: bob.accessKeyId,
      AWS_SECRET_ACCESS_KEY: bob.secretAccessKey,
      AWS_DEFAULT_REGION: cloud.region,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_MAX_ATTEMPTS: '1',
    };
    const { stdout } = await run('/usr/bin/aws', ['--endpoint-url', cloud.endpoint, '--output', 'json', 'ec2', ...args], { env, timeout: 60_000 });
    return stdout.trim() ? JSON.parse(stdout) : {};
  }

  it('create-volume, wait volume-available, describe-volumes, delete-volume', async () => {
    const v = await aws(['create-volume', '--availability-zone', zoneA.zone, '--size', '1', '--volume-type', 'gp2', '--tag-specifications', 'ResourceType=volume,Tags=[{Key=via,Value=cli}]']);
    expect(v).toMatchObject({ AvailabilityZone: zoneA.zone, Size: 1, State: 'creating', VolumeType: 'gp2' });
    await aws(['wait', 'volume-available', '--volume-ids', v.VolumeId]);
    const d = await aws(['describe-volumes', '--filters', 'Name=tag:via,Values=cli']);
    expect(d.Volumes).toEqual([expect.objectContaining({ VolumeId: v.VolumeId, State: 'available', Tags: [{ Key: 'via', Value: 'cli' }] })]);
    await aws(['delete-volume', '--volume-id', v.VolumeId]);
  }, 60_000);

  it('describe-volumes and describe-snapshots without filters: the CLI asks for pages of 1000', async () => {
    // aws-cli injects MaxResults=1000 here; EC2 answers DescribeVolumes pages of at most 500.
    const v = await aws(['create-volume', '--availability-zone', zoneA.zone, '--size', '1']);
    await aws(['wait', 'volume-available', '--volume-ids', v.VolumeId]);
    expect((await aws(['describe-volumes'])).Volumes.map((x: { VolumeId: string }) => x.VolumeId)).toContain(v.VolumeId);
    const snap = await aws(['create-snapshot', '--volume-id', v.VolumeId]);
    await aws(['wait', 'snapshot-completed', '--snapshot-ids', snap.SnapshotId]);
    expect((await aws(['describe-snapshots', '--owner-ids', 'self'])).Snapshots.map((x: { SnapshotId: string }) => x.SnapshotId)).toContain(snap.SnapshotId);
    await aws(['delete-snapshot', '--snapshot-id', snap.SnapshotId]);
    await aws(['delete-volume', '--volume-id', v.VolumeId]);
  }, 120_000);
});
