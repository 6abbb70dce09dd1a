// Issue 5 end to end: the real CLC, CC and NCs (one on qemu:///system booting tiny-linux, the
// others on libvirt's test driver) on a private NATS server, driven with @aws-sdk/client-ec2.
// Covers: launch -> running (SDK waiter) -> console output; reboot; stop/start; terminate leaves
// nothing on the host (checked through libvirt); GREEDY and ROUNDROBIN placement; capacity;
// MinCount/MaxCount; the CC killed during a launch; an NC restarted with a running guest; a
// corrupt image; two launches of one uncached image (one download).
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { INestApplicationContext } from '@nestjs/common';
import {
  DescribeAvailabilityZonesCommand,
  DescribeInstancesCommand,
  GetConsoleOutputCommand,
  RebootInstancesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
  waitUntilInstanceTerminated,
  type EC2Client,
  type _InstanceType,
  type Instance,
} from '@aws-sdk/client-ec2';
import { listDomains, listNodes, type ListNodesResponse } from '@koala/contracts';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { Libvirt, LibvirtError, VIR_ERR_NO_DOMAIN } from '@koala/libvirt';
import { NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { runAdminCommand } from '../../apps/cloud-controller/src/admin/admin-commands.js';
import { clusterModule } from '../../apps/cluster-controller/src/cluster.module.js';
import { IMAGE_CACHE } from '../../apps/node-controller/src/images/image-cache.js';
import type { LibvirtImageCache } from '../../apps/node-controller/src/images/libvirt-image-cache.js';
import { nodeModule } from '../../apps/node-controller/src/node.module.js';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { TestNatsServer } from '../support/nats-server.js';
import { until } from '../support/wait.js';

jest.setTimeout(600_000);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE_DIR = join(tmpdir(), 'koala-test-images', 'tiny-linux');
const tag = randomBytes(3).toString('hex');
const count = (text: string, needle: string) => text.split(needle).length - 1;
/** The guest's init prints its first `BLOCK:` line once it is up (acpid listening), after the banner. */
const upSinceLastBoot = (text: string) => text.lastIndexOf('BLOCK: ') > text.lastIndexOf('TINY-LINUX-BOOTED');

interface Daemon {
  app: INestApplicationContext;
  config: KoalaConfig;
}

describe('instances end to end (CLC + CC + NC on libvirt)', () => {
  let nats: TestNatsServer;
  let cloud: TestCloud;
  let ec2: EC2Client;
  let bus: NatsBus;
  let lv: Libvirt;
  const homes: string[] = [];
  const daemons: Daemon[] = [];
  let imageId: string;

  // Zone Q: ROUNDROBIN, a real QEMU node and a test-driver node. Zone G: GREEDY, two test-driver nodes.
  const zoneQ = `e2e-q-${tag}`;
  const zoneG = `e2e-g-${tag}`;
  const qemuNode = `${zoneQ}-b-qemu`;
  const simNodeQ = `${zoneQ}-a-sim`;
  let ncQemu: Daemon;
  let ccG: Daemon;

  function env(zone: string, extra: Record<string, string> = {}): KoalaConfig {
    const home = mkdtempSync(join(tmpdir(), 'koala-e2e-'));
    chmodSync(home, 0o755); // QEMU runs as libvirt-qemu and must reach $KOALA_HOME/instances
    homes.push(home);
    return loadConfig({ KOALA_HOME: home, KOALA_NATS_URL: nats.url, KOALA_ZONE: zone, KOALA_LOG_LEVEL: 'warn', KOALA_HEARTBEAT_MS: '500', KOALA_NODE_TIMEOUT_MS: '5000', ...extra });
  }

  async function startCc(zone: string, policy: 'GREEDY' | 'ROUNDROBIN'): Promise<Daemon> {
    const config = env(zone, { KOALA_SCHEDULER_POLICY: policy });
    const { app } = await startDaemon('cluster-controller', clusterModule, { zoned: true, config });
    const d = { app, config };
    daemons.push(d);
    return d;
  }

  async function startNc(zone: string, node: string, uri: string, reuse?: KoalaConfig): Promise<Daemon> {
    const config =
      reuse ??
      env(zone, {
        KOALA_NODE_NAME: node,
        KOALA_LIBVIRT_URI: uri,
        KOALA_IMAGE_CACHE_POOL: `koala-test-img-${node}`,
        KOALA_NC_INSTANCES_POOL: `koala-test-inst-${node}`,
        KOALA_NC_STOP_TIMEOUT_MS: '30000',
      });
    const { app } = await startDaemon('node-controller', (c) => nodeModule(c), { zoned: true, config });
    const d = { app, config };
    daemons.push(d);
    return d;
  }

  async function stop(d: Daemon) {
    await d.app.close();
    daemons.splice(daemons.indexOf(d), 1);
  }

  async function nodes(zone: string): Promise<ListNodesResponse['nodes']> {
    return (await bus.request(listNodes(zone), {}, { timeoutMs: 3000 })).nodes;
  }

  async function nodesUp(zone: string, names: string[]) {
    await until(
      async () => {
        const n = await nodes(zone).catch(() => []);
        return names.every((name) => n.some((x) => x.node === name && x.state === 'up'));
      },
      60_000,
      `nodes ${names.join(',')} up in ${zone}`,
      500,
    );
  }

  /** Node running each instance, from the CC's registry (heartbeats list domains per node). */
  async function placement(zone: string, ids: string[]): Promise<Record<string, string>> {
    return until(
      async () => {
        const out: Record<string, string> = {};
        const { nodes, next } = await bus.request(listDomains(zone), {}, { timeoutMs: 3000 });
        expect(next).toBeUndefined(); // two nodes, a few domains: one page
        for (const n of nodes) for (const d of n.domains) if (d.instanceId && ids.includes(d.instanceId)) out[d.instanceId] = n.node;
        return Object.keys(out).length === ids.length && out;
      },
      60_000,
      `placement of ${ids.join(',')}`,
      500,
    );
  }

  async function describeInstance(id: string): Promise<Instance> {
    const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return r.Reservations![0]!.Instances![0]!;
  }

  async function consoleText(id: string): Promise<string> {
    const r = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: true }));
    return r.Output ? Buffer.from(r.Output, 'base64').toString('utf8') : '';
  }

  async function terminateAndWait(ids: string[]) {
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    await waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 180, minDelay: 1, maxDelay: 2 }, { InstanceIds: ids });
  }

  async function launch(zone: string, opts: { min?: number; max?: number; type?: string; userData?: string; image?: string } = {}) {
    return ec2.send(
      new RunInstancesCommand({
        ImageId: opts.image ?? imageId,
        MinCount: opts.min ?? 1,
        MaxCount: opts.max ?? opts.min ?? 1,
        InstanceType: (opts.type ?? 'm1.small') as _InstanceType,
        Placement: { AvailabilityZone: zone },
        UserData: opts.userData === undefined ? undefined : Buffer.from(opts.userData).toString('base64'),
      }),
    );
  }

  async function importImage(args: string[]): Promise<string[]> {
    let out = '';
    let err = '';
    const code = await runAdminCommand(cloud.config, ['image', 'import', ...args], { out: (s) => (out += s), err: (s) => (err += s) });
    if (code !== 0) throw new Error(`image import failed (${code}): ${err}`);
    return out.match(/e[mkr]i-[0-9a-f]{17}/g) ?? [];
  }

  beforeAll(async () => {
    execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), IMAGE_DIR], { stdio: 'ignore' });
    nats = await TestNatsServer.start();
    cloud = await startCloud({ natsUrl: nats.url, env: { KOALA_RECONCILE_INTERVAL_MS: '2000', KOALA_RECONCILE_GRACE_MS: '60000' } });
    ec2 = cloud.ec2();
    bus = await NatsBus.connect({ url: nats.url, name: 'e2e-probe' });
    lv = await Libvirt.connect({ uri: 'qemu:///system' });

    const ids = await importImage([
      '--name',
      `tiny-linux-${tag}`,
      '--public',
      '--kernel',
      join(IMAGE_DIR, 'vmlinuz'),
      '--ramdisk',
      join(IMAGE_DIR, 'initramfs.img'),
      '--root',
      join(IMAGE_DIR, 'rootfs.img'),
    ]);
    imageId = ids.find((i) => i.startsWith('emi-'))!;
    expect(imageId).toBeDefined();

    await startCc(zoneQ, 'ROUNDROBIN');
    ncQemu = await startNc(zoneQ, qemuNode, 'qemu:///system');
    await startNc(zoneQ, simNodeQ, 'test:///default');
    ccG = await startCc(zoneG, 'GREEDY');
    await startNc(zoneG, `${zoneG}-a`, 'test:///default');
    await startNc(zoneG, `${zoneG}-b`, 'test:///default');
    await nodesUp(zoneQ, [qemuNode, simNodeQ]);
    await nodesUp(zoneG, [`${zoneG}-a`, `${zoneG}-b`]);
  });

  afterAll(async () => {
    // Terminate whatever a failed test left running, so no domain outlives the run.
    const left = await ec2?.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] })).catch(() => undefined);
    const ids = (left?.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!);
    if (ids.length) await terminateAndWait(ids).catch(() => undefined);
    for (const d of [...daemons].reverse()) await d.app.close().catch(() => undefined);
    if (lv) {
      for (const dom of await lv.listAllDomains().catch(() => [])) if (ids.includes(dom.name)) await lv.destroyDomain(dom).catch(() => undefined);
      for (const pool of await lv.listAllStoragePools().catch(() => [])) {
        if (!pool.name.includes(tag)) continue;
        for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
        await lv.destroyStoragePool(pool).catch(() => undefined);
        await lv.undefineStoragePool(pool).catch(() => undefined);
      }
      await lv.close();
    }
    await bus?.close();
    await cloud?.close();
    await nats?.dispose();
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  });

  it('lists both zones as available', async () => {
    const zones = (await ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: [zoneQ, zoneG] }))).AvailabilityZones!;
    expect(zones.map((z) => [z.ZoneName, z.State]).sort()).toEqual([
      [zoneG, 'available'],
      [zoneQ, 'available'],
    ]);
  });

  describe('tiny-linux on QEMU', () => {
    let id: string;
    const userData = `hello-koala-${tag}`;

    it('launches, boots, and shows the banner, its instance id and its user-data on the console', async () => {
      // ROUNDROBIN from the start: the first node by name is the test-driver one, so launch two
      // and keep the QEMU one (the other proves ROUNDROBIN spreads them).
      const r = await launch(zoneQ, { min: 2, userData });
      const ids = r.Instances!.map((i) => i.InstanceId!);
      expect(r.Instances!.every((i) => i.State?.Name === 'pending' && i.Placement?.AvailabilityZone === zoneQ)).toBe(true);
      await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 240, minDelay: 1, maxDelay: 2 }, { InstanceIds: ids });
      const where = await placement(zoneQ, ids);
      expect(Object.values(where).sort()).toEqual([simNodeQ, qemuNode].sort());
      id = ids.find((i) => where[i] === qemuNode)!;
      await terminateAndWait(ids.filter((i) => i !== id));

      const text = await until(
        async () => {
          const t = await consoleText(id);
          return t.includes('TINY-LINUX-BOOTED') && t.includes(`INSTANCE-ID: ${id}`) && t.includes(userData) && upSinceLastBoot(t) && t;
        },
        120_000,
        'the boot banner and the first BLOCK line',
        500,
      );
      expect(text).toMatch(/BLOCK: vda/);
      const inst = await describeInstance(id);
      expect(inst).toMatchObject({ InstanceId: id, ImageId: imageId, InstanceType: 'm1.small', State: { Name: 'running', Code: 16 } });
    });

    it('reboots: a second boot on the console, still running', async () => {
      const before = count(await consoleText(id), 'TINY-LINUX-BOOTED');
      await ec2.send(new RebootInstancesCommand({ InstanceIds: [id] }));
      await until(
        async () => {
          const t = await consoleText(id);
          return count(t, 'TINY-LINUX-BOOTED') > before && upSinceLastBoot(t);
        },
        120_000,
        'a second boot, up',
        500,
      );
      expect((await describeInstance(id)).State?.Name).toBe('running');
    });

    it('stops (ACPI) and starts again, booting again', async () => {
      await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
      await waitUntilInstanceStopped({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 2 }, { InstanceIds: [id] });
      const dom = await lv.lookupDomainByName(id);
      expect(await lv.isDomainActive(dom)).toBe(false);
      const stoppedConsole = await consoleText(id);

      await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
      await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 2 }, { InstanceIds: [id] });
      await until(
        async () => {
          const t = await consoleText(id);
          return t !== stoppedConsole && count(t, 'TINY-LINUX-BOOTED') >= 1 && t.lastIndexOf('TINY-LINUX-BOOTED') > t.lastIndexOf('TINY-LINUX-SHUTDOWN');
        },
        120_000,
        'a boot after start',
        500,
      );
    });

    it('keeps the guest when its NC restarts, and the new NC adopts it', async () => {
      const config = ncQemu.config;
      await stop(ncQemu);
      const dom = await lv.lookupDomainByName(id);
      expect(await lv.isDomainActive(dom)).toBe(true); // guests outlive their NC
      ncQemu = await startNc(zoneQ, qemuNode, 'qemu:///system', config);
      await placement(zoneQ, [id]);
      expect((await describeInstance(id)).State?.Name).toBe('running');
    });

    it('terminates, leaving no domain, no volume and no console log on the host', async () => {
      await terminateAndWait([id]);
      const err = await lv.lookupDomainByName(id).catch((e) => e);
      expect(err).toBeInstanceOf(LibvirtError);
      expect(err.code).toBe(VIR_ERR_NO_DOMAIN);
      const pool = await lv.lookupStoragePoolByName(ncQemu.config.ncInstancesPool);
      await lv.refreshStoragePool(pool);
      expect((await lv.listAllVolumes(pool)).map((v) => v.name).filter((n) => n.includes(id))).toEqual([]);
      expect(existsSync(join(ncQemu.config.home, 'console', `${id}.log`))).toBe(false);
      expect((await describeInstance(id)).State).toMatchObject({ Name: 'terminated', Code: 48 });
    });
  });

  describe('placement on test-driver nodes', () => {
    const zoneNodes = () => [`${zoneG}-a`, `${zoneG}-b`];

    afterEach(async () => {
      const r = await ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'availability-zone', Values: [zoneG] },
            { Name: 'instance-state-name', Values: ['pending', 'running'] },
          ],
        }),
      );
      const ids = (r.Reservations ?? []).flatMap((x) => x.Instances ?? []).map((i) => i.InstanceId!);
      if (ids.length) await terminateAndWait(ids);
    });

    it('GREEDY fills the first node before the next', async () => {
      const r = await launch(zoneG, { min: 3, type: 'm1.medium' });
      const ids = r.Instances!.map((i) => i.InstanceId!);
      await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { InstanceIds: ids });
      const where = await placement(zoneG, ids);
      expect(Object.values(where)).toEqual([zoneNodes()[0], zoneNodes()[0], zoneNodes()[0]]);
    });

    it('launches between MinCount and MaxCount as capacity allows, and refuses when MinCount cannot fit', async () => {
      // How many m1.medium (1 vCPU, 512 MiB, 5 GiB disk) the zone can take right now.
      const fit = (await nodes(zoneG)).reduce((n, x) => n + Math.min(x.free.cores, Math.floor(x.free.memoryMiB / 512), Math.floor(x.free.diskGiB / 5)), 0);
      expect(fit).toBeGreaterThan(2);

      const tooMany = await launch(zoneG, { min: fit + 1, type: 'm1.medium' }).catch((e) => e);
      expect(tooMany.name).toBe('InsufficientInstanceCapacity');
      expect(tooMany.$metadata.httpStatusCode).toBe(500);
      const none = await ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'availability-zone', Values: [zoneG] },
            { Name: 'instance-state-name', Values: ['pending', 'running'] },
          ],
        }),
      );
      expect(none.Reservations ?? []).toEqual([]); // nothing half-launched

      const r = await launch(zoneG, { min: 1, max: fit + 5, type: 'm1.medium' });
      expect(r.Instances).toHaveLength(fit);
      expect(r.Instances!.map((i) => i.AmiLaunchIndex)).toEqual([...Array(fit).keys()]);
      const full = await launch(zoneG, { min: 1, type: 'm1.medium' }).catch((e) => e);
      expect(full.name).toBe('InsufficientInstanceCapacity');
    });

    it('two launches of one uncached image download it once', async () => {
      const raw = join(homes[0]!, `disk-${tag}.img`);
      writeFileSync(raw, randomBytes(2 * 1024 * 1024));
      const [hvm] = await importImage(['--name', `hvm-${tag}`, '--public', raw]);
      const stats = () => daemons.filter((d) => d.config.zone === zoneG && d.config.libvirtUri.startsWith('test')).map((d) => (d.app.get(IMAGE_CACHE) as LibvirtImageCache).stats().downloads);
      const before = stats();
      const [a, b] = await Promise.all([launch(zoneG, { image: hvm }), launch(zoneG, { image: hvm })]);
      const ids = [a.Instances![0]!.InstanceId!, b.Instances![0]!.InstanceId!];
      await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { InstanceIds: ids });
      const where = await placement(zoneG, ids);
      expect(new Set(Object.values(where)).size).toBe(1); // GREEDY: same node, same cache
      const after = stats();
      expect(after.reduce((s, n) => s + n, 0) - before.reduce((s, n) => s + n, 0)).toBe(1);
    });

    it('a corrupt image fails the launch cleanly: terminated with a reason, nothing cached', async () => {
      const raw = join(homes[0]!, `corrupt-${tag}.img`);
      writeFileSync(raw, randomBytes(1024 * 1024));
      const [bad] = await importImage(['--name', `corrupt-${tag}`, '--public', raw]);
      // Corrupt the stored blob behind the image store's back: its digest no longer matches.
      const store = join(cloud.home, 'image-store', 'sha256');
      const blob = readdirSync(store)
        .map((f) => join(store, f))
        .find((f) => execFileSync('sha256sum', [f]).toString().split(' ')[0] !== f.split('/').pop())!;
      expect(blob).toBeUndefined(); // all intact so far
      const [digest] = (await cloud.dataSource.query('SELECT blob_sha256 FROM images WHERE id = $1', [bad])).map((r: { blob_sha256: string }) => r.blob_sha256);
      writeFileSync(join(store, digest), randomBytes(1024 * 1024));

      const id = (await launch(zoneG, { image: bad })).Instances![0]!.InstanceId!;
      // (The SDK's terminated waiter gives up on `pending`, so poll.)
      await until(async () => (await describeInstance(id)).State?.Name === 'terminated', 60_000, 'the failed launch to end terminated', 500);
      const inst = await describeInstance(id);
      expect(inst.StateReason?.Code).toBe('Server.InternalError');
      const cached = daemons.filter((d) => d.config.zone === zoneG && d.config.libvirtUri.startsWith('test')).flatMap((d) => (d.app.get(IMAGE_CACHE) as LibvirtImageCache).lruOrder());
      expect(cached).not.toContain(digest);
    });

    it('an instance placed before its CC dies still comes up; the CC restarts and the zone serves again', async () => {
      const r = await launch(zoneG);
      const id = r.Instances![0]!.InstanceId!;
      await stop(ccG); // dies right after placing: the NC already has the work
      await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { InstanceIds: [id] });

      // No CC: the zone does not answer, so it is not a valid zone right now; nothing is launched.
      const down = await launch(zoneG).catch((e) => e);
      expect(['InvalidParameterValue', 'InsufficientInstanceCapacity', 'Unavailable']).toContain(down.name);
      const pending = await ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'availability-zone', Values: [zoneG] },
            { Name: 'instance-state-name', Values: ['pending'] },
          ],
        }),
      );
      expect(pending.Reservations ?? []).toEqual([]);
      ccG = await startCc(zoneG, 'GREEDY');
      await nodesUp(zoneG, zoneNodes());
      const again = await launch(zoneG);
      await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { InstanceIds: [again.Instances![0]!.InstanceId!] });
    });
  });
});
