/**
 * AttachVolume-to-attached time on one node: the NC's VolumeAttacher (domain checks, live and
 * config XML reads, a private libvirt CHAP secret defined and set, iSCSI disk hot-plugged
 * LIVE|CONFIG) vs a bare libvirt attachDevice(LIVE|CONFIG) of the same disk XML (secret defined
 * beforehand, outside the timing). "Attached" = the call returned (libvirt and QEMU logged in
 * to the target and plugged the device); each round detaches again (not timed) and waits for
 * the guest to release the disk. Prints medians and the ratio; asserts nothing about timings.
 *
 * Run (as root, libvirtd + tgtd up: `bash deploy/scripts/host-services.sh`):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/volume-jest.config.js
 * Knobs (environment): BENCH_ROUNDS=10
 *
 * A tiny-linux TCG domain is booted for it; a 64 MiB sparse LUN is exported with tgtadm the
 * way the SC does; everything is removed afterwards.
 */
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeInitiatorIqn, volumeTargetIqn } from '@koala/contracts';
import {
  Libvirt,
  SecretUsageType,
  VIR_DOMAIN_AFFECT_CONFIG,
  VIR_DOMAIN_AFFECT_LIVE,
  buildDiskXml,
  buildDomainXml,
  buildSecretXml,
  parseDomainXml,
  type Domain,
  type StoragePool,
} from '@koala/libvirt';
import { createLogger } from '@koala/logging';
import { execRunner } from '../apps/storage-controller/src/iscsi/command-runner.js';
import { TgtAdmin } from '../apps/storage-controller/src/iscsi/tgt-admin.js';
import { VolumeAttacher, volumeSecretUsage, volumeSerial } from '../apps/node-controller/src/volumes/volume-attacher.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const IMAGE_DIR = join(process.env.KOALA_HOME ?? '/var/lib/koala', 'images/tiny-linux');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
jest.setTimeout(1_800_000);

const hex = (n: number) => randomBytes(n).toString('hex').slice(0, n);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

