import { buildDiskXml, buildDomainXml, chooseDomainType, diskIndexToSuffix, diskSuffixToIndex, KOALA_METADATA_NS, nextFreeTargetDev, parseDiskXml, parseDomainXml, type DomainSpec } from './index.js';

const NASTY = `a<b&c'd"e>f ]]> g`;

function baseSpec(over: Partial<DomainSpec> = {}): DomainSpec {
  return {
    name: 'koala-i-0123456789abcdef0',
    uuid: '7d0c2c1e-6d1f-4f8a-9a35-3d3f7f1c2b10',
    type: 'qemu',
    memoryMiB: 256,
    vcpus: 2,
    boot: { kind: 'kernel', kernel: '/var/lib/koala/eki-1/vmlinuz', initrd: '/var/lib/koala/eri-1/initrd', cmdline: 'console=ttyS0 root=/dev/vda rw' },
    disks: [
      { kind: 'volume', pool: 'koala', volume: 'i-0123-root.qcow2', format: 'qcow2', targetDev: 'vda' },
      { kind: 'file', path: '/var/lib/koala/i-0123/config.iso', format: 'raw', targetDev: 'vdb', readonly: true, serial: 'config-2' },
      {
        kind: 'iscsi',
        iqn: 'iqn.2024-01.dev.koala:vol-0abc',
        lun: 1,
        host: '127.0.0.1',
        port: 3260,
        auth: { username: 'koala', secret: { usage: 'koala-chap-vol-0abc' } },
        targetDev: 'vdc',
        serial: 'vol0abc',
      },
    ],
    serialLog: { path: '/var/log/koala/i-0123.console.log' },
    koala: { instanceId: 'i-0123456789abcdef0', accountId: '111122223333' },
    ...over,
  };
}

