import { buildSecretXml, buildStoragePoolXml, buildStorageVolumeXml, parseSecretXml, parseStoragePoolXml, parseStorageVolumeXml } from './index.js';

const NASTY = `a<b&c'd"e>f ]]> g`;

describe('storage pool XML', () => {
  it('builds and parses a dir pool', () => {
    const xml = buildStoragePoolXml({ type: 'dir', name: 'koala', uuid: '0b9a7d8e-1111-4222-8333-944455556666', targetPath: '/var/lib/koala/pool' });
    expect(parseStoragePoolXml(xml)).toEqual({
      name: 'koala',
      uuid: '0b9a7d8e-1111-4222-8333-944455556666',
      type: 'dir',
      targetPath: '/var/lib/koala/pool',
      sourceHosts: [],
      sourceDevices: [],
    });
  });

  it('builds a logical pool (XML only: no device-mapper on the project machines)', () => {
    const xml = buildStoragePoolXml({ type: 'logical', name: 'koala-lvm', vgName: 'koalavg', devices: ['/dev/sdb', '/dev/sdc'] });
    expect(xml).toContain('<format type="lvm2"/>');
    expect(parseStoragePoolXml(xml)).toMatchObject({
      type: 'logical',
      sourceName: 'koalavg',
      sourceDevices: ['/dev/sdb', '/dev/sdc'],
      targetPath: '/dev/koalavg',
    });
  });

  it('builds iscsi and iscsi-direct pools with CHAP by secret reference', () => {
    const iscsi = buildStoragePoolXml({
      type: 'iscsi',
      name: 'sc-1',
      host: '127.0.0.1',
      iqn: 'iqn.2024-01.dev.koala:sc',
      initiatorIqn: 'iqn.2024-01.dev.koala:nc-1',
      auth: { username: 'nc', secret: { usage: 'koala-chap-sc' } },
    });
    expect(iscsi).toMatch(/<auth type="chap" username="nc">\s*<secret usage="koala-chap-sc"\/>/);
    expect(parseStoragePoolXml(iscsi)).toMatchObject({
      type: 'iscsi',
      sourceHosts: [{ name: '127.0.0.1', port: 3260 }],
      sourceDevices: ['iqn.2024-01.dev.koala:sc'],
      initiatorIqn: 'iqn.2024-01.dev.koala:nc-1',
      authUsername: 'nc',
      authSecretUsage: 'koala-chap-sc',
      targetPath: '/dev/disk/by-path',
    });
    const direct = buildStoragePoolXml({
      type: 'iscsi-direct',
      name: 'sc-2',
      host: 'sc.local',
      port: 3261,
      iqn: 'iqn.2024-01.dev.koala:sc',
      initiatorIqn: 'iqn.2024-01.dev.koala:nc-1',
      auth: { username: 'nc', secret: { uuid: '11111111-2222-3333-4444-555555555555' } },
    });
    expect(parseStoragePoolXml(direct)).toMatchObject({
      type: 'iscsi-direct',
      sourceHosts: [{ name: 'sc.local', port: 3261 }],
      initiatorIqn: 'iqn.2024-01.dev.koala:nc-1',
      authSecretUuid: '11111111-2222-3333-4444-555555555555',
    });
    expect(parseStoragePoolXml(direct).targetPath).toBeUndefined();
    expect(() => buildStoragePoolXml({ type: 'iscsi-direct', name: 'x', host: 'h', iqn: 'iqn.2024-01.a:b' } as never)).toThrow(/initiatorIqn is required/);
  });

  it('parses sizes as libvirt reports them', () => {
    const p = parseStoragePoolXml(`<pool type='dir'><name>default</name><uuid>u</uuid>
      <capacity unit='bytes'>107374182400</capacity><allocation unit='bytes'>1024</allocation><available unit='KiB'>2</available>
      <source/><target><path>/var/lib/libvirt/images</path><permissions><mode>0711</mode></permissions></target></pool>`);
    expect(p).toMatchObject({ capacityBytes: 107374182400, allocationBytes: 1024, availableBytes: 2048, targetPath: '/var/lib/libvirt/images' });
  });

  it('escapes and round-trips names and paths', () => {
    const p = parseStoragePoolXml(buildStoragePoolXml({ type: 'dir', name: NASTY, targetPath: `/x/${NASTY}` }));
    expect(p).toMatchObject({ name: NASTY, targetPath: `/x/${NASTY}` });
  });

  it.each<[string, unknown, RegExp]>([
    ['empty name', { type: 'dir', name: '', targetPath: '/a' }, /pool.name must not be empty/],
    ['relative path', { type: 'dir', name: 'p', targetPath: 'a' }, /absolute path/],
    ['unknown type', { type: 'rbd', name: 'p' }, /pool.type must be one of/],
    ['bad host', { type: 'iscsi', name: 'p', host: 'a b', iqn: 'iqn.2024-01.a:b' }, /host name or address/],
    ['bad iqn', { type: 'iscsi', name: 'p', host: 'h', iqn: '' }, /pool.iqn must not be empty/],
    ['secret missing', { type: 'iscsi', name: 'p', host: 'h', iqn: 'iqn.2024-01.a:b', auth: { username: 'u', secret: {} } }, /by usage or uuid/],
  ])('rejects %s', (_l, spec, message) => {
    expect(() => buildStoragePoolXml(spec as never)).toThrow(message);
  });
});

