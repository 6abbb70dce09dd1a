/**
 * Instances through the EC2 API with the real CLC (PostgreSQL, NATS, JetStream) and a fake CC/NC
 * for a unique zone (fake-zone.ts). Images come from a stub of the images port.
 */
import { jest } from '@jest/globals';
import {
  DeleteSecurityGroupCommand,
  CreateSecurityGroupCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  GetConsoleOutputCommand,
  ModifyInstanceAttributeCommand,
  RebootInstancesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  CreateKeyPairCommand,
  paginateDescribeInstances,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
  waitUntilInstanceTerminated,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { jetstreamManager } from '@nats-io/jetstream';
import { randomBytes } from 'node:crypto';
import { Ec2Error } from '@koala/ec2-query';
import { EVENTS_STREAM } from '@koala/contracts';
import { NatsBus } from '@koala/messaging';
import { IMAGE_LAUNCH, type ImageLaunchPort } from '../../apps/cloud-controller/src/images/image-launch.port.js';
import { InstanceEventsConsumer } from '../../apps/cloud-controller/src/instances/instance-events.consumer.js';
import { InstanceEntity } from '../../apps/cloud-controller/src/instances/instance.entity.js';
import { InstanceLifecycleService } from '../../apps/cloud-controller/src/instances/instance-lifecycle.service.js';
import { startCloud, uniqueZone, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { FakeZone } from './fake-zone.js';
import { codeOf, until } from '../support/wait.js';

const IMAGE = 'emi-0123456789abcdef0';
const consumer = `clc-test-${randomBytes(4).toString('hex')}`;
let cloud: TestCloud;
let zone: FakeZone;
let ec2: EC2Client;
let alice: TestCredentials;

async function state(id: string, client = ec2): Promise<string | undefined> {
  const r = await client.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return r.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}
const LIVE = { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] };
const liveInstances = async (client = ec2) => ((await client.send(new DescribeInstancesCommand({ Filters: [LIVE] }))).Reservations ?? []).flatMap((r) => r.Instances ?? []);
const run = (extra: Partial<ConstructorParameters<typeof RunInstancesCommand>[0]> = {}, client = ec2) =>
  client.send(new RunInstancesCommand({ ImageId: IMAGE, MinCount: 1, MaxCount: 1, Placement: { AvailabilityZone: zone.zone }, ...extra }));

beforeAll(async () => {
  zone = await FakeZone.start(uniqueZone('inst'));
  cloud = await startCloud({
    env: { KOALA_EVENTS_CONSUMER: consumer, KOALA_RECONCILE_INTERVAL_MS: '200', KOALA_RECONCILE_GRACE_MS: '1000', KOALA_LAUNCH_TIMEOUT_MS: '4000', KOALA_MAX_INSTANCES_PER_RUN: '8' },
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
  alice = await cloud.createAccount('alice');
}, 60_000);

afterAll(async () => {
  await cloud?.close();
  await zone?.close();
  const bus = await NatsBus.connect({ url: 'nats://127.0.0.1:4222', name: 'cleanup' });
  const jsm = await jetstreamManager(bus.connection);
  await jsm.consumers.delete(EVENTS_STREAM, consumer).catch(() => undefined);
  await bus.close();
});

beforeEach(() => {
  zone.capacity = 4;
  zone.nodeState = 'up';
  zone.publishEvents = true;
});

async function terminateAll() {
  const r = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopped', 'stopping'] }] }));
  const ids = (r.Reservations ?? []).flatMap((x) => x.Instances ?? []).map((i) => i.InstanceId!);
  for (const id of ids) await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, DisableApiTermination: { Value: false } }));
  if (ids.length) await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
}