describe('buildDomainXml / parseDomainXml', () => {
  it('round-trips a kernel-boot domain with volume, file and iSCSI disks', () => {
    const xml = buildDomainXml(baseSpec());
    const d = parseDomainXml(xml);
    expect(d).toMatchObject({
      name: 'koala-i-0123456789abcdef0',
      uuid: '7d0c2c1e-6d1f-4f8a-9a35-3d3f7f1c2b10',
      type: 'qemu',
      memoryMiB: 256,
      vcpus: 2,
      arch: 'x86_64',
      osType: 'hvm',
      kernel: '/var/lib/koala/eki-1/vmlinuz',
      initrd: '/var/lib/koala/eri-1/initrd',
      cmdline: 'console=ttyS0 root=/dev/vda rw',
      serialLogPath: '/var/log/koala/i-0123.console.log',
      koala: { instanceId: 'i-0123456789abcdef0', accountId: '111122223333' },
      interfaces: [],
    });
    expect(d.disks).toEqual([
      {
        type: 'volume',
        device: 'disk',
        targetDev: 'vda',
        bus: 'virtio',
        driverType: 'qcow2',
        sourcePool: 'koala',
        sourceVolume: 'i-0123-root.qcow2',
        sourceHosts: [],
        readonly: false,
      },
      {
        type: 'file',
        device: 'disk',
        targetDev: 'vdb',
        bus: 'virtio',
        driverType: 'raw',
        sourceFile: '/var/lib/koala/i-0123/config.iso',
        sourceHosts: [],
        readonly: true,
        serial: 'config-2',
      },
      {
        type: 'network',
        device: 'disk',
        targetDev: 'vdc',
        bus: 'virtio',
        driverType: 'raw',
        sourceProtocol: 'iscsi',
        sourceName: 'iqn.2024-01.dev.koala:vol-0abc/1',
        sourceHosts: [{ name: '127.0.0.1', port: 3260 }],
        authUsername: 'koala',
        authSecretUsage: 'koala-chap-vol-0abc',
        readonly: false,
        serial: 'vol0abc',
      },
    ]);
  });

  it('keeps extra Koala metadata (reservation, type, resources, digests) and reads it back', () => {
    const extra = { reservationId: 'r-0123', instanceType: 't1.micro', vcpus: '1', rootSha256: 'ab'.repeat(32) };
    const d = parseDomainXml(buildDomainXml(baseSpec({ koala: { instanceId: 'i-0123456789abcdef0', accountId: '111122223333', extra } })));
    expect(d.koala).toEqual({ instanceId: 'i-0123456789abcdef0', accountId: '111122223333', extra });
    expect(() => buildDomainXml(baseSpec({ koala: { instanceId: 'i-1', accountId: 'a', extra: { 'bad key': 'x' } } }))).toThrow(/extra key/);
  });

  it('always has ACPI and APIC, no interface, memballoon none by default', () => {
    const xml = buildDomainXml(baseSpec({ interfaces: undefined }));
    expect(xml).toMatch(/<features>\s*<acpi\/>\s*<apic\/>\s*<\/features>/);
    expect(xml).not.toContain('<interface');
    expect(xml).toContain('<memballoon model="none"/>');
    expect(xml).not.toContain('<rng');
    expect(xml).toContain('<on_poweroff>destroy</on_poweroff>');
    expect(xml).toContain('<on_reboot>restart</on_reboot>');
    expect(xml).toContain('<on_crash>destroy</on_crash>');
  });

  it('writes HVM disk boot, lifecycle actions, rng and balloon when asked', () => {
    const xml = buildDomainXml(baseSpec({ boot: { kind: 'disk' }, type: 'kvm', onReboot: 'destroy', onCrash: 'preserve', rng: true, memballoon: true }));
    expect(xml).toContain('<boot dev="hd"/>');
    expect(xml).not.toContain('<kernel>');
    expect(xml).toContain('<on_reboot>destroy</on_reboot>');
    expect(xml).toContain('<on_crash>preserve</on_crash>');
    expect(xml).toContain('<backend model="random">/dev/urandom</backend>');
    expect(xml).toContain('<memballoon model="virtio"/>');
    expect(parseDomainXml(xml).type).toBe('kvm');
  });

  it('puts only a secret reference in the iSCSI disk, never a password', () => {
    const xml = buildDomainXml(baseSpec());
    expect(xml).toMatch(/<auth username="koala">\s*<secret type="iscsi" usage="koala-chap-vol-0abc"\/>\s*<\/auth>/);
    const byUuid = buildDiskXml({
      kind: 'iscsi',
      iqn: 'iqn.2024-01.dev.koala:v',
      lun: 0,
      host: 'localhost',
      targetDev: 'vdd',
      auth: { username: 'u', secret: { uuid: '11111111-2222-3333-4444-555555555555' } },
    });
    expect(parseDiskXml(byUuid)).toMatchObject({ authSecretUuid: '11111111-2222-3333-4444-555555555555', sourceHosts: [{ name: 'localhost', port: 3260 }] });
  });

  it('supports a file-type serial log and parses either form', () => {
    const xml = buildDomainXml(baseSpec({ serialLog: { path: '/tmp/c.log', mode: 'file', append: true } }));
    expect(xml).toMatch(/<serial type="file">\s*<source path="\/tmp\/c.log" append="on"\/>/);
    expect(parseDomainXml(xml).serialLogPath).toBe('/tmp/c.log');
    const pty = buildDomainXml(baseSpec());
    expect(pty).toMatch(/<serial type="pty">\s*<log file="\/var\/log\/koala\/i-0123.console.log" append="off"\/>/);
  });

  it('escapes user-supplied text and attributes and round-trips them exactly', () => {
    const spec = baseSpec({
      name: `koala ${NASTY}`,
      boot: { kind: 'kernel', kernel: `/k/${NASTY}`, initrd: `/i/${NASTY}`, cmdline: `init=/sbin/init x="${NASTY}"` },
      disks: [
        { kind: 'volume', pool: `p ${NASTY}`, volume: `v ${NASTY}`, format: 'qcow2', targetDev: 'vda' },
        { kind: 'file', path: `/f/${NASTY}`, format: 'raw', targetDev: 'vdb' },
        { kind: 'iscsi', iqn: 'iqn.2024-01.dev.koala:x', lun: 1, host: '127.0.0.1', targetDev: 'vdc', auth: { username: NASTY, secret: { usage: NASTY } } },
      ],
      serialLog: { path: `/log/${NASTY}` },
      koala: { instanceId: NASTY, accountId: `&<'"` },
      description: NASTY,
    });
    const xml = buildDomainXml(spec);
    // No raw markup characters leak from values: every '<' starts a tag we wrote.
    expect(xml).not.toContain(NASTY);
    expect(xml).toContain('a&lt;b&amp;c\'d"e&gt;f ]]&gt; g'); // text
    expect(xml).toContain("a&lt;b&amp;c'd&quot;e>f ]]> g"); // attribute
    const d = parseDomainXml(xml);
    expect(d.name).toBe(`koala ${NASTY}`);
    expect(d.kernel).toBe(`/k/${NASTY}`);
    expect(d.initrd).toBe(`/i/${NASTY}`);
    expect(d.cmdline).toBe(`init=/sbin/init x="${NASTY}"`);
    expect(d.disks[0]).toMatchObject({ sourcePool: `p ${NASTY}`, sourceVolume: `v ${NASTY}` });
    expect(d.disks[1].sourceFile).toBe(`/f/${NASTY}`);
    expect(d.disks[2]).toMatchObject({ authUsername: NASTY, authSecretUsage: NASTY });
    expect(d.serialLogPath).toBe(`/log/${NASTY}`);
    expect(d.koala).toEqual({ instanceId: NASTY, accountId: `&<'"` });
  });

  it('cannot be tricked into adding elements through values', () => {
    const evil = '</name><devices><interface type="network"/></devices><name>';
    const d = parseDomainXml(buildDomainXml(baseSpec({ name: `x${evil}`.replaceAll('/', '_') })));
    expect(d.interfaces).toEqual([]);
    expect(d.name).toBe(`x${evil}`.replaceAll('/', '_'));
  });

  it('writes Koala metadata in its namespace and reads it back under any prefix', () => {
    const xml = buildDomainXml(baseSpec());
    expect(xml).toContain(`<koala:instance xmlns:koala="${KOALA_METADATA_NS}">`);
    const other = `<domain type='qemu'><name>n</name><metadata>
      <k2:instance xmlns:k2="https://other.example/ns"><k2:instanceId>nope</k2:instanceId><k2:accountId>x</k2:accountId></k2:instance>
      <q:instance xmlns:q="${KOALA_METADATA_NS}"><q:instanceId>i-1</q:instanceId><q:accountId>42</q:accountId></q:instance>
    </metadata></domain>`;
    expect(parseDomainXml(other).koala).toEqual({ instanceId: 'i-1', accountId: '42' });
    const noPrefix = `<domain><name>n</name><metadata><instance xmlns="${KOALA_METADATA_NS}"><instanceId>i-2</instanceId><accountId>7</accountId></instance></metadata></domain>`;
    expect(parseDomainXml(noPrefix).koala).toEqual({ instanceId: 'i-2', accountId: '7' });
    expect(parseDomainXml('<domain><name>n</name></domain>').koala).toBeUndefined();
  });

  it('writes optional interfaces with an nwfilter reference', () => {
    const xml = buildDomainXml(
      baseSpec({
        interfaces: [
          { type: 'bridge', source: 'kbr0', mac: '52:54:00:12:34:56', filter: { name: 'clean-traffic', parameters: { IP: ['10.0.0.5', '10.0.0.6'], MAC: '52:54:00:12:34:56' } } },
          { type: 'network', source: 'koala-net' },
        ],
      }),
    );
    expect(parseDomainXml(xml).interfaces).toEqual([
      {
        type: 'bridge',
        source: 'kbr0',
        mac: '52:54:00:12:34:56',
        model: 'virtio',
        filter: 'clean-traffic',
        filterParameters: [
          { name: 'IP', value: '10.0.0.5' },
          { name: 'IP', value: '10.0.0.6' },
          { name: 'MAC', value: '52:54:00:12:34:56' },
        ],
      },
      { type: 'network', source: 'koala-net', model: 'virtio', filterParameters: [] },
    ]);
  });

  it('converts memory units written by libvirt', () => {
    expect(parseDomainXml(`<domain type='qemu'><name>n</name><memory unit='KiB'>524288</memory><vcpu placement='static'>3</vcpu></domain>`)).toMatchObject({ memoryMiB: 512, vcpus: 3 });
    expect(parseDomainXml(`<domain><name>n</name><memory>1048576</memory></domain>`).memoryMiB).toBe(1024);
    expect(parseDomainXml(`<domain><name>n</name><memory unit='GiB'>2</memory></domain>`).memoryMiB).toBe(2048);
  });

  it('is tolerant of unknown elements and rejects other documents', () => {
    const d = parseDomainXml(`<domain type='qemu' id='4'><name>x</name><seclabel type='dynamic'/><devices><emulator>/usr/bin/q</emulator><video/></devices></domain>`);
    expect(d).toMatchObject({ name: 'x', type: 'qemu', disks: [], interfaces: [] });
    expect(() => parseDomainXml('<pool/>')).toThrow(/expected a <domain> document/);
    expect(() => parseDomainXml('<domain>')).toThrow(/cannot parse domain XML/);
    expect(() => parseDomainXml('')).toThrow(/empty/);
  });

  it.each<[string, Partial<DomainSpec>, RegExp]>([
    ['empty name', { name: '' }, /domain.name must not be empty/],
    ['blank name', { name: '   ' }, /domain.name must not be blank/],
    ['slash in name', { name: 'a/b' }, /must not contain '\/'/],
    ['control char', { name: 'a\u0001b' }, /character that XML cannot represent/],
    ['newline in name', { name: 'a\nb' }, /control characters/],
    ['zero memory', { memoryMiB: 0 }, /memoryMiB must be greater than zero/],
    ['negative memory', { memoryMiB: -1 }, /memoryMiB must be a non-negative integer/],
    ['fractional vcpus', { vcpus: 1.5 }, /vcpus must be a non-negative integer/],
    ['bad type', { type: 'xen' as never }, /domain.type must be one of kvm, qemu/],
    ['bad uuid', { uuid: 'nope' }, /domain.uuid must be a UUID/],
    ['relative kernel', { boot: { kind: 'kernel', kernel: 'vmlinuz' } }, /kernel must be an absolute path/],
    ['bad boot', { boot: { kind: 'pxe' } as never }, /domain.boot.kind must be disk or kernel/],
    ['bad action', { onReboot: 'explode' as never }, /onReboot must be one of/],
    [
      'duplicate target',
      {
        disks: [
          { kind: 'file', path: '/a', format: 'raw', targetDev: 'vda' },
          { kind: 'file', path: '/b', format: 'raw', targetDev: 'vda' },
        ],
      },
      /vda is used twice/,
    ],
    ['bad target', { disks: [{ kind: 'file', path: '/a', format: 'raw', targetDev: 'sda' }] }, /virtio device name/],
    ['bad format', { disks: [{ kind: 'file', path: '/a', format: 'vmdk' as never, targetDev: 'vda' }] }, /format must be one of qcow2, raw/],
    ['long serial', { disks: [{ kind: 'file', path: '/a', format: 'raw', targetDev: 'vda', serial: 'vol-0123456789abcdef0' }] }, /serial must be 1-20/],
    ['serial chars', { disks: [{ kind: 'file', path: '/a', format: 'raw', targetDev: 'vda', serial: 'a,b' }] }, /serial must be/],
    ['bad iqn', { disks: [{ kind: 'iscsi', iqn: 'target one', lun: 1, host: 'h', targetDev: 'vda' }] }, /iqn must be an iSCSI name/],
    ['negative lun', { disks: [{ kind: 'iscsi', iqn: 'iqn.2024-01.x:y', lun: -1, host: 'h', targetDev: 'vda' }] }, /lun must be a non-negative integer/],
    ['bad port', { disks: [{ kind: 'iscsi', iqn: 'iqn.2024-01.x:y', lun: 1, host: 'h', port: 70000, targetDev: 'vda' }] }, /port must be at most 65535/],
    [
      'both secret refs',
      {
        disks: [{ kind: 'iscsi', iqn: 'iqn.2024-01.x:y', lun: 1, host: 'h', targetDev: 'vda', auth: { username: 'u', secret: { usage: 'a', uuid: '11111111-2222-3333-4444-555555555555' } as never } }],
      },
      /either usage or uuid/,
    ],
    ['bad mac', { interfaces: [{ type: 'bridge', source: 'br0', mac: 'zz' }] }, /mac must look like/],
    ['relative log', { serialLog: { path: 'console.log' } }, /serialLog.path must be an absolute path/],
  ])('rejects %s with a clear error', (_label, over, message) => {
    expect(() => buildDomainXml(baseSpec(over))).toThrow(message);
  });
});

