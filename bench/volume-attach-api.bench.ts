/**
 * AttachVolume -> attached through the EC2 API against a bare export plus attach of the same kind
 * of disk, on one node (the issue-12 target: ratio ≤ 1.2). Prints medians and the ratio; asserts
 * nothing about timings.
 *
 * Koala: the real CLC, CC, SC and NC (qemu:///system, one tiny-linux guest) on a private NATS
 * server and the machine's tgtd, driven with @aws-sdk/client-ec2. Each round a new 1 GiB volume
 * is created and waited for (not timed); the clock runs from AttachVolume until DescribeVolumes
 * (every 20 ms) shows the attachment `attached`: the CLC's checks, the SC's tgt export with CHAP,
 * the NC's secret and live hot-plug, the state written back. Detach and delete are not timed.
 *
 * Bare: a 1 GiB sparse file and the disk's libvirt CHAP secret made before the clock; timed:
 * `tgtadm` target, LUN, initiator binding, account and its binding (what the SC runs), then
 * attachDevice(LIVE|CONFIG) of the iSCSI disk to the same guest. Undone after each round.
 * Rounds alternate Koala / bare.
 *
 * Run (root; PostgreSQL, libvirtd, tgtd, nats-server):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/volume-jest.config.js bench/volume-attach-api.bench.ts
 * Knobs: BENCH_ROUNDS=7
 */
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { INestApplicationContext } from '@nestjs/common';
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  GetConsoleOutputCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilInstanceTerminated,
  waitUntilVolumeAvailable,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { nodeInitiatorIqn, volumeTargetIqn } from '@koala/contracts';
import { Libvirt, VIR_DOMAIN_AFFECT_CONFIG, VIR_DOMAIN_AFFECT_LIVE, buildDiskXml, buildSecretXml, parseDomainXml } from '@koala/libvirt';
import { startDaemon } from '@koala/runtime';
import { clusterModule } from '../apps/cluster-controller/src/cluster.module.js';
import { nodeModule } from '../apps/node-controller/src/node.module.js';
import { volumeSecretUsage, volumeSerial } from '../apps/node-controller/src/volumes/volume-attacher.js';
import { execRunner } from '../apps/storage-controller/src/iscsi/command-runner.js';
import { TgtAdmin } from '../apps/storage-controller/src/iscsi/tgt-admin.js';
import { storageModule } from '../apps/storage-controller/src/storage.module.js';
import { startCloud, type TestCloud } from '../test/support/cloud.js';
import { TestNatsServer } from '../test/support/nats-server.js';
import { TINY_LINUX_DIR, fmt, importTinyLinux, removeTaggedPools, stats, until } from './instances-support.js';

jest.setTimeout(3_600_000);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const tag = randomBytes(3).toString('hex');
const GiB = 1024 ** 3;

