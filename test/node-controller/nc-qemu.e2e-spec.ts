// The node controller on qemu:///system with the real tiny-linux image, served to
// the real image cache from 127.0.0.1: boot, console output (banner, instance id, user-data),
// ACPI reboot, stop/start, NC restart with a running guest (re-adoption), terminate leaving
// nothing behind (domain, volumes, config drive, console log).
import { jest } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InstanceSpec } from '@koala/contracts';
import { Libvirt } from '@koala/libvirt';
import { TestNatsServer } from '../support/nats-server.js';
import { BlobServer, ZoneWatcher, ncConfig, newInstanceId, startNc } from './nc-harness.js';
import { consoleProtocol } from '../support/console.js';

jest.setTimeout(300_000);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE_DIR = join(process.env.KOALA_HOME ?? '/var/lib/koala', 'images/tiny-linux');
const URI = 'qemu:///system';
const tag = randomBytes(4).toString('hex');
const zone = `nc-q-${tag}`;
const node = `node-q-${tag}`;
const USER_DATA = `#!/bin/sh\necho "hello from koala ${tag}"\n`;

const count = (text: string, needle: string) => text.split(needle).length - 1;

describe('node controller on qemu:///system with tiny-linux', () => {
  let nats: TestNatsServer;
  let blobs: BlobServer;
  let home: string;
  let watcher: ZoneWatcher;
  let nc: Awaited<ReturnType<typeof startNc>> | undefined;
  let lv: Libvirt;
  let config: ReturnType<typeof ncConfig>;
  let spec: InstanceSpec;
  const id = newInstanceId();
  const instancesPool = `koala-instances-${tag}`;

  beforeAll(async () => {
    if (spawnSync('virsh', ['-c', URI, 'list']).status !== 0) execFileSync('bash', [join(ROOT, 'deploy/scripts/host-services.sh')], { stdio: 'ignore', timeout: 600_000 });
    execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), IMAGE_DIR], { stdio: 'ignore', timeout: 600_000 });
    nats = await TestNatsServer.start();
    blobs = await BlobServer.start();
    home = mkdtempSync(join(tmpdir(), 'koala-nc-q-'));
    chmodSync(home, 0o755); // QEMU (libvirt-qemu) reaches the disks in here
    spec = {
      instanceId: id,
      reservationId: 'r-0123456789abcdef0',
      accountId: '111122223333',
      instanceType: 't1.micro',
      resources: { vcpus: 1, memoryMiB: 256, rootDiskGiB: 1, ephemeralGiB: 0 },
      image: {
        virtualizationType: 'paravirtual',
        root: blobs.add('emi-tiny', join(IMAGE_DIR, 'rootfs.img')),
        kernel: blobs.add('eki-tiny', join(IMAGE_DIR, 'vmlinuz')),
        ramdisk: blobs.add('eri-tiny', join(IMAGE_DIR, 'initramfs.img')),
      },
      userData: Buffer.from(USER_DATA).toString('base64'),
      hostname: 'tiny',
      availabilityZone: zone,
      launchIndex: 0,
    };
    config = ncConfig({
      KOALA_HOME: home,
      KOALA_NATS_URL: nats.url,
      KOALA_ZONE: zone,
      KOALA_NODE_NAME: node,
      KOALA_LIBVIRT_URI: URI,
      KOALA_IMAGE_CACHE_POOL: `koala-images-${tag}`,
      KOALA_NC_INSTANCES_POOL: instancesPool,
      KOALA_NC_STOP_TIMEOUT_MS: '60000',
    });
    watcher = await ZoneWatcher.open(nats.url, zone, node);
    nc = await startNc(config);
    lv = await Libvirt.connect({ uri: URI });
  });

  afterAll(async () => {
    await nc?.close().catch(() => undefined);
    if (lv) {
      const dom = await lv.lookupDomainByName(id).catch(() => undefined);
      if (dom) {
        await lv.destroyDomain(dom).catch(() => undefined);
        await lv.undefineDomain(dom).catch(() => undefined);
      }
      for (const name of [instancesPool, `koala-images-${tag}`]) {
        const p = await lv.lookupStoragePoolByName(name).catch(() => undefined);
        if (!p) continue;
        for (const v of await lv.listAllVolumes(p).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
        await lv.destroyStoragePool(p).catch(() => undefined);
        await lv.undefineStoragePool(p).catch(() => undefined);
      }
      await lv.close();
    }
    await watcher?.close();
    await blobs?.close();
    await nats?.dispose();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  const consoleHas = (needle: string, times = 1, timeoutMs = 120_000) =>
    watcher.waitFor(
      `console x${times}: ${needle}`,
      async () => {
        const t = await watcher.consoleText(id);
        return count(t, needle) >= times && t;
      },
      timeoutMs,
    );

  it('launches and boots: running, then banner, instance id and user-data on the console', async () => {
    const t0 = Date.now();
    expect(await watcher.run(spec)).toEqual({ accepted: true });
    await watcher.waitForStates(id, ['pending', 'running'], 120_000);
    const tRunning = Date.now();
    const text = await consoleHas('TINY-LINUX-BOOTED\n');
    const tBooted = Date.now();
    await consoleHas('USER-DATA-END\n', 1, 30_000);
    await consoleHas('BLOCK: vda vdb\n', 1, 30_000); // init is up (acpid listens for the power button)
    const full = consoleProtocol(await watcher.consoleText(id));
    expect(full).toContain(`INSTANCE-ID: ${id}\n`);
    expect(full).toContain(`USER-DATA-BEGIN\n${USER_DATA}USER-DATA-END\n`);
    expect(text.length).toBeGreaterThan(0);
    console.log(`qemu: runInstance -> running ${tRunning - t0} ms (image download + disks + define + start); running -> TINY-LINUX-BOOTED ${tBooted - tRunning} ms`);
    const dom = await lv.lookupDomainByName(id);
    const xml = await lv.getDomainXml(dom);
    expect(xml).not.toContain('<interface');
    expect(xml).toContain('root=/dev/vda console=ttyS0');
    const hb = await watcher.heartbeat((h) => h.domains.some((d) => d.instanceId === id && d.state === 'running'));
    expect(hb.free.memoryMiB).toBe(hb.total.memoryMiB - 256);
  });

  it('reboots (ACPI): a second boot banner in the same console log, still running', async () => {
    await watcher.action(id, 'reboot');
    await consoleHas('TINY-LINUX-BOOTED\n', 2);
    await consoleHas('BLOCK: vda vdb\n', 2, 30_000);
    // libvirt's ACPI reboot presses the power button, then resets the guest instead of powering off.
    expect(await watcher.consoleText(id)).toContain('TINY-LINUX-SHUTDOWN: poweroff');
    expect(watcher.states(id).at(-1)).toBe('running');
  });

  it('stops with ACPI and starts again', async () => {
    const t0 = Date.now();
    await watcher.action(id, 'stop');
    await watcher.waitForStates(id, ['stopping', 'stopped'], 120_000);
    console.log(`qemu: ACPI stop -> stopped ${Date.now() - t0} ms`);
    expect(count(await watcher.consoleText(id), 'TINY-LINUX-SHUTDOWN: poweroff')).toBe(2);
    await watcher.action(id, 'start');
    await watcher.waitForStates(id, ['pending', 'running'], 60_000);
    await consoleHas('TINY-LINUX-BOOTED\n', 3);
    await consoleHas('BLOCK: vda vdb\n', 3, 30_000);
    expect(watcher.events.some((e) => e.guestInitiated)).toBe(false);
  });

  it('a restarted NC adopts the running guest (heartbeat, console, and terminate work)', async () => {
    await nc!.close();
    nc = undefined;
    const dom = await lv.lookupDomainByName(id);
    expect(await lv.isDomainActive(dom)).toBe(true); // the guest kept running
    nc = await startNc(config);
    const hb = await watcher.heartbeat((h) => h.domains.some((d) => d.instanceId === id));
    expect(hb.domains.find((d) => d.instanceId === id)).toEqual({ name: id, instanceId: id, state: 'running' });
    expect(hb.free.memoryMiB).toBe(hb.total.memoryMiB - 256);
    expect(await watcher.consoleText(id)).toContain('TINY-LINUX-BOOTED');
  });

  it('terminates: no domain, no volume in the instances pool, no console log', async () => {
    await watcher.action(id, 'terminate');
    await watcher.waitForStates(id, ['shutting-down', 'terminated'], 60_000);
    expect((await lv.listAllDomains()).map((d) => d.name)).not.toContain(id);
    const pool = await lv.lookupStoragePoolByName(instancesPool);
    await lv.refreshStoragePool(pool);
    expect(await lv.listAllVolumes(pool)).toEqual([]);
    expect(existsSync(join(home, 'console', `${id}.log`))).toBe(false);
    const hb = await watcher.heartbeat((h) => !h.domains.some((d) => d.instanceId === id));
    expect(hb.free).toEqual(hb.total);
  });
});