describe('buildDiskXml', () => {
  it('is the same <disk> as in the domain, standalone', () => {
    const spec = baseSpec().disks![2];
    const xml = buildDiskXml(spec);
    expect(xml.startsWith('<disk type="network" device="disk">')).toBe(true);
    expect(buildDomainXml(baseSpec())).toContain(
      xml
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n'),
    );
    expect(parseDiskXml(xml)).toEqual(parseDomainXml(buildDomainXml(baseSpec())).disks[2]);
  });

  it('names the iSCSI initiator when asked (tgt ACLs bound to a node) and refuses a bad one', () => {
    const xml = buildDiskXml({ kind: 'iscsi', iqn: 'iqn.2024-01.dev.koala:v', lun: 1, host: '127.0.0.1', targetDev: 'vdb', initiatorIqn: 'iqn.2026-11.dev.koala:node:n1' });
    expect(xml).toMatch(/<initiator>\s*<iqn name="iqn.2026-11.dev.koala:node:n1"\/>\s*<\/initiator>/);
    expect(parseDiskXml(xml).initiatorIqn).toBe('iqn.2026-11.dev.koala:node:n1');
    expect(() => buildDiskXml({ kind: 'iscsi', iqn: 'iqn.2024-01.dev.koala:v', lun: 1, host: 'h', targetDev: 'vdb', initiatorIqn: 'node one' })).toThrow(/initiatorIqn must be an iSCSI name/);
  });

  it('reads <auth> at disk level too (older libvirt placement)', () => {
    const xml = `<disk type='network' device='disk'><source protocol='iscsi' name='iqn.x:y/2'><host name='h' port='3261'/></source>
      <auth username='u'><secret type='iscsi' usage='s'/></auth><target dev='vde' bus='virtio'/></disk>`;
    expect(parseDiskXml(xml)).toMatchObject({ authUsername: 'u', authSecretUsage: 's', targetDev: 'vde', sourceHosts: [{ name: 'h', port: 3261 }] });
  });
});

