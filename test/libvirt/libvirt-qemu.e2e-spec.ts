// Integration tests of @koala/libvirt against the machine's libvirtd with qemu:///system:
// a temporary dir pool, raw and qcow2 overlay volumes, stream upload/download, secrets, and a
// real (diskless-OS) QEMU domain that is started, hot-plugged, destroyed and undefined.
import { jest } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  DomainState,
  Libvirt,
  LibvirtError,
  SecretUsageType,
  StoragePoolState,
  VIR_DOMAIN_AFFECT_CONFIG,
  VIR_DOMAIN_AFFECT_LIVE,
  VIR_DOMAIN_XML_INACTIVE,
  VIR_ERR_NO_SECRET,
  VIR_ERR_NO_STORAGE_VOL,
  type Domain,
  type StoragePool,
  type StorageVol,
} from '@koala/libvirt';

// libvirtd may re-probe QEMU capabilities (tens of seconds) when the host changes under it.
jest.setTimeout(180_000);

const suffix = randomUUID().slice(0, 8);
const poolName = `koala-test-pool-${suffix}`;
const domName = `koala-test-vm-${suffix}`;
const virtType = existsSync('/dev/kvm') ? 'kvm' : 'qemu';
const MiB = 1024 * 1024;

async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (err) {
    if (err instanceof LibvirtError) return err.code;
    throw err;
  }
}

