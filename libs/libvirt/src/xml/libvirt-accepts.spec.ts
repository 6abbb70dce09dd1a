// Checks that libvirt itself accepts the XML we build, and that our parsers read what libvirt
// writes back. Needs the libvirtd started by deploy/scripts/host-services.sh (test driver and
// qemu:///system on /var/run/libvirt/libvirt-sock). child_process is used here, in tests only.
//
// The test driver keeps nothing between connections, so each scenario runs as ONE virsh
// invocation with several commands separated by ';' and `echo` markers between outputs.
// On qemu:///system domains are only defined (never started) and everything created is removed.
import { jest } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
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
} from './index.js';

const MARK = '=====KOALA-MARK=====';
// qemu:///system looks up QEMU's capabilities for each definition and re-probes QEMU when its
// cache is not valid; on a busy 2-core TCG host that has been seen to take minutes. The test
// driver answers in milliseconds.
const QEMU_TIMEOUT_MS = 280_000;
jest.setTimeout(QEMU_TIMEOUT_MS + 20_000);

/**
 * Runs several virsh commands in one connection. virsh's exit status is that of the LAST
 * command only, so any `error:` line on stderr fails the call too.
 */
function virsh(uri: string, commands: string[]): string[] {
  const r = spawnSync('virsh', ['-c', uri, commands.join(' ; ')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: QEMU_TIMEOUT_MS,
  });
  if (r.error || r.status !== 0 || /^error:/m.test(r.stderr ?? '')) {
    throw new Error(`virsh ${uri} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}\nstdout: ${r.stdout ?? ''}`);
  }
  return r.stdout.split(MARK);
}

/** Runs cleanup commands one by one, ignoring errors (object may not exist). */
function virshQuiet(uri: string, commands: string[]): void {
  for (const c of commands) {
    try {
      execFileSync('virsh', ['-c', uri, c], { stdio: 'ignore', timeout: QEMU_TIMEOUT_MS });
    } catch {
      /* already gone */
    }
  }
}

const echo = `echo ${MARK}`;
const NASTY = `<&'">]]>`;

let dir: string;
let tag: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'koala-xml-'));
  tag = `koala-test-${randomBytes(4).toString('hex')}`;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

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
        kind: 'iscsi', iqn: 'iqn.2024-01.dev.koala:vol-0abc', lun: 1, host: '127.0.0.1', targetDev: 'vdc', serial: 'vol0abc',
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
      type: 'network', targetDev: 'vdc', sourceProtocol: 'iscsi', sourceName: 'iqn.2024-01.dev.koala:vol-0abc/1',
      sourceHosts: [{ name: '127.0.0.1', port: 3260 }], authUsername: 'koala', authSecretUsage: `${tag}-chap`, serial: 'vol0abc',
    }),
  ]);
  expect(d.interfaces).toEqual([]);
  expect(xml).toMatch(/<acpi\/>/);
}

