// End-to-end test of the NC VolumeAttacher (issue 6) against the machine's libvirtd
// (qemu:///system, TCG) and tgtd (127.0.0.1:3260): a tiny-linux domain is booted, a 64 MiB LUN is
// exported the way the SC does it (target volumeTargetIqn, LUN 1, ACL = nodeInitiatorIqn(node),
// CHAP account), and the attacher is driven through its NATS handlers on a private nats-server.
// The guest prints `BLOCK: vda vdb ...` on its serial console whenever its disks change.
import { jest } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { nodeAttachVolume, nodeDetachVolume, nodeInitiatorIqn, volumeTargetIqn, type IscsiTarget } from '@koala/contracts';
import { DomainState, Libvirt, LibvirtError, SecretUsageType, VIR_DOMAIN_XML_INACTIVE, VIR_ERR_NO_SECRET, buildDomainXml, parseDomainXml, type Domain, type StoragePool } from '@koala/libvirt';
import { createLogger } from '@koala/logging';
import { BusRemoteError, NatsBus, SealKey, sealFor } from '@koala/messaging';
import { execRunner } from '../../apps/storage-controller/src/iscsi/command-runner.js';
import { TgtAdmin } from '../../apps/storage-controller/src/iscsi/tgt-admin.js';
import { VolumeAttacher, volumeSecretUsage, volumeSerial } from '../../apps/node-controller/src/volumes/volume-attacher.js';
import { registerVolumeHandlers } from '../../apps/node-controller/src/volumes/volume-handlers.service.js';
import { TestNatsServer } from '../support/nats-server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE_DIR = join(process.env.KOALA_HOME ?? '/var/lib/koala', 'images/tiny-linux');
const URI = 'qemu:///system';
const ZONE = 'test-zone';
const MiB = 1024 * 1024;

// TCG guests on 2 shared cores, and a libvirtd shared with other tests.
jest.setTimeout(300_000);

const hex = (n: number) =>
  randomBytes(Math.ceil(n / 2))
    .toString('hex')
    .slice(0, n);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function remoteCode(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof BusRemoteError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected the request to fail');
}

async function libvirtCode(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (err) {
    if (err instanceof LibvirtError) return err.code;
    throw err;
  }
}