describe('libvirt client against qemu:///system', () => {
  let lv: Libvirt;
  let dir: string;
  let pool: StoragePool;
  const secrets: string[] = [];

  beforeAll(async () => {
    lv = await Libvirt.connect({ uri: 'qemu:///system' });
    dir = mkdtempSync(join(tmpdir(), 'koala-test-pool-'));
    chmodSync(dir, 0o755); // QEMU runs as an unprivileged user and must reach the images
    pool = await lv.defineStoragePool(`<pool type='dir'><name>${poolName}</name><target><path>${dir}</path></target></pool>`);
    await lv.buildStoragePool(pool);
    await lv.createStoragePool(pool);
  });

  afterAll(async () => {
    try {
      const dom = await lv.lookupDomainByName(domName).catch(() => undefined);
      if (dom) {
        await lv.destroyDomain(dom).catch(() => undefined);
        await lv.undefineDomain(dom).catch(() => undefined);
      }
      for (const uuid of secrets) {
        const s = await lv.lookupSecretByUuid(uuid).catch(() => undefined);
        if (s) await lv.undefineSecret(s).catch(() => undefined);
      }
      if (pool) {
        await lv.refreshStoragePool(pool).catch(() => undefined);
        for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
        await lv.destroyStoragePool(pool).catch(() => undefined);
        await lv.undefineStoragePool(pool).catch(() => undefined);
      }
    } finally {
      await lv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports the QEMU host', async () => {
    expect(await lv.getType()).toBe('QEMU');
    expect(await lv.getVersion()).toBeGreaterThanOrEqual(7_000_000);
    expect(await lv.getCapabilities()).toContain('<domain type=');
    expect((await lv.getNodeInfo()).cpus).toBeGreaterThan(0);
  });

  it('manages a dir pool with raw and qcow2 overlay volumes', async () => {
    expect((await lv.getStoragePoolInfo(pool)).state).toBe(StoragePoolState.RUNNING);
    expect(await lv.getStoragePoolXml(pool)).toContain(dir);
    await lv.setStoragePoolAutostart(pool, false);

    const base = await lv.createVolume(pool, `<volume><name>koala-test-base.qcow2</name><capacity unit='M'>16</capacity><target><format type='qcow2'/></target></volume>`);
    const basePath = await lv.getVolumePath(base);
    expect(basePath).toBe(join(dir, 'koala-test-base.qcow2'));
    const overlay = await lv.createVolume(
      pool,
      `<volume><name>koala-test-overlay.qcow2</name><capacity unit='M'>16</capacity><target><format type='qcow2'/></target>` +
        `<backingStore><path>${basePath}</path><format type='qcow2'/></backingStore></volume>`,
    );
    const overlayXml = await lv.getVolumeXml(overlay);
    expect(overlayXml).toContain('<backingStore>');
    expect(overlayXml).toContain(`<path>${basePath}</path>`);
    expect((await lv.getVolumeInfo(overlay)).capacity).toBe(16 * MiB);
    expect((await lv.getVolumeInfo(overlay)).allocation).toBeLessThan(2 * MiB); // no copy

    const raw = await lv.createVolume(pool, `<volume><name>koala-test-raw.img</name><capacity unit='M'>1</capacity><target><format type='raw'/></target></volume>`);
    await lv.resizeVolume(raw, 2 * MiB);
    expect((await lv.getVolumeInfo(raw)).capacity).toBe(2 * MiB);
    const clone = await lv.createVolumeFrom(pool, `<volume><name>koala-test-clone.img</name><capacity unit='M'>2</capacity><target><format type='raw'/></target></volume>`, raw);
    expect(await lv.lookupVolumeByPath(join(dir, 'koala-test-clone.img'))).toEqual(clone);
    expect((await lv.listAllVolumes(pool)).map((v) => v.name).sort()).toEqual(['koala-test-base.qcow2', 'koala-test-clone.img', 'koala-test-overlay.qcow2', 'koala-test-raw.img']);
    await lv.deleteVolume(clone);
    expect(await code(lv.lookupVolumeByName(pool, 'koala-test-clone.img'))).toBe(VIR_ERR_NO_STORAGE_VOL);
  });

  it('uploads bytes through a stream and reads them back with download', async () => {
    const vol = await lv.lookupVolumeByName(pool, 'koala-test-raw.img');
    const data = randomBytes(2 * MiB);
    await lv.uploadVolume(vol, data);
    const back = await lv.downloadVolume(vol);
    expect(back.length).toBe(data.length);
    expect(back.equals(data)).toBe(true);

    // A range, into a Writable.
    const parts: Buffer[] = [];
    const sink = new Writable({
      write(c, _e, cb) {
        parts.push(c);
        cb();
      },
    });
    expect(await lv.downloadVolumeTo(vol, sink, { offset: MiB, length: 4096 })).toBe(4096);
    expect(Buffer.concat(parts).equals(data.subarray(MiB, MiB + 4096))).toBe(true);
  });

  it('defines, reads and undefines a secret', async () => {
    const usage = `/koala-test/${suffix}/volume`;
    const s = await lv.defineSecret(`<secret ephemeral='no' private='no'><description>koala test</description><usage type='volume'><volume>${usage}</volume></usage></secret>`);
    secrets.push(s.uuid);
    expect(s).toMatchObject({ usageType: SecretUsageType.VOLUME, usageId: usage });
    await lv.setSecretValue(s, 'chap-password-1');
    expect((await lv.getSecretValue(s)).toString()).toBe('chap-password-1');
    expect(await lv.lookupSecretByUsage(SecretUsageType.VOLUME, usage)).toEqual(s);
    expect(await lv.lookupSecretByUuid(s.uuid)).toEqual(s);
    expect((await lv.listAllSecrets()).map((x) => x.uuid)).toContain(s.uuid);
    await lv.undefineSecret(s);
    expect(await code(lv.lookupSecretByUuid(s.uuid))).toBe(VIR_ERR_NO_SECRET);
  });

  it('runs a QEMU domain, hot-plugs a disk, destroys and undefines it', async () => {
    const overlay = await lv.lookupVolumeByName(pool, 'koala-test-overlay.qcow2');
    const raw: StorageVol = await lv.lookupVolumeByName(pool, 'koala-test-raw.img');
    const xml =
      `<domain type='${virtType}'><name>${domName}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>` +
      `<os><type arch='x86_64'>hvm</type></os><features><acpi/></features>` +
      `<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${await lv.getVolumePath(overlay)}'/>` +
      `<target dev='vda' bus='virtio'/></disk><graphics type='vnc' listen='127.0.0.1' autoport='yes'/></devices></domain>`;
    const sub = await lv.subscribeDomainLifecycle();
    try {
      const dom: Domain = await lv.defineDomain(xml);
      expect(dom.id).toBe(-1);
      const running = await lv.startDomain(dom);
      expect(running.id).toBeGreaterThan(0);
      expect(await sub.next((e) => e.domain.name === domName && e.eventName === 'started')).toBeTruthy();
      expect((await lv.getDomainState(dom)).state).toBe(DomainState.RUNNING);
      expect((await lv.getDomainInfo(running)).maxMem).toBe(32 * 1024);

      const diskXml = `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${await lv.getVolumePath(raw)}'/><target dev='vdb' bus='virtio'/></disk>`;
      await lv.attachDevice(running, diskXml, VIR_DOMAIN_AFFECT_LIVE);
      expect(await lv.getDomainXml(running)).toContain("<target dev='vdb' bus='virtio'/>");
      // Persistent config: attach then detach (deterministic, no guest cooperation needed).
      const cfgDisk = diskXml.replace("dev='vdb'", "dev='vdc'");
      await lv.attachDevice(running, cfgDisk, VIR_DOMAIN_AFFECT_CONFIG);
      expect(await lv.getDomainXml(running, VIR_DOMAIN_XML_INACTIVE)).toContain("<target dev='vdc' bus='virtio'/>");
      await lv.detachDevice(running, cfgDisk, VIR_DOMAIN_AFFECT_CONFIG);
      expect(await lv.getDomainXml(running, VIR_DOMAIN_XML_INACTIVE)).not.toContain("dev='vdc'");

      await lv.destroyDomain(running);
      expect(await sub.next((e) => e.domain.name === domName && e.eventName === 'stopped')).toBeTruthy();
      expect((await lv.getDomainState(dom)).state).toBe(DomainState.SHUTOFF);
      await lv.undefineDomain(dom);
      expect(await sub.next((e) => e.domain.name === domName && e.eventName === 'undefined')).toBeTruthy();
    } finally {
      await sub.close();
    }
  });
});
