/**
 * Shared set-up of the instances benchmarks (bench/instances-*.bench.ts; not a benchmark itself):
 * a private nats-server, the real CLC in-process (startCloud: fresh PostgreSQL database), one CC
 * and one NC (on `uri`) in a zone of their own, an SDK client, and helpers to import images,
 * launch, wait for `running` by polling DescribeInstances, read the console and terminate.
 * close() terminates what is left, stops everything and removes every domain, volume and pool
 * whose name carries the run's tag.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { DescribeInstancesCommand, GetConsoleOutputCommand, RunInstancesCommand, TerminateInstancesCommand, type EC2Client, type _InstanceType, type Instance } from '@aws-sdk/client-ec2';
import { listNodes } from '@koala/contracts';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { Libvirt } from '@koala/libvirt';
import { NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { runAdminCommand } from '../apps/cloud-controller/src/admin/admin-commands.js';
import { clusterModule } from '../apps/cluster-controller/src/cluster.module.js';
import { nodeModule } from '../apps/node-controller/src/node.module.js';
import { startCloud, type TestCloud } from '../test/support/cloud.js';
import { TestNatsServer } from '../test/support/nats-server.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where the benches build tiny-linux (deploy/images/build-tiny-linux.sh). */
export const TINY_LINUX_DIR = join(tmpdir(), 'koala-test-images', 'tiny-linux');

/** `koala image import` of tiny-linux (kernel, ramdisk, root) as a public image; its emi id. */
export async function importTinyLinux(config: KoalaConfig, name: string, dir = TINY_LINUX_DIR): Promise<string> {
  let out = '';
  let err = '';
  const args = ['image', 'import', '--name', name, '--public', '--kernel', join(dir, 'vmlinuz'), '--ramdisk', join(dir, 'initramfs.img'), '--root', join(dir, 'rootfs.img')];
  const code = await runAdminCommand(config, args, { out: (s) => (out += s), err: (s) => (err += s) });
  if (code !== 0) throw new Error(`image import failed (${code}): ${err}`);
  return out.match(/emi-[0-9a-f]{17}/)![0];
}

/** Removes every storage pool whose name holds `tag`, volumes first (best effort). */
export async function removeTaggedPools(lv: Libvirt, tag: string): Promise<void> {
  for (const pool of await lv.listAllStoragePools().catch(() => [])) {
    if (!pool.name.includes(tag)) continue;
    await lv.refreshStoragePool(pool).catch(() => undefined);
    for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
    await lv.destroyStoragePool(pool).catch(() => undefined);
    await lv.undefineStoragePool(pool).catch(() => undefined);
  }
}

/** Median, min and max of a sample (median of an even sample: the mean of the middle two). */
export function stats(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { median: m, min: s[0]!, max: s[s.length - 1]! };
}

/** `median (min .. max)` in ms. */
export function fmt(xs: number[]): string {
  const { median, min, max } = stats(xs);
  return `${median.toFixed(0).padStart(7)} ms  (min ${min.toFixed(0)}, max ${max.toFixed(0)})`;
}

export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 300_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface BenchCloud {
  tag: string;
  zone: string;
  node: string;
  cloud: TestCloud;
  ec2: EC2Client;
  /** qemu:///system (or the NC's uri), for the bare-libvirt side and the clean-up. */
  lv: Libvirt;
  nc: { app: INestApplicationContext; config: KoalaConfig };
  /** A scratch directory (0755, so QEMU can read what is put there); removed by close(). */
  work: string;
  importImage(args: string[]): Promise<string[]>;
  /** RunInstances of one instance of `image` in the bench zone; its instance id. */
  launch(image: string, type?: string): Promise<string>;
  describe(id: string): Promise<Instance>;
  /** Polls DescribeInstances every `everyMs` until `running` (throws on terminated). */
  waitRunning(id: string, everyMs?: number): Promise<void>;
  consoleText(id: string): Promise<string>;
  /** TerminateInstances and poll until `terminated`. */
  terminate(id: string): Promise<void>;
  close(): Promise<void>;
}

