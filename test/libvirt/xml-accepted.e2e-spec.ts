// Checks that libvirt itself accepts the XML libs/libvirt builds, and that our parsers read what
// libvirt writes back — through our own RPC client (no virsh): the test driver for every object
// kind, qemu:///system for what the real daemon validates further. Needs the libvirtd started by
// deploy/scripts/host-services.sh. On qemu:///system domains are only defined (never started)
// and everything created is removed. The test driver keeps its state per connection, so each
// of its scenarios runs on the one connection opened in beforeAll.
import { jest } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Libvirt,
  buildDomainXml,
  buildSecretXml,
  buildStoragePoolXml,
  buildStorageVolumeXml,
  chooseDomainType,
  parseCapabilitiesXml,
  parseDomainXml,
  parseSecretXml,
  parseStoragePoolXml,
  parseStorageVolumeXml,
  type DomainSpec,
} from '@koala/libvirt';

jest.setTimeout(120_000);

const NASTY = `<&'">]]>`;

const tag = `koala-test-${randomBytes(4).toString('hex')}`;

function domainSpec(name: string, uuid: string): DomainSpec {
  return {
    name,
    uuid,
    type: 'qemu',
    memoryMiB: 128,
    vcpus: 1,
    boot: { kind: 'kernel', kernel: `/var/lib/koala/eki/${NASTY}vmlinuz`, initrd: '/var/lib/koala/eri/initrd.img', cmdline: `console=ttyS0 koala.x="${NASTY}"` },
    disks: [
      { kind: 'volume', pool: `${tag}-pool`, volume: 'root.qcow2', format: 'qcow2', targetDev: 'vda' },
      { kind: 'file', path: '/var/lib/koala/config.iso', format: 'raw', targetDev: 'vdb', readonly: true, serial: 'config' },
      {
        kind: 'iscsi',
        iqn: 'iqn.2024-01.dev.koala:vol-0abc',
        lun: 1,
        host: '127.0.0.1',
        targetDev: 'vdc',
        serial: 'vol0abc',
        auth: { username: 'koala', secret: { usage: `${tag}-chap` } },
      },
    ],
    serialLog: { path: `/var/log/koala/${NASTY}.log` },
    koala: { instanceId: 'i-0123456789abcdef0', accountId: `acct${NASTY}` },
  };
}

function expectDomainRoundTrip(xml: string, spec: DomainSpec): void {
  const d = parseDomainXml(xml);
  expect(d.name).toBe(spec.name);
  expect(d.uuid).toBe(spec.uuid);
  expect(d.type).toBe('qemu');
  expect(d.memoryMiB).toBe(128);
  expect(d.vcpus).toBe(1);
  expect(d.kernel).toBe(spec.boot.kind === 'kernel' ? spec.boot.kernel : undefined);
  expect(d.cmdline).toBe(spec.boot.kind === 'kernel' ? spec.boot.cmdline : undefined);
  expect(d.serialLogPath).toBe(spec.serialLog!.path);
  expect(d.koala).toEqual(spec.koala);
  expect(d.disks).toEqual([
    expect.objectContaining({ type: 'volume', targetDev: 'vda', bus: 'virtio', sourcePool: `${tag}-pool`, sourceVolume: 'root.qcow2', driverType: 'qcow2' }),
    expect.objectContaining({ type: 'file', targetDev: 'vdb', sourceFile: '/var/lib/koala/config.iso', readonly: true, serial: 'config' }),
    expect.objectContaining({
      type: 'network',
      targetDev: 'vdc',
      sourceProtocol: 'iscsi',
      sourceName: 'iqn.2024-01.dev.koala:vol-0abc/1',
      sourceHosts: [{ name: '127.0.0.1', port: 3260 }],
      authUsername: 'koala',
      authSecretUsage: `${tag}-chap`,
      serial: 'vol0abc',
    }),
  ]);
  expect(d.interfaces).toEqual([]);
  expect(xml).toMatch(/<acpi\/>/);
}