describe('RunInstances', () => {
  afterEach(terminateAll);

  it('launches, answers the reservation shape, and the SDK waiter sees it running', async () => {
    const r = await run({ TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'web' }] }], UserData: Buffer.from('hello').toString('base64') });
    expect(r.ReservationId).toMatch(/^r-[0-9a-f]{17}$/);
    expect(r.OwnerId).toBe(cloud.admin.accountId);
    expect(r.Groups?.[0]?.GroupName).toBe('default');
    const i = r.Instances![0]!;
    expect(i.InstanceId).toMatch(/^i-[0-9a-f]{17}$/);
    expect(i).toMatchObject({
      ImageId: IMAGE,
      InstanceType: 'm1.small',
      AmiLaunchIndex: 0,
      State: { Code: 0, Name: 'pending' },
      Placement: { AvailabilityZone: zone.zone },
      Architecture: 'x86_64',
      RootDeviceName: '/dev/vda',
      VirtualizationType: 'hvm',
      Tags: [{ Key: 'Name', Value: 'web' }],
    });
    expect(i.PrivateDnsName).toBe(`ip-${i.PrivateIpAddress!.replace(/\./g, '-')}.${cloud.region}.compute.internal`);
    expect(i.LaunchTime).toBeInstanceOf(Date);
    expect(zone.specs.get(i.InstanceId!)).toMatchObject({ userData: Buffer.from('hello').toString('base64'), resources: { vcpus: 1, memoryMiB: 256 }, hostname: i.InstanceId });
    await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [i.InstanceId!] });
  });

  it('validates counts, type, key, groups, zone, user data, image', async () => {
    expect(await codeOf(run({ MinCount: 2, MaxCount: 1 }))).toBe('InvalidParameterValue');
    expect(await codeOf(run({ MinCount: 0, MaxCount: 1 }))).toBe('InvalidParameterValue');
    expect(await codeOf(run({ MinCount: 9, MaxCount: 9 }))).toBe('InvalidParameterValue');
    expect(await codeOf(run({ InstanceType: 'x9.huge' as never }))).toBe('InvalidParameterValue');
    expect(await codeOf(run({ KeyName: 'nope' }))).toBe('InvalidKeyPair.NotFound');
    expect(await codeOf(run({ SecurityGroups: ['nope'] }))).toBe('InvalidGroup.NotFound');
    expect(await codeOf(run({ SecurityGroupIds: ['sg-0123456789abcdef0'] }))).toBe('InvalidGroup.NotFound');
    expect(await codeOf(run({ Placement: { AvailabilityZone: 'no-such-zone' } }))).toBe('InvalidParameterValue');
    expect(await codeOf(run({ UserData: Buffer.alloc(16 * 1024 + 1).toString('base64') }))).toBe('InvalidParameterValue');
    expect(await codeOf(run({ ImageId: 'emi-00000000000000bad' }))).toBe('InvalidAMIID.NotFound');
    expect(await codeOf(run({ DryRun: true }))).toBe('DryRunOperation');
    expect(await liveInstances()).toEqual([]);
  });

  it('launches between MinCount and MaxCount as capacity allows; passes the CC capacity error through', async () => {
    zone.capacity = 3;
    const r = await run({ MinCount: 2, MaxCount: 5 });
    expect(r.Instances!.map((i) => i.AmiLaunchIndex)).toEqual([0, 1, 2]);
    const err = await run({ MinCount: 2, MaxCount: 2 }).catch((e) => e);
    expect(err.name).toBe('InsufficientInstanceCapacity');
    expect(err.$metadata.httpStatusCode).toBe(500);
    // Nothing half-written: only the three placed instances exist.
    expect(await liveInstances()).toHaveLength(3);
  });

  it('is idempotent with ClientToken', async () => {
    const a = await run({ ClientToken: 'tok-1', MaxCount: 2 });
    const b = await run({ ClientToken: 'tok-1', MaxCount: 2 });
    expect(b.ReservationId).toBe(a.ReservationId);
    expect(b.Instances!.map((i) => i.InstanceId)).toEqual(a.Instances!.map((i) => i.InstanceId));
    expect(await codeOf(run({ ClientToken: 'tok-1', MaxCount: 1 }))).toBe('IdempotentParameterMismatch');
    // Another account may use the same token.
    const c = await run({ ClientToken: 'tok-1', MaxCount: 2 }, cloud.ec2(alice));
    expect(c.ReservationId).not.toBe(a.ReservationId);
    await cloud.ec2(alice).send(new TerminateInstancesCommand({ InstanceIds: c.Instances!.map((i) => i.InstanceId!) }));
  });

  it('uses the key pair and the given groups; a group in use cannot be deleted', async () => {
    await ec2.send(new CreateKeyPairCommand({ KeyName: 'k-inst' }));
    const g = await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'web', Description: 'web' }));
    const r = await run({ KeyName: 'k-inst', SecurityGroupIds: [g.GroupId!] });
    const id = r.Instances![0]!.InstanceId!;
    expect(r.Instances![0]!.KeyName).toBe('k-inst');
    expect(r.Instances![0]!.SecurityGroups).toEqual([{ GroupId: g.GroupId, GroupName: 'web' }]);
    expect(zone.specs.get(id)!.publicKey).toMatch(/^ssh-/);
    expect(await codeOf(ec2.send(new DeleteSecurityGroupCommand({ GroupId: g.GroupId })))).toBe('InvalidGroup.InUse');
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [id] });
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId: g.GroupId }));
  });
});

