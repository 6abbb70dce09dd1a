import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import {
  createSnapshot,
  createVolume,
  deleteSnapshot,
  deleteVolume,
  EventSubjects,
  exportVolume,
  storageSealKey,
  listExports,
  nodeInitiatorIqn,
  StorageEvent,
  StorageHeartbeat,
  Subjects,
  unexportVolume,
  volumeTargetIqn,
  type ExportVolumeRequest,
} from '@koala/contracts';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { Libvirt, type StoragePool } from '@koala/libvirt';
import { BusRemoteError, NatsBus, SealKey, sealFor } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { execRunner } from '../../apps/storage-controller/src/iscsi/command-runner.js';
import { TgtAdmin } from '../../apps/storage-controller/src/iscsi/tgt-admin.js';
import { FsPendingJournal } from '../../apps/storage-controller/src/volumes/pending-journal.js';
import { storageModule } from '../../apps/storage-controller/src/storage.module.js';
import { TestNatsServer } from '../support/nats-server.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const id = (prefix: string) => `${prefix}-${randomBytes(8).toString('hex')}`;

async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * The storage controller in-process against the real libvirtd (qemu:///system, private dir
 * pools under a mkdtemp directory) and the real tgtd (127.0.0.1:3260), with a private NATS
 * and a fake CLC answering `listExports`. tgtd is shared with other tests, so its restart is
 * simulated by deleting our target and account behind the SC's back.
 */