describe('libvirt test driver (test:///default) accepts our XML', () => {
  let lv: Libvirt;
  beforeAll(async () => {
    lv = await Libvirt.connect({ uri: 'test:///default' });
  });
  afterAll(async () => lv?.close());

  it('offers capabilities we can parse (and no kvm/qemu to choose from)', async () => {
    const xml = await lv.getCapabilities();
    const caps = parseCapabilitiesXml(xml);
    expect(caps.hostArch).toBe('i686');
    expect(caps.hostCpuCount).toBe(16);
    expect(caps.guests.map((g) => [g.osType, g.arch, g.domainTypes])).toEqual([
      ['hvm', 'i686', ['test']],
      ['xen', 'i686', ['test']],
    ]);
    expect(() => chooseDomainType(xml, true)).toThrow(/neither kvm nor qemu/);
  });

  it('defines a domain with awkward characters and reads it back identically', async () => {
    const uuid = randomUUID();
    const spec = domainSpec(`${tag} ${NASTY}`, uuid);
    const dom = await lv.defineDomain(buildDomainXml(spec));
    expect(dom.uuid).toBe(uuid);
    expectDomainRoundTrip(await lv.getDomainXml(await lv.lookupDomainByUuid(uuid)), spec);
    await lv.undefineDomain(dom);
  });

  it('defines and starts a dir pool, creates raw, qcow2 and overlay volumes', async () => {
    const name = `${tag}-pool`;
    const pool = await lv.defineStoragePool(buildStoragePoolXml({ type: 'dir', name, targetPath: `/koala-test/${tag}` }));
    await lv.createStoragePool(pool);
    const poolXml = parseStoragePoolXml(await lv.getStoragePoolXml(pool));
    expect(poolXml).toMatchObject({ name, type: 'dir', targetPath: `/koala-test/${tag}` });
    expect(poolXml.capacityBytes).toBeGreaterThan(0);
    const base = await lv.createVolume(pool, buildStorageVolumeXml({ name: 'base.raw', format: 'raw', capacityBytes: 1 << 20 }));
    await lv.createVolume(pool, buildStorageVolumeXml({ name: 'data.qcow2', format: 'qcow2', capacityBytes: 2 << 20 }));
    const root = await lv.createVolume(
      pool,
      buildStorageVolumeXml({ name: 'root.qcow2', format: 'qcow2', capacityBytes: 4 << 20, backingStore: { path: `/koala-test/${tag}/base.raw`, format: 'raw' } }),
    );
    expect(parseStorageVolumeXml(await lv.getVolumeXml(base))).toMatchObject({ name: 'base.raw', capacityBytes: 1 << 20, path: `/koala-test/${tag}/base.raw` });
    expect(parseStorageVolumeXml(await lv.getVolumeXml(root))).toMatchObject({ name: 'root.qcow2', capacityBytes: 4 << 20 });
    for (const v of await lv.listAllVolumes(pool)) await lv.deleteVolume(v);
    await lv.destroyStoragePool(pool);
    await lv.undefineStoragePool(pool);
  });

  it('defines iscsi, iscsi-direct and logical pools', async () => {
    const specs = [
      buildStoragePoolXml({
        type: 'iscsi',
        name: `${tag}-iscsi`,
        host: '127.0.0.1',
        iqn: 'iqn.2024-01.dev.koala:sc',
        initiatorIqn: 'iqn.2024-01.dev.koala:nc',
        auth: { username: 'u', secret: { usage: `${tag}-chap` } },
      }),
      buildStoragePoolXml({ type: 'iscsi-direct', name: `${tag}-direct`, host: '127.0.0.1', iqn: 'iqn.2024-01.dev.koala:sc', initiatorIqn: 'iqn.2024-01.dev.koala:nc' }),
      buildStoragePoolXml({ type: 'logical', name: `${tag}-lvm`, vgName: 'koalavg', devices: ['/dev/loop7'] }),
    ];
    const pools = [];
    for (const x of specs) pools.push(await lv.defineStoragePool(x));
    const [iscsi, direct, lvm] = await Promise.all(pools.map(async (p) => parseStoragePoolXml(await lv.getStoragePoolXml(p))));
    expect(iscsi).toMatchObject({ type: 'iscsi', sourceDevices: ['iqn.2024-01.dev.koala:sc'], authSecretUsage: `${tag}-chap` });
    expect(direct).toMatchObject({ type: 'iscsi-direct', initiatorIqn: 'iqn.2024-01.dev.koala:nc' });
    expect(lvm).toMatchObject({ type: 'logical', sourceName: 'koalavg', sourceDevices: ['/dev/loop7'] });
    for (const p of pools) await lv.undefineStoragePool(p);
    // The test driver has no secret driver: secrets are checked on qemu:///system below.
  });
});