describe('DescribeInstances', () => {
  let ids: string[] = [];
  beforeAll(async () => {
    // Runs before the top-level beforeEach: terminations of earlier tests may still be in flight.
    zone.capacity = 4;
    const a = await run({ MinCount: 3, MaxCount: 3, InstanceType: 't1.micro', TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'role', Value: 'db' }] }] });
    const b = await run({ MinCount: 1, MaxCount: 1 });
    ids = [...a.Instances!, ...b.Instances!].map((i) => i.InstanceId!);
    await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: ids });
  });
  afterAll(terminateAll);

  it('filters', async () => {
    const count = async (Filters: { Name: string; Values: string[] }[]) =>
      (await ec2.send(new DescribeInstancesCommand({ Filters: [...Filters, LIVE] }))).Reservations!.flatMap((r) => r.Instances!).length;
    expect(await count([{ Name: 'instance-type', Values: ['t1.micro'] }])).toBe(3);
    expect(await count([{ Name: 'tag:role', Values: ['db'] }])).toBe(3);
    expect(await count([{ Name: 'tag-key', Values: ['role'] }])).toBe(3);
    expect(await count([{ Name: 'instance-state-name', Values: ['running'] }])).toBe(4);
    expect(await count([{ Name: 'instance-state-code', Values: ['16'] }])).toBe(4);
    expect(await count([{ Name: 'launch-index', Values: ['2'] }])).toBe(1);
    expect(await count([{ Name: 'availability-zone', Values: [zone.zone] }])).toBe(4);
    expect(await count([{ Name: 'group-name', Values: ['default'] }])).toBe(4);
    expect(await count([{ Name: 'image-id', Values: ['emi-*'] }])).toBe(4);
    expect(await count([{ Name: 'instance-id', Values: [ids[0]!] }])).toBe(1);
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'bogus', Values: ['x'] }] })))).toBe('InvalidParameterValue');
  });

  it('groups by reservation and paginates over instances', async () => {
    const all = await ec2.send(new DescribeInstancesCommand({ Filters: [LIVE] }));
    expect(all.Reservations!.map((r) => r.Instances!.length).sort()).toEqual([1, 3]);
    // Over every visible instance (terminated ones of earlier tests included): several pages.
    const everything = (await ec2.send(new DescribeInstancesCommand({}))).Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId!));
    expect(everything.length).toBeGreaterThan(5);
    const seen: string[] = [];
    let pages = 0;
    for await (const page of paginateDescribeInstances({ client: ec2, pageSize: 5 }, {})) {
      pages++;
      const onPage = page.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId!));
      expect(onPage.length).toBeLessThanOrEqual(5);
      seen.push(...onPage);
    }
    expect(pages).toBe(Math.ceil(everything.length / 5));
    expect(seen.sort()).toEqual([...everything].sort());
    expect(seen).toEqual(expect.arrayContaining(ids));
  });

  it('answers NotFound/Malformed for explicit ids and hides other accounts', async () => {
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-00000000000000000'] })))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-xyz'] })))).toBe('InvalidInstanceID.Malformed');
    const a = cloud.ec2(alice);
    expect(await liveInstances(a)).toEqual([]);
    expect((await a.send(new DescribeInstancesCommand({}))).Reservations!.flatMap((r) => r.Instances!).every((i) => i.State?.Name === 'terminated')).toBe(true);
    expect(await codeOf(a.send(new DescribeInstancesCommand({ InstanceIds: [ids[0]!] })))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(a.send(new TerminateInstancesCommand({ InstanceIds: [ids[0]!] })))).toBe('InvalidInstanceID.NotFound');
  });

  it('DescribeInstanceStatus: ok once seen on its node, IncludeAllInstances', async () => {
    await until(async () => {
      const s = await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [ids[0]!] }));
      return s.InstanceStatuses?.[0]?.InstanceStatus?.Status === 'ok';
    });
    const s = await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [ids[0]!] }));
    expect(s.InstanceStatuses![0]).toMatchObject({
      InstanceId: ids[0],
      AvailabilityZone: zone.zone,
      InstanceState: { Name: 'running', Code: 16 },
      SystemStatus: { Status: 'ok', Details: [{ Name: 'reachability', Status: 'passed' }] },
    });
  });
});

