// Issue 6 end to end: the real CLC, CC, SC and NC (qemu:///system booting tiny-linux) on a private
// NATS server, the machine's real tgtd, driven with @aws-sdk/client-ec2. A 1 GiB volume is
// attached to a running guest (its BLOCK: line gains the device), detached (the device goes),
// snapshotted, restored to a new volume with equal bytes, and everything is deleted leaving no
// file, no tgt target and no libvirt secret. Faults: tgtd restarted while attached, the SC
// killed mid-create, attach across zones, delete of an attached volume.
import { jest } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { INestApplicationContext } from '@nestjs/common';
import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  GetConsoleOutputCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilSnapshotCompleted,
  waitUntilVolumeAvailable,
  waitUntilVolumeInUse,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { volumeTargetIqn } from '@koala/contracts';
import { Libvirt } from '@koala/libvirt';
import { startDaemon } from '@koala/runtime';
import { runAdminCommand } from '../../apps/cloud-controller/src/admin/admin-commands.js';
import { clusterModule } from '../../apps/cluster-controller/src/cluster.module.js';
import { nodeModule } from '../../apps/node-controller/src/node.module.js';
import { storageModule } from '../../apps/storage-controller/src/storage.module.js';
import { execRunner } from '../../apps/storage-controller/src/iscsi/command-runner.js';
import { TgtAdmin } from '../../apps/storage-controller/src/iscsi/tgt-admin.js';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { CHAP_SECRETS, type ChapSecrets } from '../../apps/cloud-controller/src/volumes/chap-credentials.js';
import { VolumeEntity } from '../../apps/cloud-controller/src/volumes/volume.entity.js';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { TestNatsServer } from '../support/nats-server.js';
import { until } from '../support/wait.js';

jest.setTimeout(600_000);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE_DIR = join(tmpdir(), 'koala-test-images', 'tiny-linux');
const tag = randomBytes(3).toString('hex');
const GiB = 1024 ** 3;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Daemon {
  app: INestApplicationContext;
  config: KoalaConfig;
}