it('AttachVolume -> attached through the EC2 API vs bare tgtadm export + attachDevice (one node)', async () => {
  const zone = `bva-${tag}`;
  const node = `${zone}-n1`;
  const homes: string[] = [];
  const daemons: INestApplicationContext[] = [];
  const tgt = new TgtAdmin(execRunner);
  let nats: TestNatsServer | undefined;
  let cloud: TestCloud | undefined;
  let ec2: EC2Client | undefined;
  let lv: Libvirt | undefined;
  let instanceId: string | undefined;
  const volumes: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'koala-bench-attach-'));
  chmodSync(work, 0o755);
  try {
    execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), TINY_LINUX_DIR], { stdio: 'ignore', timeout: 600_000 });
    nats = await TestNatsServer.start();
    cloud = await startCloud({ natsUrl: nats.url });
    ec2 = cloud.ec2();
    lv = await Libvirt.connect({ uri: 'qemu:///system' });
    const env = (extra: Record<string, string>): KoalaConfig => {
      const home = mkdtempSync(join(tmpdir(), 'koala-bench-'));
      chmodSync(home, 0o755);
      homes.push(home);
      return loadConfig({ KOALA_HOME: home, KOALA_NATS_URL: nats!.url, KOALA_ZONE: zone, KOALA_LOG_LEVEL: process.env.KOALA_TEST_LOG_LEVEL ?? 'warn', KOALA_HEARTBEAT_MS: '500', ...extra });
    };
    daemons.push((await startDaemon('cluster-controller', clusterModule, { zoned: true, config: env({}) })).app);
    const nc = env({ KOALA_NODE_NAME: node, KOALA_LIBVIRT_URI: 'qemu:///system', KOALA_IMAGE_CACHE_POOL: `koala-bench-img-${tag}`, KOALA_NC_INSTANCES_POOL: `koala-bench-inst-${tag}` });
    daemons.push((await startDaemon('node-controller', (c) => nodeModule(c), { zoned: true, config: nc })).app);
    const sc = env({ KOALA_VOLUMES_POOL: `koala-bench-vol-${tag}`, KOALA_SNAPSHOTS_POOL: `koala-bench-snap-${tag}` });
    daemons.push((await startDaemon('storage-controller', (c) => storageModule(c), { zoned: true, config: sc })).app);

    const imageId = await importTinyLinux(cloud.config, `tiny-${tag}`);
    const run = () => ec2!.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1, InstanceType: 'm1.small', Placement: { AvailabilityZone: zone } })).catch(() => undefined);
    instanceId = (await until('a node in the zone', run, 60_000, 500)).Instances![0]!.InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 240, minDelay: 1, maxDelay: 2 }, { InstanceIds: [instanceId] });
    // Hot-unplug needs the guest's kernel up (it must release the device).
    const consoleText = async () => {
      const r = await ec2!.send(new GetConsoleOutputCommand({ InstanceId: instanceId, Latest: true }));
      return r.Output ? Buffer.from(r.Output, 'base64').toString('utf8') : '';
    };
    await until('the guest booted', async () => (await consoleText()).includes('TINY-LINUX-BOOTED'), 300_000, 500);
    const dom = await lv.lookupDomainByName(instanceId);

    const attachedState = async (id: string) => (await ec2!.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0]!.Attachments?.[0]?.State;
    const koala: number[] = [];
    const bare: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Koala
      const volumeId = (await ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone, Size: 1 }))).VolumeId!;
      volumes.push(volumeId);
      await waitUntilVolumeAvailable({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 1 }, { VolumeIds: [volumeId] });
      let t0 = performance.now();
      await ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: '/dev/sdf' }));
      await until(`${volumeId} attached`, async () => (await attachedState(volumeId)) === 'attached', 120_000, 20);
      koala.push(performance.now() - t0);
      await ec2.send(new DetachVolumeCommand({ VolumeId: volumeId }));
      await waitUntilVolumeAvailable({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 1 }, { VolumeIds: [volumeId] });
      await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
      volumes.splice(volumes.indexOf(volumeId), 1);

      // Bare: the same steps by hand
      const bareId = `vol-${randomBytes(9).toString('hex').slice(0, 17)}`;
      const file = join(work, `${bareId}.img`);
      const fd = openSync(file, 'w');
      ftruncateSync(fd, GiB);
      closeSync(fd);
      const user = `bench-${randomBytes(6).toString('hex')}`;
      const secret = randomBytes(18).toString('base64url');
      const usage = volumeSecretUsage(instanceId, bareId);
      const sec = await lv.defineSecret(buildSecretXml({ usageType: 'iscsi', usageTarget: usage, private: true }));
      await lv.setSecretValue(sec, secret);
      const diskXml = buildDiskXml({
        kind: 'iscsi',
        iqn: volumeTargetIqn(bareId),
        lun: 1,
        host: '127.0.0.1',
        port: 3260,
        initiatorIqn: nodeInitiatorIqn(node),
        auth: { username: user, secret: { usage } },
        targetDev: 'vdd',
        serial: volumeSerial(bareId),
      });
      let tid: number | undefined;
      try {
        t0 = performance.now();
        tid = await tgt.createTarget(volumeTargetIqn(bareId));
        await tgt.addLun(tid, 1, file);
        await tgt.bindInitiatorName(tid, nodeInitiatorIqn(node));
        await tgt.createAccount(user, secret);
        await tgt.bindAccount(tid, user);
        await lv.attachDevice(dom, diskXml, VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG);
        bare.push(performance.now() - t0);
        await lv.detachDevice(dom, diskXml, VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG);
        await until('the guest to release the bare disk', async () => !parseDomainXml(await lv!.getDomainXml(dom)).disks.some((d) => d.serial === volumeSerial(bareId)), 120_000, 100);
      } finally {
        if (tid !== undefined) await tgt.deleteTarget(tid).catch(() => undefined);
        await tgt.deleteAccount(user).catch(() => undefined);
        await lv.undefineSecret(sec).catch(() => undefined);
        rmSync(file, { force: true });
      }
    }
    const ratio = stats(koala).median / stats(bare).median;
    process.stdout.write(
      `\nvolume attach on one node (qemu:///system, TCG guest) + tgtd, ${ROUNDS} rounds, median (min, max):\n` +
        `  Koala  AttachVolume -> attached (DescribeVolumes every 20 ms)  ${fmt(koala)}\n` +
        `  bare   tgtadm export + CHAP + attachDevice(LIVE|CONFIG)        ${fmt(bare)}\n` +
        `  ratio  Koala / bare                                           ${ratio.toFixed(2)}   (goal ≤ 1.2)\n`,
    );
  } finally {
    for (const v of volumes) {
      await ec2?.send(new DetachVolumeCommand({ VolumeId: v, Force: true })).catch(() => undefined);
      await ec2?.send(new DeleteVolumeCommand({ VolumeId: v })).catch(() => undefined);
    }
    if (instanceId) {
      await ec2?.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })).catch(() => undefined);
      await waitUntilInstanceTerminated({ client: ec2!, maxWaitTime: 120, minDelay: 1, maxDelay: 2 }, { InstanceIds: [instanceId] }).catch(() => undefined);
    }
    for (const d of daemons.reverse()) await d.close().catch(() => undefined);
    if (lv) {
      await removeTaggedPools(lv, tag);
      await lv.close();
    }
    await cloud?.close();
    await nats?.dispose();
    for (const h of [...homes, work]) rmSync(h, { recursive: true, force: true });
  }
});