describe('libvirt test driver (test:///default) accepts our XML', () => {
  const uri = 'test:///default';

  it('offers capabilities we can parse (and no kvm/qemu to choose from)', () => {
    const [xml] = virsh(uri, ['capabilities']);
    const caps = parseCapabilitiesXml(xml);
    expect(caps.hostArch).toBe('i686');
    expect(caps.hostCpuCount).toBe(16);
    expect(caps.guests.map((g) => [g.osType, g.arch, g.domainTypes])).toEqual([
      ['hvm', 'i686', ['test']],
      ['xen', 'i686', ['test']],
    ]);
    expect(() => chooseDomainType(xml, true)).toThrow(/neither kvm nor qemu/);
  });

  it('defines a domain with awkward characters and reads it back identically', () => {
    const uuid = randomUUID();
    const spec = domainSpec(`${tag} ${NASTY}`, uuid);
    const f = file('dom-test.xml', buildDomainXml(spec));
    const [defined, dumped] = virsh(uri, [`define ${f}`, echo, `dumpxml ${uuid}`]);
    expect(defined).toContain('defined from');
    expectDomainRoundTrip(dumped, spec);
  });

  it('defines and starts a dir pool, creates raw, qcow2 and overlay volumes', () => {
    const pool = `${tag}-pool`;
    const poolXml = file('pool-test.xml', buildStoragePoolXml({ type: 'dir', name: pool, targetPath: `/koala-test/${tag}` }));
    const raw = file('raw.xml', buildStorageVolumeXml({ name: 'base.raw', format: 'raw', capacityBytes: 1 << 20 }));
    const qcow = file('q.xml', buildStorageVolumeXml({ name: 'data.qcow2', format: 'qcow2', capacityBytes: 2 << 20 }));
    const overlay = file('o.xml', buildStorageVolumeXml({
      name: 'root.qcow2', format: 'qcow2', capacityBytes: 4 << 20, backingStore: { path: `/koala-test/${tag}/base.raw`, format: 'raw' },
    }));
    const out = virsh(uri, [
      `pool-define ${poolXml}`, `pool-start ${pool}`, echo, `pool-dumpxml ${pool}`, echo,
      `vol-create ${pool} ${raw}`, `vol-create ${pool} ${qcow}`, `vol-create ${pool} ${overlay}`, echo,
      `vol-dumpxml --pool ${pool} base.raw`, echo, `vol-dumpxml --pool ${pool} root.qcow2`,
    ]);
    expect(parseStoragePoolXml(out[1])).toMatchObject({ name: pool, type: 'dir', targetPath: `/koala-test/${tag}` });
    expect(parseStoragePoolXml(out[1]).capacityBytes).toBeGreaterThan(0);
    expect(out[2]).toContain('root.qcow2 created');
    expect(parseStorageVolumeXml(out[3])).toMatchObject({ name: 'base.raw', capacityBytes: 1 << 20, path: `/koala-test/${tag}/base.raw` });
    expect(parseStorageVolumeXml(out[4])).toMatchObject({ name: 'root.qcow2', capacityBytes: 4 << 20 });
  });

  it('defines iscsi, iscsi-direct and logical pools', () => {
    const pools = [
      buildStoragePoolXml({ type: 'iscsi', name: `${tag}-iscsi`, host: '127.0.0.1', iqn: 'iqn.2024-01.dev.koala:sc', initiatorIqn: 'iqn.2024-01.dev.koala:nc', auth: { username: 'u', secret: { usage: `${tag}-chap` } } }),
      buildStoragePoolXml({ type: 'iscsi-direct', name: `${tag}-direct`, host: '127.0.0.1', iqn: 'iqn.2024-01.dev.koala:sc', initiatorIqn: 'iqn.2024-01.dev.koala:nc' }),
      buildStoragePoolXml({ type: 'logical', name: `${tag}-lvm`, vgName: 'koalavg', devices: ['/dev/loop7'] }),
    ].map((x, i) => file(`pool-${i}.xml`, x));
    const out = virsh(uri, [
      ...pools.flatMap((p) => [`pool-define ${p}`, echo]),
      `pool-dumpxml ${tag}-iscsi`, echo, `pool-dumpxml ${tag}-direct`, echo, `pool-dumpxml ${tag}-lvm`,
    ]);
    expect(parseStoragePoolXml(out[3])).toMatchObject({ type: 'iscsi', sourceDevices: ['iqn.2024-01.dev.koala:sc'], authSecretUsage: `${tag}-chap` });
    expect(parseStoragePoolXml(out[4])).toMatchObject({ type: 'iscsi-direct', initiatorIqn: 'iqn.2024-01.dev.koala:nc' });
    expect(parseStoragePoolXml(out[5])).toMatchObject({ type: 'logical', sourceName: 'koalavg', sourceDevices: ['/dev/loop7'] });
    // The test driver has no secret driver (virConnectNumOfSecrets unsupported): secrets are
    // checked on qemu:///system below.
  });
});