export async function startBenchCloud(opts: { uri?: string; ncEnv?: Record<string, string> } = {}): Promise<BenchCloud> {
  const uri = opts.uri ?? 'qemu:///system';
  const tag = randomBytes(3).toString('hex');
  const zone = `bench-${tag}`;
  const node = `${zone}-n1`;
  const homes: string[] = [];
  const daemons: INestApplicationContext[] = [];
  const work = mkdtempSync(join(tmpdir(), 'koala-bench-inst-'));
  chmodSync(work, 0o755);
  let nats: TestNatsServer | undefined;
  let cloud: TestCloud | undefined;
  let lv: Libvirt | undefined;
  const env = (extra: Record<string, string>): KoalaConfig => {
    const home = mkdtempSync(join(tmpdir(), 'koala-bench-'));
    chmodSync(home, 0o755); // QEMU runs as libvirt-qemu and must reach $KOALA_HOME/instances
    homes.push(home);
    return loadConfig({
      KOALA_HOME: home,
      KOALA_NATS_URL: nats!.url,
      KOALA_ZONE: zone,
      KOALA_LOG_LEVEL: process.env.KOALA_TEST_LOG_LEVEL ?? 'warn',
      KOALA_HEARTBEAT_MS: '500',
      KOALA_NODE_TIMEOUT_MS: '5000',
      ...extra,
    });
  };

  const cleanup = async (ec2?: EC2Client) => {
    let ids: string[] = [];
    if (ec2) {
      const left = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] })).catch(() => undefined);
      ids = (left?.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!);
      if (ids.length) {
        await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids })).catch(() => undefined);
        await until(
          'left-over instances terminated',
          async () => {
            const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids })).catch(() => undefined);
            return (r?.Reservations ?? []).flatMap((x) => x.Instances ?? []).every((i) => i.State?.Name === 'terminated');
          },
          120_000,
          500,
        ).catch(() => undefined);
      }
    }
    for (const d of [...daemons].reverse()) await d.close().catch(() => undefined);
    if (lv) {
      for (const dom of await lv.listAllDomains().catch(() => [])) {
        if (ids.includes(dom.name) || dom.name.includes(tag)) {
          await lv.destroyDomain(dom).catch(() => undefined);
          await lv.undefineDomain(dom).catch(() => undefined);
        }
      }
      await removeTaggedPools(lv, tag);
      await lv.close().catch(() => undefined);
    }
    await cloud?.close().catch(() => undefined);
    await nats?.dispose().catch(() => undefined);
    for (const h of [...homes, work]) rmSync(h, { recursive: true, force: true });
  };

  try {
    nats = await TestNatsServer.start();
    cloud = await startCloud({ natsUrl: nats.url, env: { KOALA_RECONCILE_INTERVAL_MS: '2000', KOALA_RECONCILE_GRACE_MS: '60000' } });
    const ec2 = cloud.ec2();
    lv = await Libvirt.connect({ uri });
    const cc = await startDaemon('cluster-controller', clusterModule, { zoned: true, config: env({ KOALA_SCHEDULER_POLICY: 'GREEDY' }) });
    daemons.push(cc.app);
    const ncConfig = env({
      KOALA_NODE_NAME: node,
      KOALA_LIBVIRT_URI: uri,
      KOALA_IMAGE_CACHE_POOL: `koala-bench-img-${tag}`,
      KOALA_NC_INSTANCES_POOL: `koala-bench-inst-${tag}`,
      KOALA_NC_STOP_TIMEOUT_MS: '30000',
      KOALA_IMAGE_CACHE_MAX_BYTES: String(64 * 1024 ** 3),
      ...opts.ncEnv,
    });
    const nc = await startDaemon('node-controller', (c) => nodeModule(c), { zoned: true, config: ncConfig });
    daemons.push(nc.app);
    const bus = await NatsBus.connect({ url: nats.url, name: 'bench-probe' });
    try {
      await until(
        `node ${node} up`,
        async () => {
          const n = (await bus.request(listNodes(zone), {}, { timeoutMs: 3000 }).catch(() => undefined))?.nodes ?? [];
          return n.some((x) => x.node === node && x.state === 'up');
        },
        60_000,
        200,
      );
    } finally {
      await bus.close();
    }

    const describe = async (id: string): Promise<Instance> => {
      const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
      return r.Reservations![0]!.Instances![0]!;
    };
    const c = cloud;
    return {
      tag,
      zone,
      node,
      cloud: c,
      ec2,
      lv,
      nc: { app: nc.app, config: ncConfig },
      work,
      async importImage(args) {
        let out = '';
        let err = '';
        const code = await runAdminCommand(c.config, ['image', 'import', ...args], { out: (s) => (out += s), err: (s) => (err += s) });
        if (code !== 0) throw new Error(`image import failed (${code}): ${err}`);
        return out.match(/e[mkr]i-[0-9a-f]{17}/g) ?? [];
      },
      async launch(image, type = 'm1.small') {
        const r = await ec2.send(new RunInstancesCommand({ ImageId: image, MinCount: 1, MaxCount: 1, InstanceType: type as _InstanceType, Placement: { AvailabilityZone: zone } }));
        return r.Instances![0]!.InstanceId!;
      },
      describe,
      async waitRunning(id, everyMs = 100) {
        await until(
          `${id} running`,
          async () => {
            const i = await describe(id);
            if (i.State?.Name === 'terminated') throw new Error(`${id} terminated: ${i.StateReason?.Code} ${i.StateReason?.Message}`);
            return i.State?.Name === 'running';
          },
          600_000,
          everyMs,
        );
      },
      async consoleText(id) {
        const r = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: true }));
        return r.Output ? Buffer.from(r.Output, 'base64').toString('utf8') : '';
      },
      async terminate(id) {
        await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
        await until(`${id} terminated`, async () => (await describe(id)).State?.Name === 'terminated', 180_000, 200);
      },
      close: () => cleanup(ec2),
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