describe('state changes', () => {
  afterEach(terminateAll);

  it('stop → stopped, start → running, reboot, IncorrectInstanceState', async () => {
    const id = (await run()).Instances![0]!.InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [id] });
    expect(await codeOf(ec2.send(new StartInstancesCommand({ InstanceIds: [id] })))).toBe('IncorrectInstanceState');
    await ec2.send(new RebootInstancesCommand({ InstanceIds: [id] }));
    expect(zone.actions.some((a) => a.instanceId === id && a.action === 'reboot')).toBe(true);
    const stop = await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    expect(stop.StoppingInstances![0]).toMatchObject({ InstanceId: id, PreviousState: { Name: 'running', Code: 16 }, CurrentState: { Name: 'stopping', Code: 64 } });
    await waitUntilInstanceStopped({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [id] });
    const d = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
    expect(d.StateReason).toEqual({ Code: 'Client.UserInitiatedShutdown', Message: 'Client.UserInitiatedShutdown: User initiated shutdown' });
    expect(d.StateTransitionReason).toMatch(/^User initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)$/);
    expect(await codeOf(ec2.send(new StopInstancesCommand({ InstanceIds: [id] })))).toBe('IncorrectInstanceState');
    expect(await codeOf(ec2.send(new RebootInstancesCommand({ InstanceIds: [id] })))).toBe('IncorrectInstanceState');
    const start = await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
    expect(start.StartingInstances![0]).toMatchObject({ PreviousState: { Name: 'stopped' }, CurrentState: { Name: 'pending' } });
    await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [id] });
    const t = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(t.TerminatingInstances![0]).toMatchObject({ PreviousState: { Name: 'running' }, CurrentState: { Name: 'shutting-down', Code: 32 } });
    await waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [id] });
    const again = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(again.TerminatingInstances![0]).toMatchObject({ PreviousState: { Name: 'terminated' }, CurrentState: { Name: 'terminated', Code: 48 } });
    expect(await codeOf(ec2.send(new StartInstancesCommand({ InstanceIds: [id] })))).toBe('IncorrectInstanceState');
  });

  it('DisableApiTermination refuses TerminateInstances', async () => {
    const id = (await run({ DisableApiTermination: true })).Instances![0]!.InstanceId!;
    expect(await codeOf(ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] })))).toBe('OperationNotPermitted');
    expect(await state(id)).not.toBe('shutting-down');
    await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, DisableApiTermination: { Value: false } }));
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
  });

  it('guest-initiated shutdown follows InstanceInitiatedShutdownBehavior', async () => {
    const id = (await run({ InstanceInitiatedShutdownBehavior: 'terminate' })).Instances![0]!.InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [id] });
    zone.domains.set(id, 'shutoff');
    await zone.emit(id, 'stopped', { guestInitiated: true });
    await waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [id] });
    const d = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
    expect(d.StateReason?.Code).toBe('Client.InstanceInitiatedShutdown');
    // A stale `running` after terminated changes nothing.
    await zone.emit(id, 'running');
    await new Promise((r) => setTimeout(r, 500));
    expect(await state(id)).toBe('terminated');
  });

  it('a failed launch ends terminated with the reason', async () => {
    zone.publishEvents = false;
    const id = (await run()).Instances![0]!.InstanceId!;
    zone.publishEvents = true;
    await zone.emit(id, 'failed', { reason: { code: 'Server.InternalError', message: 'virDomainCreate: /var/lib/koala/instances/root.qcow2: Permission denied' } });
    await until(async () => (await state(id)) === 'terminated');
    // The node's text (host paths, libvirt) stays in the CLC log under a reference; the owner sees a generic message with it.
    const d = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
    expect(d.StateReason).toEqual({ Code: 'Server.InternalError', Message: expect.stringMatching(/^An internal error has occurred \(request id [0-9a-f-]+\)\.$/) });
  });

  it('console output and attributes', async () => {
    zone.publishEvents = false;
    const id = (await run({ UserData: Buffer.from('one').toString('base64') })).Instances![0]!.InstanceId!;
    const pending = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id }));
    expect(pending.Output ?? '').toBe('');
    // Let the fake NC's own "running" (100 ms after placement) pass while events are off, so the
    // only running event is ours and nothing from the launch arrives after the stop below.
    await new Promise((r) => setTimeout(r, 500));
    zone.publishEvents = true;
    await zone.emit(id, 'running');
    await until(async () => (await state(id)) === 'running');
    const out = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: true }));
    expect(Buffer.from(out.Output!, 'base64').toString()).toContain(`instance-id: ${id}`);
    expect(out.Timestamp).toBeInstanceOf(Date);

    const attr = (Attribute: string) => ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: Attribute as never }));
    expect((await attr('instanceType')).InstanceType?.Value).toBe('m1.small');
    expect(Buffer.from((await attr('userData')).UserData!.Value!, 'base64').toString()).toBe('one');
    expect((await attr('disableApiTermination')).DisableApiTermination?.Value).toBe(false);
    expect((await attr('instanceInitiatedShutdownBehavior')).InstanceInitiatedShutdownBehavior?.Value).toBe('stop');
    expect(await codeOf(ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, InstanceType: { Value: 'm1.medium' } })))).toBe('IncorrectInstanceState');
    expect(await codeOf(ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, UserData: { Value: Buffer.from('two') } })))).toBe('IncorrectInstanceState');
    await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, InstanceInitiatedShutdownBehavior: { Value: 'terminate' } }));
    expect((await attr('instanceInitiatedShutdownBehavior')).InstanceInitiatedShutdownBehavior?.Value).toBe('terminate');
    await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    // Generous: on a loaded CI machine the stop may take a reconciliation round to settle.
    await until(async () => (await state(id)) === 'stopped', 90_000);
    await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, InstanceType: { Value: 'm1.medium' } }));
    await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, UserData: { Value: Buffer.from('two') } }));
    expect((await attr('instanceType')).InstanceType?.Value).toBe('m1.medium');
    expect(Buffer.from((await attr('userData')).UserData!.Value!, 'base64').toString()).toBe('two');
    expect(await codeOf(ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, InstanceType: { Value: 'x9.huge' } })))).toBe('InvalidParameterValue');
  }, 150_000);
});