describe('qemu:///system accepts our XML (define only, never started)', () => {
  const uri = 'qemu:///system';

  it('defines and undefines a kernel-boot domain with an iSCSI disk', () => {
    const uuid = randomUUID();
    const spec = domainSpec(`${tag}-dom`, uuid);
    const f = file('dom-qemu.xml', buildDomainXml(spec));
    try {
      const [defined, dumped] = virsh(uri, [`define ${f}`, echo, `dumpxml ${uuid}`]);
      expect(defined).toContain('defined from');
      expectDomainRoundTrip(dumped, spec);
      // The standalone <disk> (attach/detach) is the very node written into <devices> (see
      // domain.spec.ts); `attach-device --config` is not repeated here because each definition
      // may cost a capabilities probe, and the test driver does not implement attach-device.
    } finally {
      virshQuiet(uri, [`undefine ${uuid}`]);
    }
    expect(() => virsh(uri, [`domstate ${uuid}`])).toThrow();
  });

  it('defines and undefines a persistent private iSCSI secret', () => {
    const uuid = randomUUID();
    const f = file('secret-qemu.xml', buildSecretXml({ usageType: 'iscsi', usageTarget: `${tag}-chap`, uuid, description: `d ${NASTY}` }));
    try {
      const [, dumped] = virsh(uri, [`secret-define ${f}`, echo, `secret-dumpxml ${uuid}`]);
      expect(parseSecretXml(dumped)).toEqual({
        uuid, usageType: 'iscsi', usageTarget: `${tag}-chap`, description: `d ${NASTY}`, ephemeral: false, private: true,
      });
    } finally {
      virshQuiet(uri, [`secret-undefine ${uuid}`]);
    }
  });

  it('creates real raw, qcow2 and overlay volumes in a transient dir pool', () => {
    const pool = `${tag}-dir`;
    const target = mkdtempSync(join(tmpdir(), 'koala-pool-'));
    const poolXml = file('pool-qemu.xml', buildStoragePoolXml({ type: 'dir', name: pool, targetPath: target }));
    const raw = file('q-raw.xml', buildStorageVolumeXml({ name: 'base.raw', format: 'raw', capacityBytes: 1 << 20 }));
    const qcow = file('q-q.xml', buildStorageVolumeXml({ name: 'data.qcow2', format: 'qcow2', capacityBytes: 2 << 20, permissions: { mode: 0o640 } }));
    const overlay = file('q-o.xml', buildStorageVolumeXml({ name: 'root.qcow2', format: 'qcow2', backingStore: { path: join(target, 'base.raw'), format: 'raw' } }));
    try {
      const out = virsh(uri, [
        `pool-create ${poolXml}`, echo, `vol-create ${pool} ${raw}`, `vol-create ${pool} ${qcow}`, `vol-create ${pool} ${overlay}`, echo,
        `pool-refresh ${pool}`, echo, `pool-dumpxml ${pool}`, echo,
        `vol-dumpxml --pool ${pool} base.raw`, echo, `vol-dumpxml --pool ${pool} data.qcow2`, echo, `vol-dumpxml --pool ${pool} root.qcow2`,
      ]);
      expect(parseStoragePoolXml(out[3])).toMatchObject({ name: pool, type: 'dir', targetPath: target });
      expect(parseStoragePoolXml(out[3]).availableBytes).toBeGreaterThan(0);
      expect(parseStorageVolumeXml(out[4])).toMatchObject({ name: 'base.raw', format: 'raw', capacityBytes: 1 << 20, path: join(target, 'base.raw') });
      expect(parseStorageVolumeXml(out[4]).allocationBytes).toBeLessThan(1 << 20); // sparse
      expect(parseStorageVolumeXml(out[5])).toMatchObject({ name: 'data.qcow2', format: 'qcow2', capacityBytes: 2 << 20 });
      expect(parseStorageVolumeXml(out[6])).toMatchObject({
        name: 'root.qcow2', format: 'qcow2', capacityBytes: 1 << 20, key: join(target, 'root.qcow2'),
        backingStorePath: join(target, 'base.raw'), backingStoreFormat: 'raw',
      });
    } finally {
      virshQuiet(uri, [`pool-destroy ${pool}`]);
      rmSync(target, { recursive: true, force: true });
    }
  });

  // iscsi-direct is defined on the test driver above only: this host lacks libvirt's iscsi-direct
  // storage backend ("missing backend for pool type 6"), package libvirt-daemon-driver-storage-iscsi-direct.
  it('defines (without starting) iscsi and logical pools', () => {
    const specs = [
      buildStoragePoolXml({ type: 'iscsi', name: `${tag}-iscsi`, host: '127.0.0.1', iqn: 'iqn.2024-01.dev.koala:sc', initiatorIqn: 'iqn.2024-01.dev.koala:nc', auth: { username: 'u', secret: { usage: `${tag}-chap` } } }),
      buildStoragePoolXml({ type: 'logical', name: `${tag}-lvm`, vgName: 'koalavg', devices: ['/dev/loop7'] }),
    ];
    const names = [`${tag}-iscsi`, `${tag}-lvm`];
    try {
      const out = virsh(uri, [
        ...specs.map((x, i) => `pool-define ${file(`qpool-${i}.xml`, x)}`), echo,
        ...names.flatMap((n) => [`pool-dumpxml ${n}`, echo]),
      ]);
      expect(parseStoragePoolXml(out[1])).toMatchObject({ type: 'iscsi', sourceHosts: [{ name: '127.0.0.1', port: 3260 }], initiatorIqn: 'iqn.2024-01.dev.koala:nc', authUsername: 'u' });
      expect(parseStoragePoolXml(out[2])).toMatchObject({ type: 'logical', sourceName: 'koalavg', targetPath: '/dev/koalavg' });
    } finally {
      virshQuiet(uri, names.map((n) => `pool-undefine ${n}`));
    }
  });
});