describe('qemu:///system accepts our XML (define only, never started)', () => {
  let lv: Libvirt;
  beforeAll(async () => {
    lv = await Libvirt.connect({ uri: 'qemu:///system' });
  });
  afterAll(async () => lv?.close());

  it('defines and undefines a kernel-boot domain with an iSCSI disk', async () => {
    const uuid = randomUUID();
    const spec = domainSpec(`${tag}-dom`, uuid);
    const dom = await lv.defineDomain(buildDomainXml(spec));
    try {
      expectDomainRoundTrip(await lv.getDomainXml(dom), spec);
    } finally {
      await lv.undefineDomain(dom);
    }
    await expect(lv.lookupDomainByUuid(uuid)).rejects.toMatchObject({ code: 42 }); // VIR_ERR_NO_DOMAIN
  });

  it('defines and undefines a persistent private iSCSI secret', async () => {
    const uuid = randomUUID();
    const secret = await lv.defineSecret(buildSecretXml({ usageType: 'iscsi', usageTarget: `${tag}-chap`, uuid, description: `d ${NASTY}` }));
    try {
      expect(parseSecretXml(await lv.getSecretXml(secret))).toEqual({
        uuid,
        usageType: 'iscsi',
        usageTarget: `${tag}-chap`,
        description: `d ${NASTY}`,
        ephemeral: false,
        private: true,
      });
    } finally {
      await lv.undefineSecret(secret);
    }
  });

  it('creates real raw, qcow2 and overlay volumes in a dir pool', async () => {
    const target = mkdtempSync(join(tmpdir(), 'koala-pool-'));
    const pool = await lv.defineStoragePool(buildStoragePoolXml({ type: 'dir', name: `${tag}-dir`, targetPath: target }));
    try {
      await lv.createStoragePool(pool);
      const base = await lv.createVolume(pool, buildStorageVolumeXml({ name: 'base.raw', format: 'raw', capacityBytes: 1 << 20 }));
      const data = await lv.createVolume(pool, buildStorageVolumeXml({ name: 'data.qcow2', format: 'qcow2', capacityBytes: 2 << 20, permissions: { mode: 0o640 } }));
      const root = await lv.createVolume(pool, buildStorageVolumeXml({ name: 'root.qcow2', format: 'qcow2', backingStore: { path: join(target, 'base.raw'), format: 'raw' } }));
      await lv.refreshStoragePool(pool);
      const p = parseStoragePoolXml(await lv.getStoragePoolXml(pool));
      expect(p).toMatchObject({ name: `${tag}-dir`, type: 'dir', targetPath: target });
      expect(p.availableBytes).toBeGreaterThan(0);
      const b = parseStorageVolumeXml(await lv.getVolumeXml(base));
      expect(b).toMatchObject({ name: 'base.raw', format: 'raw', capacityBytes: 1 << 20, path: join(target, 'base.raw') });
      expect(b.allocationBytes).toBeLessThan(1 << 20); // sparse
      expect(parseStorageVolumeXml(await lv.getVolumeXml(data))).toMatchObject({ name: 'data.qcow2', format: 'qcow2', capacityBytes: 2 << 20 });
      expect(parseStorageVolumeXml(await lv.getVolumeXml(root))).toMatchObject({
        name: 'root.qcow2',
        format: 'qcow2',
        capacityBytes: 1 << 20,
        key: join(target, 'root.qcow2'),
        backingStorePath: join(target, 'base.raw'),
        backingStoreFormat: 'raw',
      });
    } finally {
      for (const v of await lv.listAllVolumes(pool).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
      await lv.destroyStoragePool(pool).catch(() => undefined);
      await lv.undefineStoragePool(pool).catch(() => undefined);
      rmSync(target, { recursive: true, force: true });
    }
  });

  // iscsi-direct is defined on the test driver above only: this host lacks libvirt's iscsi-direct
  // storage backend ("missing backend for pool type 6"), package libvirt-daemon-driver-storage-iscsi-direct.
  it('defines (without starting) iscsi and logical pools', async () => {
    const specs = [
      buildStoragePoolXml({
        type: 'iscsi',
        name: `${tag}-iscsi`,
        host: '127.0.0.1',
        iqn: 'iqn.2024-01.dev.koala:sc',
        initiatorIqn: 'iqn.2024-01.dev.koala:nc',
        auth: { username: 'u', secret: { usage: `${tag}-chap` } },
      }),
      buildStoragePoolXml({ type: 'logical', name: `${tag}-lvm`, vgName: 'koalavg', devices: ['/dev/loop7'] }),
    ];
    const pools = [];
    try {
      for (const x of specs) pools.push(await lv.defineStoragePool(x));
      expect(parseStoragePoolXml(await lv.getStoragePoolXml(pools[0]!))).toMatchObject({
        type: 'iscsi',
        sourceHosts: [{ name: '127.0.0.1', port: 3260 }],
        initiatorIqn: 'iqn.2024-01.dev.koala:nc',
        authUsername: 'u',
      });
      expect(parseStoragePoolXml(await lv.getStoragePoolXml(pools[1]!))).toMatchObject({ type: 'logical', sourceName: 'koalavg', targetPath: '/dev/koalavg' });
    } finally {
      for (const p of pools) await lv.undefineStoragePool(p).catch(() => undefined);
    }
  });
});