describe('storage volume XML', () => {
  it('builds a raw sparse volume', () => {
    const xml = buildStorageVolumeXml({ name: 'vol-1.img', format: 'raw', capacityBytes: 1n << 30n });
    expect(xml).toContain('<capacity unit="bytes">1073741824</capacity>');
    expect(xml).toContain('<allocation unit="bytes">0</allocation>');
    expect(parseStorageVolumeXml(xml)).toEqual({ name: 'vol-1.img', capacityBytes: 1073741824, allocationBytes: 0, format: 'raw' });
  });

  it('builds a qcow2 overlay on a cached base, capacity optional', () => {
    const xml = buildStorageVolumeXml({
      name: 'i-1-root.qcow2',
      format: 'qcow2',
      backingStore: { path: '/var/lib/koala/cache/sha256-ab', format: 'raw' },
      permissions: { mode: 0o600, owner: 0, group: 0 },
    });
    expect(xml).not.toContain('<capacity');
    expect(xml).toMatch(/<mode>0600<\/mode>/);
    expect(parseStorageVolumeXml(xml)).toMatchObject({
      name: 'i-1-root.qcow2',
      format: 'qcow2',
      backingStorePath: '/var/lib/koala/cache/sha256-ab',
      backingStoreFormat: 'raw',
    });
    const grown = buildStorageVolumeXml({ name: 'r', format: 'qcow2', capacityBytes: 10 * 2 ** 30, backingStore: { path: '/b', format: 'qcow2' } });
    expect(parseStorageVolumeXml(grown)).toMatchObject({ capacityBytes: 10 * 2 ** 30, backingStoreFormat: 'qcow2' });
  });

  it('builds a plain qcow2', () => {
    const p = parseStorageVolumeXml(buildStorageVolumeXml({ name: 'q', format: 'qcow2', capacityBytes: 4096, permissions: { mode: '0644', label: 'x' } }));
    expect(p).toEqual({ name: 'q', format: 'qcow2', capacityBytes: 4096, allocationBytes: 0 });
  });

  it('parses what libvirt reports', () => {
    const v = parseStorageVolumeXml(`<volume type='file'><name>a.qcow2</name><key>/p/a.qcow2</key><capacity unit='bytes'>1048576</capacity>
      <allocation unit='bytes'>200704</allocation><physical unit='bytes'>196616</physical>
      <target><path>/p/a.qcow2</path><format type='qcow2'/><compat>1.1</compat></target>
      <backingStore><path>/p/base.raw</path><format type='raw'/></backingStore></volume>`);
    expect(v).toEqual({
      name: 'a.qcow2',
      type: 'file',
      key: '/p/a.qcow2',
      path: '/p/a.qcow2',
      capacityBytes: 1048576,
      allocationBytes: 200704,
      format: 'qcow2',
      backingStorePath: '/p/base.raw',
      backingStoreFormat: 'raw',
    });
  });

  it('escapes and round-trips names and backing paths', () => {
    const v = parseStorageVolumeXml(buildStorageVolumeXml({ name: NASTY, format: 'qcow2', backingStore: { path: `/b/${NASTY}`, format: 'qcow2' } }));
    expect(v).toMatchObject({ name: NASTY, backingStorePath: `/b/${NASTY}` });
  });

  it.each<[string, unknown, RegExp]>([
    ['empty name', { name: '', format: 'raw', capacityBytes: 1 }, /volume.name must not be empty/],
    ['slash', { name: 'a/b', format: 'raw', capacityBytes: 1 }, /must not contain '\/'/],
    ['negative size', { name: 'a', format: 'raw', capacityBytes: -1 }, /capacityBytes must be a non-negative integer/],
    ['zero size', { name: 'a', format: 'raw', capacityBytes: 0 }, /greater than zero/],
    ['no size', { name: 'a', format: 'raw' }, /capacityBytes is required/],
    ['raw overlay', { name: 'a', format: 'raw', capacityBytes: 1, backingStore: { path: '/b', format: 'raw' } }, /needs format qcow2/],
    ['allocation > capacity', { name: 'a', format: 'raw', capacityBytes: 1, allocationBytes: 2 }, /must not exceed/],
    ['bad mode', { name: 'a', format: 'raw', capacityBytes: 1, permissions: { mode: 'rw' } }, /octal mode/],
    ['bad format', { name: 'a', format: 'vdi', capacityBytes: 1 }, /volume.format must be one of raw, qcow2/],
  ])('rejects %s', (_l, spec, message) => {
    expect(() => buildStorageVolumeXml(spec as never)).toThrow(message);
  });
});

describe('secret XML', () => {
  it('builds a persistent private iSCSI secret and parses it', () => {
    const xml = buildSecretXml({ usageType: 'iscsi', usageTarget: 'koala-chap-vol-1', description: 'CHAP for vol-1' });
    expect(xml).toMatch(/^<secret ephemeral="no" private="yes">/);
    expect(xml).toMatch(/<usage type="iscsi">\s*<target>koala-chap-vol-1<\/target>\s*<\/usage>/);
    expect(parseSecretXml(xml)).toEqual({
      ephemeral: false,
      private: true,
      usageType: 'iscsi',
      usageTarget: 'koala-chap-vol-1',
      description: 'CHAP for vol-1',
    });
  });

  it('escapes and round-trips', () => {
    const s = parseSecretXml(buildSecretXml({ usageType: 'iscsi', usageTarget: NASTY, description: NASTY, uuid: '11111111-2222-3333-4444-555555555555' }));
    expect(s).toMatchObject({ usageTarget: NASTY, description: NASTY, uuid: '11111111-2222-3333-4444-555555555555' });
  });

  it('validates', () => {
    expect(() => buildSecretXml({ usageType: 'iscsi', usageTarget: '' })).toThrow(/usageTarget must not be empty/);
    expect(() => buildSecretXml({ usageType: 'ceph' as never, usageTarget: 'x' })).toThrow(/usageType must be iscsi/);
  });
});
