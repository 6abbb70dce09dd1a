// The node controller (nodeModule as in production: InstanceManager, LibvirtHostProbe, the real
// image cache and config drive builder) against libvirtd's test driver (test:///default), with a
// private nats-server and zone. On the test driver storage lives in the driver's memory and
// there is no guest (see LibvirtHypervisor): this checks the NC's bookkeeping, events and clean-up.
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SealKey } from '@koala/messaging';
import type { InstanceSpec } from '@koala/contracts';
import { Libvirt } from '@koala/libvirt';
import { TestNatsServer } from '../support/nats-server.js';
import { BlobServer, ZoneWatcher, ncConfig, newInstanceId, startNc } from './nc-harness.js';

jest.setTimeout(120_000);

const URI = 'test:///default';
const tag = randomBytes(4).toString('hex');
const zone = `nc-td-${tag}`;
const node = `node-td-${tag}`;

describe('node controller on test:///default', () => {
  let nats: TestNatsServer;
  let blobs: BlobServer;
  let home: string;
  let watcher: ZoneWatcher;
  let nc: Awaited<ReturnType<typeof startNc>>;
  let lv: Libvirt;
  let spec: (id: string) => InstanceSpec;
  const ids: string[] = [];

  beforeAll(async () => {
    nats = await TestNatsServer.start();
    blobs = await BlobServer.start();
    home = mkdtempSync(join(tmpdir(), 'koala-nc-td-'));
    const root = blobs.add('emi-td', randomBytes(4096));
    spec = (instanceId) => ({
      instanceId,
      reservationId: 'r-0123456789abcdef0',
      accountId: '111122223333',
      instanceType: 'm1.small',
      resources: { vcpus: 2, memoryMiB: 1024, rootDiskGiB: 5, ephemeralGiB: 1 },
      image: { virtualizationType: 'hvm', root },
      userData: Buffer.from('#!/bin/sh\necho hi\n').toString('base64'),
      hostname: 'td-host',
      availabilityZone: zone,
      launchIndex: 0,
    });
    const config = ncConfig({
      KOALA_HOME: home,
      KOALA_NATS_URL: nats.url,
      KOALA_ZONE: zone,
      KOALA_NODE_NAME: node,
      KOALA_LIBVIRT_URI: URI,
      KOALA_IMAGE_CACHE_POOL: `koala-images-${tag}`,
      KOALA_NC_INSTANCES_POOL: `koala-instances-${tag}`,
      KOALA_NC_STOP_TIMEOUT_MS: '2000',
    });
    watcher = await ZoneWatcher.open(nats.url, zone, node);
    nc = await startNc(config);
    lv = await Libvirt.connect({ uri: URI });
  });

  afterAll(async () => {
    for (const id of ids) await watcher?.action(id, 'terminate').catch(() => undefined);
    await nc?.close().catch(() => undefined);
    // Leftovers in the shared test driver (only ours, by name).
    for (const d of (await lv?.listAllDomains().catch(() => [])) ?? []) {
      if (!ids.includes(d.name)) continue;
      await lv.destroyDomain(d).catch(() => undefined);
      await lv.undefineDomain(d).catch(() => undefined);
    }
    for (const p of (await lv?.listAllStoragePools().catch(() => [])) ?? []) {
      if (!p.name.endsWith(tag)) continue;
      for (const v of await lv.listAllVolumes(p).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
      await lv.destroyStoragePool(p).catch(() => undefined);
      await lv.undefineStoragePool(p).catch(() => undefined);
    }
    await lv?.close();
    await watcher?.close();
    await blobs?.close();
    await nats?.dispose();
    rmSync(home, { recursive: true, force: true });
  });

  it('reports the host from libvirt before any instance', async () => {
    const hb = await watcher.heartbeat(() => true);
    expect(hb.hypervisorUri).toBe(URI);
    expect(hb.hypervisor).toMatch(/^TEST /);
    expect(hb.total).toMatchObject({ cores: 16, memoryMiB: 3072 });
    expect(hb.free).toEqual(hb.total);
    // Its public key for CHAP secrets sealed to it; the private half stays root-only in its home.
    expect(SealKey.loadOrCreate(join(home, 'keys', `nc-${hb.node}.pem`)).publicKey).toBe(hb.sealKey);
    expect(statSync(join(home, 'keys', `nc-${hb.node}.pem`)).mode & 0o777).toBe(0o600);
  });

  it('runs an instance: running event, heartbeat with the domain and less free capacity', async () => {
    const id = newInstanceId();
    ids.push(id);
    const t0 = Date.now();
    expect(await watcher.run(spec(id))).toEqual({ accepted: true });
    await expect(watcher.run(spec(id))).rejects.toMatchObject({ code: 'InvalidInstanceID.Duplicate' });
    await watcher.waitForStates(id, ['pending', 'running']);
    console.log(`test driver: runInstance -> running in ${Date.now() - t0} ms`);
    const hb = await watcher.heartbeat((h) => h.domains.some((d) => d.instanceId === id));
    expect(hb.domains.find((d) => d.instanceId === id)).toEqual({ name: id, instanceId: id, state: 'running' });
    expect(hb.free).toEqual({ cores: hb.total.cores - 2, memoryMiB: hb.total.memoryMiB - 1024, diskGiB: Math.max(0, hb.total.diskGiB - 6) });
    const dom = await lv.lookupDomainByName(id);
    expect(await lv.getDomainXml(dom)).toContain('<koala:reservationId>r-0123456789abcdef0</koala:reservationId>');
    const pool = await lv.lookupStoragePoolByName(`koala-instances-${tag}`);
    expect((await lv.listAllVolumes(pool)).map((v) => v.name).sort()).toEqual([`${id}-config.iso`, `${id}-ephemeral.raw`, `${id}-root.qcow2`]);
    // The metadata service's launch record: private (user-data), surviving an NC restart.
    const record = join(home, 'nc', node, 'instances', `${id}.json`);
    expect(statSync(record).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(record, 'utf8'))).toMatchObject({ instanceId: id, imageId: 'emi-td', userData: spec(id).userData, ephemeral: true });
  });

  it('stops, starts, reboots and terminates with events in order; nothing left behind', async () => {
    const id = ids[0];
    await watcher.action(id, 'stop');
    await watcher.waitForStates(id, ['stopping', 'stopped']);
    expect((await lv.getDomainState(await lv.lookupDomainByName(id))).state).toBe(5); // shutoff
    await watcher.heartbeat((h) => h.domains.some((d) => d.instanceId === id && d.state === 'stopped'));
    await watcher.action(id, 'start');
    await watcher.waitForStates(id, ['pending', 'running']);
    await expect(watcher.action(id, 'reboot')).resolves.toEqual({ accepted: true });
    await watcher.action(id, 'stop', true);
    await watcher.waitForStates(id, ['stopping', 'stopped']);
    await expect(watcher.action(id, 'reboot')).rejects.toMatchObject({ code: 'IncorrectInstanceState' });
    await watcher.action(id, 'start');
    await watcher.waitForStates(id, ['pending', 'running']);
    await watcher.action(id, 'terminate');
    await watcher.waitForStates(id, ['shutting-down', 'terminated']);
    expect(watcher.states(id)).toEqual(['pending', 'running', 'stopping', 'stopped', 'pending', 'running', 'stopping', 'stopped', 'pending', 'running', 'shutting-down', 'terminated']);
    expect(watcher.events.some((e) => e.guestInitiated)).toBe(false);
    expect((await lv.listAllDomains()).map((d) => d.name)).not.toContain(id);
    expect(existsSync(join(home, 'nc', node, 'instances', `${id}.json`))).toBe(false);
    const pool = await lv.lookupStoragePoolByName(`koala-instances-${tag}`);
    expect(await lv.listAllVolumes(pool)).toEqual([]);
    const hb = await watcher.heartbeat((h) => !h.domains.some((d) => d.instanceId === id));
    expect(hb.free).toEqual(hb.total);
    // Terminating again (or an unknown id) is idempotent.
    await watcher.action(id, 'terminate');
    await watcher.waitFor('second terminated', () => watcher.states(id).filter((s) => s === 'terminated').length === 2);
  });

  it('reports a domain that stops without being asked as stopped, guestInitiated', async () => {
    const id = newInstanceId();
    ids.push(id);
    await watcher.run(spec(id));
    await watcher.waitForStates(id, ['pending', 'running']);
    await lv.destroyDomain(await lv.lookupDomainByName(id)); // as if the guest powered off
    await watcher.waitForStates(id, ['stopped']);
    expect(watcher.events.filter((e) => e.instanceId === id).at(-1)?.guestInitiated).toBe(true);
    await lv.startDomain(await lv.lookupDomainByName(id));
    await watcher.waitForStates(id, ['stopped', 'running']);
    await watcher.action(id, 'terminate');
    await watcher.waitForStates(id, ['shutting-down', 'terminated']);
  });

  it('answers console output (empty on the test driver: no guest writes it)', async () => {
    const id = newInstanceId();
    ids.push(id);
    await watcher.run(spec(id));
    await watcher.waitForStates(id, ['pending', 'running']);
    expect(await watcher.consoleText(id)).toBe('');
    await watcher.action(id, 'terminate');
    await watcher.waitForStates(id, ['shutting-down', 'terminated']);
    await expect(watcher.consoleText(id)).rejects.toMatchObject({ code: 'InvalidInstanceID.NotFound' });
  });
});