describe('nextFreeTargetDev', () => {
  it('numbers devices like libvirt', () => {
    expect([0, 1, 25, 26, 27, 51, 52, 701, 702].map(diskIndexToSuffix)).toEqual(['a', 'b', 'z', 'aa', 'ab', 'az', 'ba', 'zz', 'aaa']);
    for (let i = 0; i < 800; i++) expect(diskSuffixToIndex(diskIndexToSuffix(i))).toBe(i);
    expect(diskSuffixToIndex('A')).toBeUndefined();
  });

  it('finds the first gap', () => {
    expect(nextFreeTargetDev([])).toBe('vda');
    expect(nextFreeTargetDev(['vda', 'vdb'])).toBe('vdc');
    expect(nextFreeTargetDev(['vda', 'vdc'])).toBe('vdb');
    expect(nextFreeTargetDev([{ targetDev: 'vda' }, { targetDev: 'hdc' }, {}, 'sda', 'vdb'])).toBe('vdc');
    const all = Array.from({ length: 26 }, (_, i) => `vd${diskIndexToSuffix(i)}`);
    expect(nextFreeTargetDev(all)).toBe('vdaa');
    expect(nextFreeTargetDev(parseDomainXml(buildDomainXml(baseSpec())).disks)).toBe('vdd');
  });
});