describe('events and reconciliation', () => {
  it('a correction computed from an older snapshot never undoes a newer state', async () => {
    const id = (await run()).Instances![0]!.InstanceId!;
    await until(async () => (await state(id)) === 'running');
    const repo = cloud.dataSource.getRepository(InstanceEntity);
    const snapshot = (await repo.findOneByOrFail({ id }))!;
    await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    await until(async () => (await state(id)) === 'stopped');
    // The reconciler saw `running` before the stop completed and now "corrects" to running.
    const lifecycle = cloud.app.get(InstanceLifecycleService);
    const decision = await lifecycle.applyEvent({ instanceId: id, node: snapshot.node!, state: 'running', at: new Date().toISOString() }, { unless: snapshot });
    expect(decision).toMatchObject({ kind: 'ignore', why: 'stale' });
    expect(await state(id)).toBe('stopped');
    expect(await lifecycle.fail(id, { code: 'Server.InternalError', message: 'x' }, { unless: snapshot })).toBe(false);
    expect(await state(id)).toBe('stopped');
  });

  afterEach(terminateAll);

  it('replays events published while the CLC was not consuming', async () => {
    const consumerSvc = cloud.app.get(InstanceEventsConsumer);
    zone.publishEvents = false;
    const id = (await run()).Instances![0]!.InstanceId!;
    consumerSvc.stop();
    zone.publishEvents = true;
    await zone.emit(id, 'running');
    await new Promise((r) => setTimeout(r, 300));
    expect(await state(id)).toBe('pending');
    await consumerSvc.start();
    await until(async () => (await state(id)) === 'running');
  });

  it('terminates a domain nobody owns after the grace period', async () => {
    const stray = 'i-00000000000000f00';
    zone.domains.set(stray, 'running');
    // Reconciliation covers the zones this cloud launched into.
    await run();
    await until(async () => zone.actions.some((a) => a.instanceId === stray && a.action === 'terminate'));
    expect(zone.domains.has(stray)).toBe(false);
  });

  it('marks instances on a down node impaired, and ok again when it returns', async () => {
    const id = (await run()).Instances![0]!.InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { InstanceIds: [id] });
    const status = async () => (await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [id] }))).InstanceStatuses?.[0];
    await until(async () => (await status())?.SystemStatus?.Status === 'ok');
    zone.nodeState = 'down';
    await until(async () => (await status())?.SystemStatus?.Status === 'impaired');
    expect((await status())!.InstanceStatus!.Details![0]).toMatchObject({ Name: 'reachability', Status: 'failed' });
    expect(await state(id)).toBe('running');
    zone.nodeState = 'up';
    await until(async () => (await status())?.SystemStatus?.Status === 'ok');
  });

  it('corrects a state whose event was lost, and fails an instance whose domain vanished', async () => {
    zone.publishEvents = false;
    const id = (await run()).Instances![0]!.InstanceId!;
    // The domain runs but no event arrives: corrected to running after the grace period.
    await until(async () => (await state(id)) === 'running');
    zone.domains.delete(id);
    await until(async () => (await state(id)) === 'terminated');
    const d = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
    expect(d.StateReason?.Code).toBe('Server.InternalError');
  }, 30_000);
});