describe('NC VolumeAttacher (libvirt qemu:///system + tgtd)', () => {
  const node = `koala-test-node-${hex(6)}`;
  const instanceId = `i-${hex(17)}`;
  const stoppedId = `i-${hex(17)}`;
  const volumeId = `vol-${hex(17)}`;
  const badVolumeId = `vol-${hex(17)}`;
  const chapUser = `koala-test-${hex(8)}`;
  const chapSecret = `S3cret-${hex(16)}`;
  const nodeKey = SealKey.generate();
  const poolName = `koala-test-pool-${hex(8)}`;
  const logLines: string[] = [];

  let lv: Libvirt;
  let pool: StoragePool | undefined;
  let dom: Domain;
  let work = '';
  let consoleLog = '';
  let nats: TestNatsServer;
  let bus: NatsBus;
  let attacher: VolumeAttacher;
  const tgt = new TgtAdmin(execRunner);
  const tids = new Map<string, number>();
  const accounts = new Set<string>();

  const consoleText = () => (existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8').replace(/\r/g, '') : '');
  const blockLines = () =>
    consoleText()
      .split('\n')
      .filter((l) => l.startsWith('BLOCK: '));
  const devices = (line: string) => line.slice('BLOCK: '.length).trim().split(/\s+/).filter(Boolean);

  async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; console:\n${consoleText().slice(-2000)}`);
      await sleep(250);
    }
  }

  /** Waits for a BLOCK line after the first `after` ones that satisfies `pred`. */
  const waitBlock = (after: number, pred: (devs: string[]) => boolean, what: string) => waitFor(what, () => blockLines().slice(after).map(devices).find(pred), 120_000);

  /** Exports `volId` like the SC does: target, LUN 1 on a sparse file, ACL = node initiator, CHAP. */
  async function exportVolume(volId: string, password = chapSecret): Promise<IscsiTarget> {
    const file = join(work, `${volId}.img`);
    if (!existsSync(file)) {
      const fd = openSync(file, 'w');
      ftruncateSync(fd, 64 * MiB);
      closeSync(fd);
    }
    const tid = await tgt.createTarget(volumeTargetIqn(volId));
    tids.set(volId, tid);
    await tgt.addLun(tid, 1, file);
    await tgt.bindInitiatorName(tid, nodeInitiatorIqn(node));
    if (!(await tgt.listAccounts()).includes(chapUser)) {
      await tgt.createAccount(chapUser, password);
      accounts.add(chapUser);
    }
    await tgt.bindAccount(tid, chapUser);
    return { iqn: volumeTargetIqn(volId), lun: 1, portal: '127.0.0.1:3260', chapUser, chapSecret: password };
  }

  async function unexportVolume(volId: string) {
    const t = (await tgt.listTargets()).find((x) => x.iqn === volumeTargetIqn(volId));
    if (t) await tgt.deleteTarget(t.tid);
    tids.delete(volId);
  }

  const sessions = async (volId: string) => (await tgt.listTargets()).find((t) => t.iqn === volumeTargetIqn(volId))?.sessions ?? [];
  const liveDisks = async () => parseDomainXml(await lv.getDomainXml(dom)).disks;
  const configDisks = async () => parseDomainXml(await lv.getDomainXml(dom, VIR_DOMAIN_XML_INACTIVE)).disks;
  const secretCode = (volId: string, inst = instanceId) => libvirtCode(lv.lookupSecretByUsage(SecretUsageType.ISCSI, volumeSecretUsage(inst, volId)));

  beforeAll(async () => {
    if (spawnSync('virsh', ['-c', URI, 'list']).status !== 0 || spawnSync('pgrep', ['-x', 'tgtd']).status !== 0) {
      execFileSync('bash', [join(ROOT, 'deploy/scripts/host-services.sh')], { stdio: 'ignore', timeout: 600_000 });
    }
    execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), IMAGE_DIR], { stdio: 'ignore', timeout: 600_000 });

    work = mkdtempSync(join(tmpdir(), 'koala-node-volumes-'));
    chmodSync(work, 0o755); // QEMU runs as libvirt-qemu and must reach the overlay and the log
    consoleLog = join(work, 'console.log');
    lv = await Libvirt.connect({ uri: URI });
    pool = await lv.defineStoragePool(`<pool type='dir'><name>${poolName}</name><target><path>${work}</path></target></pool>`);
    await lv.createStoragePool(pool);
    await lv.createVolume(
      pool,
      `<volume><name>root.qcow2</name><capacity unit='M'>16</capacity><target><format type='qcow2'/></target>` +
        `<backingStore><path>${join(IMAGE_DIR, 'rootfs.img')}</path><format type='raw'/></backingStore></volume>`,
    );
    const spec = (name: string, log: string) =>
      buildDomainXml({
        name,
        type: 'qemu',
        memoryMiB: 128,
        vcpus: 1,
        machine: 'pc',
        boot: { kind: 'kernel', kernel: join(IMAGE_DIR, 'vmlinuz'), initrd: join(IMAGE_DIR, 'initramfs.img'), cmdline: 'root=/dev/vda console=ttyS0' },
        disks: [{ kind: 'volume', pool: poolName, volume: 'root.qcow2', format: 'qcow2', targetDev: 'vda' }],
        serialLog: { path: log, mode: 'file' },
        koala: { instanceId: name, accountId: '000000000000' },
      });
    dom = await lv.defineDomain(spec(instanceId, consoleLog));
    await lv.defineDomain(spec(stoppedId, join(work, 'stopped.log'))); // never started
    dom = await lv.startDomain(dom);

    nats = await TestNatsServer.start();
    bus = await NatsBus.connect({ url: nats.url, name: 'test-nc-volumes', reconnectWaitMs: 200 });
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logLines.push(String(chunk));
        cb();
      },
    });
    attacher = new VolumeAttacher({ libvirt: { get: async () => lv }, node, logger: createLogger('node-controller', 'debug', sink), detachTimeoutMs: 40_000 });
    registerVolumeHandlers(bus, ZONE, node, attacher, [], nodeKey);

    await waitFor('TINY-LINUX-BOOTED', () => consoleText().includes('TINY-LINUX-BOOTED\n'), 180_000);
    await waitFor('first BLOCK line', () => blockLines().length > 0, 120_000);
  }, 900_000);

  afterAll(async () => {
    try {
      await bus?.close();
      await nats?.stop();
      for (const name of [instanceId, stoppedId]) {
        const d = await lv.lookupDomainByName(name).catch(() => undefined);
        if (!d) continue;
        await lv.destroyDomain(d).catch(() => undefined);
        await lv.undefineDomain(d).catch(() => undefined);
      }
      for (const s of await lv.listAllSecrets().catch(() => [])) {
        if (s.usageId.startsWith(volumeSecretUsage(instanceId, '')) || s.usageId.startsWith(volumeSecretUsage(stoppedId, ''))) await lv.undefineSecret(s).catch(() => undefined);
      }
      if (pool) {
        await lv.refreshStoragePool(pool).catch(() => undefined);
        for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
        await lv.destroyStoragePool(pool).catch(() => undefined);
        await lv.undefineStoragePool(pool).catch(() => undefined);
      }
      for (const volId of [volumeId, badVolumeId]) await unexportVolume(volId).catch(() => undefined);
      for (const u of accounts) await tgt.deleteAccount(u).catch(() => undefined);
    } finally {
      await lv?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);

  const attach = (target: IscsiTarget, volId = volumeId, inst = instanceId) =>
    bus.request(nodeAttachVolume(ZONE, node), { instanceId: inst, node, volumeId: volId, device: '/dev/sdf', target }, { timeoutMs: 90_000 });
  const detach = (volId = volumeId, force?: boolean) =>
    bus.request(nodeDetachVolume(ZONE, node), { instanceId, node, volumeId: volId, ...(force === undefined ? {} : { force }) }, { timeoutMs: 90_000 });

  it('hot-plugs the LUN: the guest sees a new disk, CHAP secret only in a private libvirt secret', async () => {
    const before = blockLines();
    expect(devices(before[before.length - 1])).toEqual(['vda']);
    const target = await exportVolume(volumeId);
    // The CLC seals the secret for this node: the request carries no secret in clear.
    const { chapSecret: clear, ...rest } = target;
    const sealed = { ...rest, chapSecretSealed: sealFor(nodeKey.publicKey, clear!, volumeId) };
    expect(JSON.stringify(sealed)).not.toContain(chapSecret);
    expect(await attach({ ...rest, chapSecretSealed: sealFor(SealKey.generate().publicKey, clear!, volumeId) }).catch((e) => e)).toMatchObject({ code: 'Server.ChapSecretUnreadable' });
    expect((await liveDisks()).some((d) => d.serial === volumeSerial(volumeId))).toBe(false);

    const t0 = Date.now();
    expect(await attach(sealed)).toEqual({ guestDevice: 'vdb' });
    const attachMs = Date.now() - t0;
    const seen = await waitBlock(before.length, (d) => d.includes('vdb'), 'BLOCK line with vdb');
    const guestMs = Date.now() - t0;
    expect(seen).toEqual(['vda', 'vdb']);
    process.stdout.write(`attach answered in ${attachMs} ms; guest listed vdb after ${guestMs} ms\n`);

    const disk = (await liveDisks()).find((d) => d.targetDev === 'vdb');
    expect(disk).toMatchObject({
      type: 'network',
      sourceProtocol: 'iscsi',
      sourceName: `${volumeTargetIqn(volumeId)}/1`,
      sourceHosts: [{ name: '127.0.0.1', port: 3260 }],
      initiatorIqn: nodeInitiatorIqn(node),
      authUsername: chapUser,
      authSecretUsage: volumeSecretUsage(instanceId, volumeId),
      serial: volumeSerial(volumeId),
      bus: 'virtio',
    });
    // Persistent too (survives a reboot / restart), and the secret appears in no XML.
    expect((await configDisks()).some((d) => d.serial === volumeSerial(volumeId))).toBe(true);
    expect(await lv.getDomainXml(dom)).not.toContain(chapSecret);
    expect(await lv.getDomainXml(dom, VIR_DOMAIN_XML_INACTIVE)).not.toContain(chapSecret);
    // The secret exists, is private (its value cannot be read back) and persistent.
    const secret = await lv.lookupSecretByUsage(SecretUsageType.ISCSI, volumeSecretUsage(instanceId, volumeId));
    expect(await libvirtCode(lv.getSecretValue(secret))).not.toBe(0);
    // tgt sees QEMU logged in under this node's initiator name (the ACL admitted it).
    expect(await sessions(volumeId)).toContain(nodeInitiatorIqn(node));

    // Idempotent: the same request (here with the secret in clear, as from an older CLC) answers the same device and plugs nothing new.
    expect(await attach(target)).toEqual({ guestDevice: 'vdb' });
    expect((await liveDisks()).filter((d) => d.serial === volumeSerial(volumeId))).toHaveLength(1);
    expect(logLines.join('')).not.toContain(chapSecret);
  });

  it('keeps the disk when tgt loses the target and the SC re-creates it (tgtd restart)', async () => {
    const blockCount = blockLines().length;
    const oldTid = tids.get(volumeId)!;
    // What an SC sees after a tgtd restart: the target is gone (sessions dropped), then rebuilt.
    await tgt.deleteTarget(oldTid);
    await tgt.deleteAccount(chapUser);
    accounts.delete(chapUser);
    expect(await sessions(volumeId)).toEqual([]);
    await sleep(2000);
    await exportVolume(volumeId);

    // QEMU's iSCSI driver notices the dead connection (NOP-Out every 5 s) and logs in again.
    const t0 = Date.now();
    await waitFor('QEMU to log in to the re-created target', async () => (await sessions(volumeId)).includes(nodeInitiatorIqn(node)), 60_000);
    process.stdout.write(`QEMU re-logged in ${Date.now() - t0} ms after the target came back\n`);

    expect((await lv.getDomainState(dom)).state).toBe(DomainState.RUNNING);
    expect((await liveDisks()).some((d) => d.serial === volumeSerial(volumeId))).toBe(true);
    // I/O through the new session (HMP qemu-io read on the disk's format node, which libvirt
    // names libvirt-<source index>-format; a test-only monitor command, the domain is marked
    // tainted). HMP returns only error reports, not qemu-io's own output. Observed: the first
    // command after the re-login gets a UNIT ATTENTION (BUS RESET) from the new I_T nexus, which
    // QEMU's iSCSI driver reports and retries; the next one is clean.
    const index = /<source protocol='iscsi'[^>]*index='(\d+)'/.exec(await lv.getDomainXml(dom))?.[1];
    expect(index).toBeDefined();
    const qemuRead = () =>
      execFileSync('virsh', ['-q', '-c', URI, 'qemu-monitor-command', '--hmp', instanceId, `qemu-io libvirt-${index}-format "read 1M 4k"`], { encoding: 'utf8', timeout: 60_000 }).trim();
    const first = qemuRead();
    const second = qemuRead();
    process.stdout.write(`qemu-io read after re-login: first ${JSON.stringify(first)}; second ${JSON.stringify(second)}\n`);
    expect(first === '' || /UNIT_ATTENTION/.test(first)).toBe(true);
    expect(second).toBe('');
    // The guest never lost the device: no BLOCK line without vdb.
    expect(
      blockLines()
        .slice(blockCount)
        .map(devices)
        .every((d) => d.includes('vdb')),
    ).toBe(true);
  });

  it('detaches: the guest drops the disk, the secret is undefined; detaching again succeeds', async () => {
    const before = blockLines().length;
    const t0 = Date.now();
    expect(await detach()).toEqual({ accepted: true });
    const detachMs = Date.now() - t0;
    expect(await waitBlock(before, (d) => !d.includes('vdb'), 'BLOCK line without vdb')).toEqual(['vda']);
    process.stdout.write(`detach answered in ${detachMs} ms\n`);
    expect((await liveDisks()).some((d) => d.serial === volumeSerial(volumeId))).toBe(false);
    expect((await configDisks()).some((d) => d.serial === volumeSerial(volumeId))).toBe(false);
    expect(await secretCode(volumeId)).toBe(VIR_ERR_NO_SECRET);
    expect(await detach(volumeId, true)).toEqual({ accepted: true });
    expect(await detach(badVolumeId)).toEqual({ accepted: true });
  });

  it('fails cleanly with a wrong CHAP secret: no secret, no disk left behind', async () => {
    const good = await exportVolume(badVolumeId);
    const wrong = `Wrong-${hex(16)}`;
    const err = await remoteCode(attach({ ...good, chapSecret: wrong }, badVolumeId));
    expect(err.code).toBe('Server.VolumeAttachFailed');
    expect(err.message).not.toContain(wrong);
    process.stdout.write(`wrong CHAP: ${err.message}\n`);
    expect(await secretCode(badVolumeId)).toBe(VIR_ERR_NO_SECRET);
    expect((await liveDisks()).map((d) => d.targetDev)).toEqual(['vda']);
    expect((await configDisks()).map((d) => d.targetDev)).toEqual(['vda']);
    expect(logLines.join('')).not.toContain(wrong);
    await unexportVolume(badVolumeId);
  });

  it("attaches into a stopped instance's persistent config (no login yet) and detaches from it; IncorrectState for an unknown instance", async () => {
    // Still exported since the tgtd-restart test; nothing logs in until the domain starts.
    const target: IscsiTarget = { iqn: volumeTargetIqn(volumeId), lun: 1, portal: '127.0.0.1:3260', chapUser, chapSecret };
    const stopped = await lv.lookupDomainByName(stoppedId);
    const stoppedConfig = async () => parseDomainXml(await lv.getDomainXml(stopped, VIR_DOMAIN_XML_INACTIVE)).disks;
    expect((await lv.getDomainState(stopped)).state).toBe(DomainState.SHUTOFF);
    expect(await attach(target, volumeId, stoppedId)).toEqual({ guestDevice: 'vdb' });
    const disk = (await stoppedConfig()).find((d) => d.serial === volumeSerial(volumeId));
    expect(disk).toMatchObject({ targetDev: 'vdb', sourceProtocol: 'iscsi', sourceName: `${volumeTargetIqn(volumeId)}/1` });
    expect(await secretCode(volumeId, stoppedId)).toBe(0);
    expect((await lv.getDomainState(stopped)).state).toBe(DomainState.SHUTOFF);
    expect(await attach(target, volumeId, stoppedId)).toEqual({ guestDevice: 'vdb' }); // idempotent
    expect(await bus.request(nodeDetachVolume(ZONE, node), { instanceId: stoppedId, node, volumeId }, { timeoutMs: 90_000 })).toEqual({ accepted: true });
    expect((await stoppedConfig()).map((d) => d.targetDev)).toEqual(['vda']);
    expect(await secretCode(volumeId, stoppedId)).toBe(VIR_ERR_NO_SECRET);
    expect((await remoteCode(attach(target, volumeId, `i-${hex(17)}`))).code).toBe('IncorrectState');
  });

  it('a guest that does not release the disk: timeout without Force, removed from the config with Force', async () => {
    const target: IscsiTarget = { iqn: volumeTargetIqn(volumeId), lun: 1, portal: '127.0.0.1:3260', chapUser, chapSecret };
    const before = blockLines().length;
    expect(await attach(target)).toEqual({ guestDevice: 'vdb' });
    await waitBlock(before, (d) => d.includes('vdb'), 'BLOCK line with vdb');
    const impatient = new VolumeAttacher({ libvirt: { get: async () => lv }, node, logger: createLogger('node-controller', 'error'), detachTimeoutMs: 3000 });
    await lv.suspendDomain(dom); // paused vCPUs cannot answer the ACPI eject request
    try {
      const err = await impatient.detach({ instanceId, volumeId }).catch((e: Error & { code?: string }) => e);
      expect((err as { code?: string }).code).toBe('VolumeDetachTimeout');
      expect((await liveDisks()).some((d) => d.serial === volumeSerial(volumeId))).toBe(true);
      expect((await configDisks()).some((d) => d.serial === volumeSerial(volumeId))).toBe(false);
      expect(await secretCode(volumeId)).toBe(0); // kept while the device is live: a retry cleans up
      expect(await impatient.detach({ instanceId, volumeId, force: true })).toEqual({ liveRemoved: false, wasAttached: true });
      expect(await secretCode(volumeId)).toBe(VIR_ERR_NO_SECRET);
    } finally {
      await lv.resumeDomain(dom);
    }
    // Once running again the guest handles the pending eject and the device goes.
    const after = blockLines().length;
    await waitFor('live XML without the disk', async () => !(await liveDisks()).some((d) => d.serial === volumeSerial(volumeId)), 120_000);
    await waitBlock(after, (d) => !d.includes('vdb'), 'BLOCK line without vdb');
    expect(await detach()).toEqual({ accepted: true });
  });

  it('releaseAll undefines the secrets of a destroyed instance', async () => {
    const target: IscsiTarget = { iqn: volumeTargetIqn(volumeId), lun: 1, portal: '127.0.0.1:3260', chapUser, chapSecret };
    expect(await attach(target)).toEqual({ guestDevice: 'vdb' });
    expect(await secretCode(volumeId)).toBe(0);
    await lv.destroyDomain(dom); // what terminate does
    expect(await attacher.releaseAll(instanceId)).toBe(1);
    expect(await secretCode(volumeId)).toBe(VIR_ERR_NO_SECRET);
    expect(await attacher.releaseAll(instanceId)).toBe(0);
    expect(logLines.join('')).not.toContain(chapSecret);
  });
});