describe('chooseDomainType', () => {
  const caps = (types: string[], arch = 'x86_64') => `<capabilities><host><cpu><arch>${arch}</arch></cpu></host>
    <guest><os_type>hvm</os_type><arch name='i686'><domain type='qemu'/><domain type='kvm'/></arch></guest>
    <guest><os_type>hvm</os_type><arch name='x86_64'><wordsize>64</wordsize>${types.map((t) => `<domain type='${t}'/>`).join('')}</arch></guest>
  </capabilities>`;

  it('picks kvm only when offered AND /dev/kvm is present', () => {
    expect(chooseDomainType(caps(['qemu', 'kvm']), true)).toBe('kvm');
    expect(chooseDomainType(caps(['qemu', 'kvm']), false)).toBe('qemu');
    expect(chooseDomainType(caps(['qemu']), true)).toBe('qemu');
    expect(chooseDomainType(caps(['qemu']), false)).toBe('qemu');
  });

  it('looks at the requested or host arch', () => {
    expect(chooseDomainType(caps(['qemu']), true, 'i686')).toBe('kvm');
    expect(() => chooseDomainType(caps(['qemu'], 'aarch64'), false)).toThrow(/neither kvm nor qemu/);
  });

  it('explains when nothing usable is offered', () => {
    expect(() => chooseDomainType(caps(['kvm']), false)).toThrow(/only kvm .* \/dev\/kvm is not present/);
    expect(() => chooseDomainType(caps(['test']), true)).toThrow(/neither kvm nor qemu/);
  });
});