describe('volumes end to end (CLC + CC + SC + NC, tgt over iSCSI, QEMU guest)', () => {
  let nats: TestNatsServer;
  let cloud: TestCloud;
  let ec2: EC2Client;
  let lv: Libvirt;
  const tgt = new TgtAdmin(execRunner);
  const homes: string[] = [];
  const daemons: Daemon[] = [];
  const zone = `e2e-v-${tag}`;
  const otherZone = `e2e-w-${tag}`;
  let sc: Daemon;
  let scConfig: KoalaConfig;
  let imageId: string;
  let instanceId: string;
  let otherInstanceId: string;
  const created: string[] = [];
  // Everything that crosses NATS during the test, to check that CHAP secrets travel sealed.
  let wiretap: NatsConnection;
  const wire: string[] = [];
  async function chapSecretNeverOnTheWire(id: string) {
    const row = await cloud.dataSource.getRepository(VolumeEntity).findOneByOrFail({ id });
    const secret = cloud.app.get<ChapSecrets>(CHAP_SECRETS).open(row.chapSecretEnc!);
    await wiretap.flush();
    expect(secret.length).toBeGreaterThanOrEqual(24);
    expect(wire.filter((m) => m.includes(secret))).toEqual([]);
    expect(wire.some((m) => m.includes(id) && m.includes('chapSecretSealed'))).toBe(true);
  }

  function env(z: string, extra: Record<string, string> = {}): KoalaConfig {
    const home = mkdtempSync(join(tmpdir(), 'koala-e2e-'));
    chmodSync(home, 0o755); // QEMU (libvirt-qemu) must reach the pools under $KOALA_HOME
    homes.push(home);
    return loadConfig({ KOALA_HOME: home, KOALA_NATS_URL: nats.url, KOALA_ZONE: z, KOALA_LOG_LEVEL: 'warn', KOALA_HEARTBEAT_MS: '500', ...extra });
  }

  async function start(kind: 'cluster-controller' | 'node-controller' | 'storage-controller', config: KoalaConfig): Promise<Daemon> {
    const factory = kind === 'cluster-controller' ? clusterModule : kind === 'node-controller' ? (c: never) => nodeModule(c) : (c: never) => storageModule(c);
    const { app } = await startDaemon(kind, factory as never, { zoned: true, config });
    const d = { app, config };
    daemons.push(d);
    return d;
  }

  async function stop(d: Daemon) {
    await d.app.close();
    daemons.splice(daemons.indexOf(d), 1);
  }

  async function consoleText(id: string): Promise<string> {
    const r = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: true }));
    return r.Output ? Buffer.from(r.Output, 'base64').toString('utf8') : '';
  }

  /** The devices of the guest's latest `BLOCK:` line. */
  async function guestDevices(id: string): Promise<string[]> {
    const lines = (await consoleText(id)).split('\n').filter((l) => l.startsWith('BLOCK: '));
    return (lines.at(-1) ?? 'BLOCK: ').slice(7).trim().split(/\s+/).filter(Boolean);
  }

  async function volume(id: string) {
    return (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0]!;
  }

  async function createVolume(sizeGiB: number, snapshotId?: string): Promise<string> {
    const v = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone, Size: snapshotId ? undefined : sizeGiB, SnapshotId: snapshotId }));
    created.push(v.VolumeId!);
    await waitUntilVolumeAvailable({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 1 }, { VolumeIds: [v.VolumeId!] });
    return v.VolumeId!;
  }

  const volumesPool = async () => lv.lookupStoragePoolByName(scConfig.volumesPool);
  const poolVolumes = async (name: string) => {
    const pool = await lv.lookupStoragePoolByName(name);
    await lv.refreshStoragePool(pool);
    return (await lv.listAllVolumes(pool)).map((v) => v.name);
  };

  beforeAll(async () => {
    execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), IMAGE_DIR], { stdio: 'ignore' });
    nats = await TestNatsServer.start();
    wiretap = await natsConnect({ servers: nats.url.replace('nats://', '') });
    wiretap.subscribe('>', { callback: (_e, m) => void wire.push(`${m.subject} ${new TextDecoder().decode(m.data)}`) });
    cloud = await startCloud({ natsUrl: nats.url, env: { KOALA_VOLUME_SWEEP_MS: '1000' } });
    ec2 = cloud.ec2();
    lv = await Libvirt.connect({ uri: 'qemu:///system' });
    let out = '';
    const code = await runAdminCommand(
      cloud.config,
      ['image', 'import', '--name', `tiny-linux-${tag}`, '--public', '--kernel', join(IMAGE_DIR, 'vmlinuz'), '--ramdisk', join(IMAGE_DIR, 'initramfs.img'), '--root', join(IMAGE_DIR, 'rootfs.img')],
      { out: (s) => (out += s), err: () => undefined },
    );
    expect(code).toBe(0);
    imageId = out.match(/emi-[0-9a-f]{17}/)![0];

    await start('cluster-controller', env(zone));
    await start(
      'node-controller',
      env(zone, { KOALA_NODE_NAME: `${zone}-n1`, KOALA_LIBVIRT_URI: 'qemu:///system', KOALA_IMAGE_CACHE_POOL: `koala-test-img-${tag}`, KOALA_NC_INSTANCES_POOL: `koala-test-inst-${tag}` }),
    );
    scConfig = env(zone, { KOALA_VOLUMES_POOL: `koala-test-vol-${tag}`, KOALA_SNAPSHOTS_POOL: `koala-test-snap-${tag}`, KOALA_ISCSI_RECONCILE_MS: '1000' });
    sc = await start('storage-controller', scConfig);
    await start('cluster-controller', env(otherZone));
    await start(
      'node-controller',
      env(otherZone, {
        KOALA_NODE_NAME: `${otherZone}-n1`,
        KOALA_LIBVIRT_URI: 'test:///default',
        KOALA_IMAGE_CACHE_POOL: `koala-test-img-w-${tag}`,
        KOALA_NC_INSTANCES_POOL: `koala-test-inst-w-${tag}`,
      }),
    );

    // One running tiny-linux in each zone (the other zone's on the test driver).
    const launch = async (z: string) =>
      (
        await until(
          () => ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1, InstanceType: 'm1.small', Placement: { AvailabilityZone: z } })).catch(() => undefined),
          30_000,
          `a node in ${z}`,
          500,
        )
      ).Instances![0]!.InstanceId!;
    instanceId = await launch(zone);
    otherInstanceId = await launch(otherZone);
    await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 240, minDelay: 1, maxDelay: 2 }, { InstanceIds: [instanceId, otherInstanceId] });
    await until(async () => (await guestDevices(instanceId)).includes('vda'), 120_000, 'the guest to list its disks', 500);
  });

  afterAll(async () => {
    await ec2?.send(new TerminateInstancesCommand({ InstanceIds: [instanceId, otherInstanceId].filter(Boolean) })).catch(() => undefined);
    await until(
      async () => {
        const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId, otherInstanceId].filter(Boolean) })).catch(() => undefined);
        return !r || (r.Reservations ?? []).flatMap((x) => x.Instances ?? []).every((i) => i.State?.Name === 'terminated');
      },
      120_000,
      'instances terminated',
      500,
    ).catch(() => undefined);
    for (const d of [...daemons].reverse()) await d.app.close().catch(() => undefined);
    if (lv) {
      for (const pool of await lv.listAllStoragePools().catch(() => [])) {
        if (!pool.name.includes(tag)) continue;
        for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
        await lv.destroyStoragePool(pool).catch(() => undefined);
        await lv.undefineStoragePool(pool).catch(() => undefined);
      }
      await lv.close();
    }
    for (const t of await tgt.listTargets().catch(() => [])) if (created.some((v) => t.iqn === volumeTargetIqn(v))) await tgt.deleteTarget(t.tid).catch(() => undefined);
    await cloud?.close();
    await wiretap?.close();
    await nats?.dispose();
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  });

  let volumeId: string;
  let snapshotId: string;
  const pattern = randomBytes(4 * 1024 * 1024);

  it('creates a 1 GiB sparse volume', async () => {
    volumeId = await createVolume(1);
    const v = await volume(volumeId);
    expect(v).toMatchObject({ Size: 1, State: 'available', AvailabilityZone: zone });
    const vol = await lv.lookupVolumeByName(await volumesPool(), `${volumeId}.img`);
    const info = await lv.getVolumeInfo(vol);
    expect(info.capacity).toBe(GiB);
    expect(info.allocation).toBeLessThan(GiB / 16); // sparse
    // Write a pattern at the start through libvirt's stream upload (checked after the snapshot).
    await lv.uploadVolume(vol, pattern, { offset: 0, length: pattern.length });
  });

  it('attaches it to the running guest: the guest sees a new disk; then detaches it', async () => {
    const before = await guestDevices(instanceId);
    await ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: '/dev/sdf' }));
    await waitUntilVolumeInUse({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 1 }, { VolumeIds: [volumeId] });
    const v = await volume(volumeId);
    expect(v.Attachments![0]).toMatchObject({ InstanceId: instanceId, Device: '/dev/sdf', State: 'attached' });
    const after = await until(
      async () => {
        const d = await guestDevices(instanceId);
        return d.length === before.length + 1 && d;
      },
      120_000,
      'a new BLOCK: device',
      500,
    );
    const added = after.filter((d) => !before.includes(d));
    expect(added).toHaveLength(1);
    // The SC and the NC got the CHAP secret sealed for each of them: never in clear on NATS.
    await chapSecretNeverOnTheWire(volumeId);

    // The export: one target, LUN 1, bound to the node's initiator, a CHAP account; the secret in libvirt.
    const target = (await tgt.listTargets()).find((t) => t.iqn === volumeTargetIqn(volumeId))!;
    expect(target.luns).toHaveLength(1);
    expect(target.acl).toEqual([`iqn.2026-11.dev.koala:node:${zone}-n1`]);
    expect(target.accounts).toHaveLength(1);
    const domXml = await lv.getDomainXml(await lv.lookupDomainByName(instanceId));
    expect(domXml).toContain(volumeTargetIqn(volumeId));
    expect(domXml).not.toMatch(/<secret[^>]*value=|password/i);

    await ec2.send(new DetachVolumeCommand({ VolumeId: volumeId }));
    await waitUntilVolumeAvailable({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 1 }, { VolumeIds: [volumeId] });
    await until(async () => !(await guestDevices(instanceId)).includes(added[0]!), 120_000, 'the device to go', 500);
    await until(async () => !(await tgt.listTargets()).some((t) => t.iqn === volumeTargetIqn(volumeId)), 30_000, 'the target to go', 500);
  });

  it('snapshots it and restores a new volume with the same bytes', async () => {
    const s = await ec2.send(new CreateSnapshotCommand({ VolumeId: volumeId, Description: 'e2e' }));
    snapshotId = s.SnapshotId!;
    await waitUntilSnapshotCompleted({ client: ec2, maxWaitTime: 180, minDelay: 1, maxDelay: 2 }, { SnapshotIds: [snapshotId] });
    const restored = await createVolume(1, snapshotId);
    const read = async (id: string) => lv.downloadVolume(await lv.lookupVolumeByName(await volumesPool(), `${id}.img`), { offset: 0, length: pattern.length });
    expect(sha(await read(restored))).toBe(sha(pattern));
    expect(sha(await read(volumeId))).toBe(sha(pattern));
    await ec2.send(new DeleteVolumeCommand({ VolumeId: restored }));
  });

  it('refuses to delete an attached volume, and to attach across zones', async () => {
    await ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: '/dev/sdg' }));
    await waitUntilVolumeInUse({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 1 }, { VolumeIds: [volumeId] });
    const inUse = await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId })).catch((e) => e);
    expect(inUse.name).toBe('VolumeInUse');

    const other = await createVolume(1);
    const mismatch = await ec2.send(new AttachVolumeCommand({ VolumeId: other, InstanceId: otherInstanceId, Device: '/dev/sdf' })).catch((e) => e);
    expect(mismatch.name).toBe('InvalidVolume.ZoneMismatch');
    expect((await volume(other)).State).toBe('available');
    await ec2.send(new DeleteVolumeCommand({ VolumeId: other }));
  });

  it('rebuilds the target after tgtd restarts; the guest keeps the disk', async () => {
    const devices = await guestDevices(instanceId);
    // tgtd ignores SIGTERM while it has targets: kill it, as a crash would, and wait until its
    // management socket stops answering (a killed process may linger as a zombie).
    execFileSync('pkill', ['-KILL', '-x', 'tgtd']);
    await until(
      async () =>
        !(await tgt.listTargets().then(
          () => true,
          () => false,
        )),
      20_000,
      'tgtd to be gone',
      500,
    );
    spawn('tgtd', ['--iscsi', 'portal=127.0.0.1:3260'], { detached: true, stdio: 'ignore' }).unref();
    const target = await until(
      async () => (await tgt.listTargets().catch(() => [])).find((t) => t.iqn === volumeTargetIqn(volumeId) && t.luns.length && t.acl.length && t.accounts.length),
      60_000,
      'the SC to rebuild the whole target (LUN, ACL, account)',
      500,
    );
    expect(target.luns).toHaveLength(1);
    await until(async () => (await tgt.listTargets()).find((t) => t.iqn === volumeTargetIqn(volumeId))?.sessions.length, 60_000, 'the guest to log in again', 500);
    expect(await guestDevices(instanceId)).toEqual(devices);
    expect((await volume(volumeId)).State).toBe('in-use');
    await chapSecretNeverOnTheWire(volumeId); // listExports too
  });

  it('converges when the SC is killed in the middle of a create', async () => {
    const v = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone, Size: 100 }));
    created.push(v.VolumeId!);
    await stop(sc); // the create was accepted; the SC dies before (or while) doing it
    sc = await start('storage-controller', scConfig);
    await waitUntilVolumeAvailable({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 1 }, { VolumeIds: [v.VolumeId!] });
    const names = await poolVolumes(scConfig.volumesPool);
    expect(names.filter((n) => n.startsWith(v.VolumeId!))).toEqual([`${v.VolumeId}.img`]);
    await ec2.send(new DeleteVolumeCommand({ VolumeId: v.VolumeId! }));
  });

  it('deletes everything and leaves no file, no target, no secret', async () => {
    await ec2.send(new DetachVolumeCommand({ VolumeId: volumeId }));
    await waitUntilVolumeAvailable({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 1 }, { VolumeIds: [volumeId] });
    await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
    await until(async () => (await poolVolumes(scConfig.volumesPool)).length === 0, 60_000, 'every volume file to go', 500);
    await until(async () => (await poolVolumes(scConfig.snapshotsPool)).length === 0, 60_000, 'the snapshot file to go', 500);
    expect((await tgt.listTargets()).filter((t) => created.some((id) => t.iqn === volumeTargetIqn(id)))).toEqual([]);
    expect((await lv.listAllSecrets()).filter((s) => s.usageId.includes(instanceId))).toEqual([]);
  });
});