it('AttachVolume-to-attached: VolumeAttacher vs bare attachDevice', async () => {
  const node = `bench-node-${hex(6)}`;
  const instanceId = `i-${hex(17)}`;
  const volumeId = `vol-${hex(17)}`;
  const chapUser = `koala-bench-${hex(8)}`;
  const chapSecret = `S3cret-${hex(16)}`;
  const poolName = `koala-test-pool-${hex(8)}`;
  const tgt = new TgtAdmin(execRunner);
  execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), IMAGE_DIR], { stdio: 'ignore', timeout: 600_000 });
  const work = mkdtempSync(join(tmpdir(), 'koala-bench-volumes-'));
  chmodSync(work, 0o755);
  const log = join(work, 'console.log');
  const lv = await Libvirt.connect({ uri: 'qemu:///system' });
  let pool: StoragePool | undefined;
  let dom: Domain | undefined;
  let tid: number | undefined;
  try {
    pool = await lv.defineStoragePool(`<pool type='dir'><name>${poolName}</name><target><path>${work}</path></target></pool>`);
    await lv.createStoragePool(pool);
    await lv.createVolume(
      pool,
      `<volume><name>root.qcow2</name><capacity unit='M'>16</capacity><target><format type='qcow2'/></target>` +
        `<backingStore><path>${join(IMAGE_DIR, 'rootfs.img')}</path><format type='raw'/></backingStore></volume>`,
    );
    dom = await lv.defineDomain(
      buildDomainXml({
        name: instanceId,
        type: 'qemu',
        memoryMiB: 128,
        vcpus: 1,
        machine: 'pc',
        boot: { kind: 'kernel', kernel: join(IMAGE_DIR, 'vmlinuz'), initrd: join(IMAGE_DIR, 'initramfs.img'), cmdline: 'root=/dev/vda console=ttyS0' },
        disks: [{ kind: 'volume', pool: poolName, volume: 'root.qcow2', format: 'qcow2', targetDev: 'vda' }],
        serialLog: { path: log, mode: 'file' },
      }),
    );
    dom = await lv.startDomain(dom);
    for (let i = 0; !(existsSync(log) && readFileSync(log, 'utf8').includes('BLOCK: ')); i++) {
      if (i > 1200) throw new Error('tiny-linux did not boot');
      await sleep(250);
    }
    const file = join(work, 'vol.img');
    const fd = openSync(file, 'w');
    ftruncateSync(fd, 64 * 1024 * 1024);
    closeSync(fd);
    tid = await tgt.createTarget(volumeTargetIqn(volumeId));
    await tgt.addLun(tid, 1, file);
    await tgt.bindInitiatorName(tid, nodeInitiatorIqn(node));
    await tgt.createAccount(chapUser, chapSecret);
    await tgt.bindAccount(tid, chapUser);
    const target = { iqn: volumeTargetIqn(volumeId), lun: 1, portal: '127.0.0.1:3260', chapUser, chapSecret };
    const attacher = new VolumeAttacher({ libvirt: { get: async () => lv }, node, logger: createLogger('bench', 'error') });
    const usage = volumeSecretUsage(instanceId, volumeId);
    const gone = async () => {
      while (parseDomainXml(await lv.getDomainXml(dom!)).disks.some((d) => d.serial === volumeSerial(volumeId))) await sleep(100);
    };

    const viaAttacher: number[] = [];
    const bare: number[] = [];
    const diskXml = buildDiskXml({
      kind: 'iscsi',
      iqn: target.iqn,
      lun: 1,
      host: '127.0.0.1',
      port: 3260,
      initiatorIqn: nodeInitiatorIqn(node),
      auth: { username: chapUser, secret: { usage } },
      targetDev: 'vdb',
      serial: volumeSerial(volumeId),
    });
    for (let r = 0; r < ROUNDS; r++) {
      let t0 = performance.now();
      await attacher.attach({ instanceId, volumeId, target });
      viaAttacher.push(performance.now() - t0);
      await attacher.detach({ instanceId, volumeId });

      const secret = await lv.defineSecret(buildSecretXml({ usageType: 'iscsi', usageTarget: usage, private: true }));
      await lv.setSecretValue(secret, chapSecret);
      t0 = performance.now();
      await lv.attachDevice(dom, diskXml, VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG);
      bare.push(performance.now() - t0);
      await lv.detachDevice(dom, diskXml, VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG);
      await gone();
      await lv.undefineSecret(secret);
    }
    const a = median(viaAttacher);
    const b = median(bare);
    process.stdout.write(
      `\nvolume attach on qemu:///system (TCG) + tgtd, ${ROUNDS} rounds, median ms:\n` +
        `  VolumeAttacher.attach          ${a.toFixed(1)}  (min ${Math.min(...viaAttacher).toFixed(1)}, max ${Math.max(...viaAttacher).toFixed(1)})\n` +
        `  bare attachDevice(LIVE|CONFIG) ${b.toFixed(1)}  (min ${Math.min(...bare).toFixed(1)}, max ${Math.max(...bare).toFixed(1)})\n` +
        `  ratio attacher / bare          ${(a / b).toFixed(2)}\n`,
    );
  } finally {
    if (dom) {
      await lv.destroyDomain(dom).catch(() => undefined);
      await lv.undefineDomain(dom).catch(() => undefined);
    }
    for (const s of await lv.listAllSecrets().catch(() => [])) {
      if (s.usageType === SecretUsageType.ISCSI && s.usageId.startsWith(volumeSecretUsage(instanceId, ''))) await lv.undefineSecret(s).catch(() => undefined);
    }
    if (pool) {
      await lv.refreshStoragePool(pool).catch(() => undefined);
      for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
      await lv.destroyStoragePool(pool).catch(() => undefined);
      await lv.undefineStoragePool(pool).catch(() => undefined);
    }
    if (tid !== undefined) await tgt.deleteTarget(tid).catch(() => undefined);
    await tgt.deleteAccount(chapUser).catch(() => undefined);
    await lv.close();
    rmSync(work, { recursive: true, force: true });
  }
});