describe('storage controller (libvirt dir pool + tgt)', () => {
  const tgt = new TgtAdmin(execRunner);
  const zone = `sc-${process.pid}-${randomBytes(2).toString('hex')}`;
  const home = mkdtempSync(join(tmpdir(), 'koala-sc-'));
  const volumesPool = `koala-test-vols-${process.pid}`;
  const snapshotsPool = `koala-test-snaps-${process.pid}`;
  const node = 'node-a';
  let nats: TestNatsServer;
  let client: NatsBus;
  let lv: Libvirt;
  let app: INestApplicationContext | undefined;
  let config: KoalaConfig;
  const events: StorageEvent[] = [];
  const heartbeats: StorageHeartbeat[] = [];
  /** What the fake CLC answers to listExports. */
  let clcExports: ExportVolumeRequest[] = [];
  const volumeIds: string[] = [];

  const start = async () => {
    app = (await startDaemon('storage-controller', (ctx) => storageModule(ctx), { zoned: true, config })).app;
  };
  const waitFor = (pred: (e: StorageEvent) => boolean, timeoutMs = 60_000) => eventually(() => events.find(pred) ?? Promise.reject(new Error('no such event yet')), timeoutMs);
  const pool = (name: string): Promise<StoragePool> => lv.lookupStoragePoolByName(name);
  const volumeFile = (volumeId: string) => join(home, 'volumes', `${volumeId}.img`);
  const target = async (volumeId: string) => (await tgt.listTargets()).find((t) => t.iqn === volumeTargetIqn(volumeId));
  const newVolume = async (sizeGiB = 1, snapshotId?: string) => {
    const volumeId = id('vol');
    volumeIds.push(volumeId);
    await client.request(createVolume(zone), { volumeId, sizeGiB, snapshotId });
    const ev = await waitFor((e) => e.id === volumeId && e.state !== 'creating');
    expect(ev).toMatchObject({ kind: 'volume', state: 'available', sizeBytes: sizeGiB * GiB, zone });
    return volumeId;
  };

  beforeAll(async () => {
    nats = await TestNatsServer.start();
    config = loadConfig({
      KOALA_NATS_URL: nats.url,
      KOALA_ZONE: zone,
      KOALA_HOME: home,
      KOALA_LOG_LEVEL: 'warn',
      KOALA_HEARTBEAT_MS: '300',
      KOALA_ISCSI_RECONCILE_MS: '300',
      KOALA_VOLUMES_POOL: volumesPool,
      KOALA_SNAPSHOTS_POOL: snapshotsPool,
      KOALA_LIBVIRT_URI: 'qemu:///system',
    });
    client = await NatsBus.connect({ url: nats.url, name: 'test-clc', reconnectWaitMs: 200 });
    client.handle(listExports(), (req) => ({ exports: req.zone === zone ? clcExports : [] }));
    client.subscribe(EventSubjects.volume(zone), StorageEvent, (e) => void events.push(e));
    client.subscribe(Subjects.storageHeartbeat(zone), StorageHeartbeat, (h) => void heartbeats.push(h));
    await client.flush();
    lv = await Libvirt.connect({ uri: 'qemu:///system' });
    await start();
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    for (const v of volumeIds) {
      const t = await target(v).catch(() => undefined);
      if (t) await tgt.deleteTarget(t.tid).catch(() => undefined);
      await tgt.deleteAccount(`chap-${v}`).catch(() => undefined);
    }
    for (const name of [volumesPool, snapshotsPool]) {
      try {
        const p = await pool(name);
        for (const v of await lv.listAllVolumes(p)) await lv.deleteVolume(v).catch(() => undefined);
        await lv.destroyStoragePool(p).catch(() => undefined);
        await lv.undefineStoragePool(p).catch(() => undefined);
      } catch {
        // never created
      }
    }
    await lv?.close();
    await client?.close();
    await nats?.dispose();
    rmSync(home, { recursive: true, force: true });
  }, 60_000);

  it('creates the pools (defined, running, autostart) and reports their real capacity', async () => {
    const p = await pool(volumesPool);
    expect(await lv.getStoragePoolAutostart(p)).toBe(true);
    expect(await lv.getStoragePoolAutostart(await pool(snapshotsPool))).toBe(true);
    const hb = await eventually(() => heartbeats.at(-1) ?? Promise.reject(new Error('no heartbeat')));
    const info = await lv.getStoragePoolInfo(p);
    expect(hb.backend).toBe('dir');
    expect(hb.capacityBytes).toBe(Number(info.capacity));
    expect(hb.availableBytes).toBeLessThanOrEqual(hb.capacityBytes);
  });

  let volumeId: string;
  it('creates a sparse 1 GiB volume (available event); a second request gives the same answer', async () => {
    volumeId = await newVolume(1);
    const st = statSync(volumeFile(volumeId));
    expect(st.size).toBe(GiB);
    expect(st.blocks * 512).toBeLessThan(MiB);
    const n = events.length;
    expect(await client.request(createVolume(zone), { volumeId, sizeGiB: 1 })).toEqual({ accepted: true });
    await eventually(() => expect(events.slice(n).some((e) => e.id === volumeId && e.state === 'available')).toBe(true));
  });

  it('refuses a volume that does not fit with InsufficientVolumeCapacity', async () => {
    const err = await client.request(createVolume(zone), { volumeId: id('vol'), sizeGiB: 1024 * 1024 }).catch((e) => e);
    expect(err).toBeInstanceOf(BusRemoteError);
    expect(err.code).toBe('InsufficientVolumeCapacity');
  });

  const head = randomBytes(3 * MiB + 123);
  const tail = randomBytes(MiB);
  const tailAt = 700 * MiB;
  let snapshotId: string;
  it('snapshots a volume with progress events and restores it into a new volume, byte for byte', async () => {
    const vp = await pool(volumesPool);
    const vol = await lv.lookupVolumeByName(vp, `${volumeId}.img`);
    await lv.uploadVolume(vol, head, { offset: 0 });
    await lv.uploadVolume(vol, tail, { offset: tailAt });

    snapshotId = id('snap');
    expect(await client.request(createSnapshot(zone), { snapshotId, volumeId })).toEqual({ accepted: true });
    const done = await waitFor((e) => e.id === snapshotId && (e.state === 'completed' || e.state === 'error'));
    expect(done).toMatchObject({ kind: 'snapshot', state: 'completed', progress: 100, sizeBytes: GiB });
    const progress = events.filter((e) => e.id === snapshotId && e.state === 'pending').map((e) => e.progress);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress[0]).toBe(0);
    expect([...progress].sort((a, b) => a! - b!)).toEqual(progress);
    // the copy stayed sparse
    expect(statSync(join(home, 'snapshots', `${snapshotId}.img`)).blocks * 512).toBeLessThan(64 * MiB);

    const restored = await newVolume(1, snapshotId);
    const rvol = await lv.lookupVolumeByName(vp, `${restored}.img`);
    expect((await lv.downloadVolume(rvol, { offset: 0, length: head.length })).equals(head)).toBe(true);
    expect((await lv.downloadVolume(rvol, { offset: tailAt, length: tail.length })).equals(tail)).toBe(true);
    expect((await lv.downloadVolume(rvol, { offset: 100 * MiB, length: MiB })).equals(Buffer.alloc(MiB))).toBe(true);
  }, 120_000);

  it('exports a volume to one node with CHAP; idempotent; VolumeInUse for another node', async () => {
    const req = { volumeId, node, initiatorIqn: nodeInitiatorIqn(node), chapUser: `chap-${volumeId}`, chapSecret: 'secret-0123456789' };
    clcExports = [req];
    const answer = await client.request(exportVolume(zone), req);
    expect(answer).toEqual({ iqn: volumeTargetIqn(volumeId), lun: 1, portal: '127.0.0.1:3260', chapUser: req.chapUser }); // the secret is not echoed
    const t = await target(volumeId);
    expect(t).toMatchObject({ luns: [{ lun: 1, backingStore: volumeFile(volumeId) }], acl: [nodeInitiatorIqn(node)], accounts: [req.chapUser] });
    expect(await tgt.listAccounts()).toContain(req.chapUser);

    expect(await client.request(exportVolume(zone), req)).toEqual(answer);
    expect((await target(volumeId))!.tid).toBe(t!.tid);
    const other = await client.request(exportVolume(zone), { ...req, node: 'node-b', initiatorIqn: nodeInitiatorIqn('node-b') }).catch((e) => e);
    expect(other.code).toBe('VolumeInUse');
  });

  it('takes CHAP secrets sealed for its own key (export and listExports), and refuses others', async () => {
    const { sealKey } = await client.request(storageSealKey(zone), {});
    expect(statSync(join(home, 'keys', `sc-${zone}.pem`)).mode & 0o777).toBe(0o600);
    const { chapSecret, ...open } = { volumeId, node, initiatorIqn: nodeInitiatorIqn(node), chapUser: `chap-${volumeId}`, chapSecret: 'secret-0123456789' };
    const sealed = { ...open, chapSecretSealed: sealFor(sealKey, chapSecret, volumeId) };
    clcExports = [sealed]; // the reconcile loop opens these too (the next test rebuilds from them)
    expect(await client.request(exportVolume(zone), sealed)).toEqual({ iqn: volumeTargetIqn(volumeId), lun: 1, portal: '127.0.0.1:3260', chapUser: open.chapUser });
    const notForUs = await client.request(exportVolume(zone), { ...open, chapSecretSealed: sealFor(SealKey.generate().publicKey, chapSecret, volumeId) }).catch((e) => e);
    expect(notForUs).toMatchObject({ code: 'Server.ChapSecretUnreadable' });
    const otherVolume = await client.request(exportVolume(zone), { ...open, chapSecretSealed: sealFor(sealKey, chapSecret, 'vol-00000000000000000') }).catch((e) => e);
    expect(otherVolume).toMatchObject({ code: 'Server.ChapSecretUnreadable' });
    expect(JSON.stringify(notForUs)).not.toContain(chapSecret);
  });

  it('re-creates the target and account when tgtd loses them (simulated restart)', async () => {
    const before = (await target(volumeId))!;
    await tgt.deleteTarget(before.tid);
    await tgt.deleteAccount(`chap-${volumeId}`);
    // The SC rebuilds in steps (target, LUN, ACL, account): wait for the whole of it.
    const complete = async () => {
      const t = await target(volumeId);
      return t && t.luns.length && t.acl.length && t.accounts.length ? t : Promise.reject(new Error('not rebuilt yet'));
    };
    const t = await eventually(complete, 10_000);
    expect(t).toMatchObject({ luns: [{ lun: 1, backingStore: volumeFile(volumeId) }], acl: [nodeInitiatorIqn(node)], accounts: [`chap-${volumeId}`] });
    expect(await tgt.listAccounts()).toContain(`chap-${volumeId}`);
  });

  it('removes a Koala target of its volumes that the CLC does not list, and never touches other targets', async () => {
    const stray = await newVolume(1);
    const tid = await tgt.createTarget(volumeTargetIqn(stray));
    await tgt.addLun(tid, 1, volumeFile(stray));
    const foreignIqn = `iqn.2026-11.dev.koala:not-ours-${process.pid}`;
    const foreign = await tgt.createTarget(foreignIqn);
    try {
      await eventually(async () => expect(await target(stray)).toBeUndefined(), 10_000);
      expect((await tgt.listTargets()).some((x) => x.iqn === foreignIqn)).toBe(true);
      expect(await target(volumeId)).toBeDefined();
    } finally {
      await tgt.deleteTarget(foreign);
    }
  });

  it('unexports: target and account gone (idempotent)', async () => {
    clcExports = [];
    expect(await client.request(unexportVolume(zone), { volumeId })).toEqual({ accepted: true });
    expect(await target(volumeId)).toBeUndefined();
    expect(await tgt.listAccounts()).not.toContain(`chap-${volumeId}`);
    expect(await client.request(unexportVolume(zone), { volumeId })).toEqual({ accepted: true });
  });

  it('after a crash mid-create, a restart removes the partial volume and converges to a complete one', async () => {
    await app!.close();
    app = undefined;
    // What a crash leaves: the journal note and a half-written volume of the right size.
    const crashed = id('vol');
    volumeIds.push(crashed);
    await new FsPendingJournal(join(home, 'storage', 'pending')).add({ op: 'create-volume', volumeId: crashed, sizeGiB: 1, snapshotId });
    const vp = await pool(volumesPool);
    const partial = await lv.createVolume(
      vp,
      `<volume><name>${crashed}.img</name><capacity unit="bytes">${GiB}</capacity><allocation unit="bytes">0</allocation><target><format type="raw"/></target></volume>`,
    );
    await lv.uploadVolume(partial, Buffer.alloc(MiB, 0xee), { offset: 200 * MiB });
    const n = events.length;
    await start();
    const ev = await waitFor((e) => e.id === crashed && events.indexOf(e) >= n);
    expect(ev).toMatchObject({ state: 'available', sizeBytes: GiB });
    const vol = await lv.lookupVolumeByName(vp, `${crashed}.img`);
    expect((await lv.downloadVolume(vol, { offset: 0, length: head.length })).equals(head)).toBe(true);
    expect((await lv.downloadVolume(vol, { offset: 200 * MiB, length: MiB })).equals(Buffer.alloc(MiB))).toBe(true);
    expect(existsSync(join(home, 'storage', 'pending', `${crashed}.json`))).toBe(false);
  }, 120_000);

  it('deletes an exported volume: no file, no target, no account; a missing one is `deleted` too', async () => {
    const req = { volumeId, node, initiatorIqn: nodeInitiatorIqn(node), chapUser: `chap-${volumeId}`, chapSecret: 'secret-0123456789' };
    await client.request(exportVolume(zone), req);
    expect(await target(volumeId)).toBeDefined();
    await client.request(deleteVolume(zone), { volumeId });
    await waitFor((e) => e.id === volumeId && e.state === 'deleted');
    expect(existsSync(volumeFile(volumeId))).toBe(false);
    expect(await target(volumeId)).toBeUndefined();
    expect(await tgt.listAccounts()).not.toContain(req.chapUser);

    const missing = id('vol');
    await client.request(deleteVolume(zone), { volumeId: missing });
    await waitFor((e) => e.id === missing && e.state === 'deleted');
    await client.request(deleteSnapshot(zone), { snapshotId });
    await waitFor((e) => e.id === snapshotId && e.state === 'deleted');
    expect(existsSync(join(home, 'snapshots', `${snapshotId}.img`))).toBe(false);
  });
});
