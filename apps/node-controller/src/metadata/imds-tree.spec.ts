import { defaultSubnetId, defaultVpcId, type ZoneNetworkState } from '@koala/contracts';
import { errorPage, identityDocument, IMDS_VERSIONS, renderImds, type ImdsInstance } from './imds-tree.js';
import { derivedIds, imdsInstanceOf, interfaceOfCaller, metadataOptionsOf } from './imds-view.js';
import type { LaunchRecord } from './launch-spec-store.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGt4c3Rrb2FsYWtleWZvcnRlc3RzMDAwMDAwMDAwMDAw alice@example';

/** A paravirtual instance with everything: public IP, key, user-data, ephemeral disk, two groups. */
const full: ImdsInstance = {
  instanceId: 'i-0123456789abcdef0',
  imageId: 'emi-11112222',
  kernelId: 'eki-33334444',
  ramdiskId: 'eri-55556666',
  instanceType: 'm1.small',
  accountId: '000000000042',
  reservationId: 'r-0aaaabbbbccccdddd',
  launchIndex: 2,
  availabilityZone: 'koala-1a',
  region: 'koala-1',
  virtualizationType: 'paravirtual',
  localHostname: 'ip-172-31-0-5.koala-1.compute.internal',
  localIpv4: '172.31.0.5',
  publicIpv4: '198.51.100.7',
  mac: '02:01:23:45:67:89',
  interfaceId: 'eni-0123456789abcdef0',
  subnetId: 'subnet-0a1b2c3d4e5f60718',
  subnetCidr: '172.31.0.0/20',
  vpcId: 'vpc-0f0e0d0c0b0a09080',
  vpcCidr: '172.31.0.0/20',
  securityGroups: [
    { groupId: 'sg-0000000a', name: 'default' },
    { groupId: 'sg-0000000b', name: 'web' },
  ],
  ephemeral: true,
  keyName: 'alice',
  publicKey: KEY,
  userData: Buffer.from('#!/bin/sh\necho hi\n'),
  pendingTime: '2026-12-07T01:02:03Z',
};

/** An hvm instance with nothing optional. */
const bare: ImdsInstance = {
  ...full,
  virtualizationType: 'hvm',
  kernelId: undefined,
  ramdiskId: undefined,
  publicIpv4: undefined,
  keyName: undefined,
  publicKey: undefined,
  userData: undefined,
  ephemeral: false,
  securityGroups: [{ groupId: 'sg-0000000a', name: 'default' }],
};
for (const k of Object.keys(bare) as (keyof ImdsInstance)[]) if (bare[k] === undefined) delete bare[k];

const get = (i: ImdsInstance, path: string) => {
  const a = renderImds(i, path);
  return a.status === 200 ? a.body.toString('utf8') : a.status;
};

describe('renderImds: listings', () => {
  it('/ lists the versions, latest last', () => {
    expect(get(full, '/')).toBe(IMDS_VERSIONS.join('\n'));
    expect(IMDS_VERSIONS).toEqual(expect.arrayContaining(['1.0', '2007-01-19', '2009-04-04', '2016-09-02', '2018-09-24', '2021-03-23', 'latest']));
    expect(IMDS_VERSIONS.at(-1)).toBe('latest');
  });

  it('a version lists dynamic, meta-data and user-data only when there is some', () => {
    expect(get(full, '/latest/')).toBe('dynamic\nmeta-data\nuser-data');
    expect(get(full, '/latest')).toBe('dynamic\nmeta-data\nuser-data');
    expect(get(bare, '/latest/')).toBe('dynamic\nmeta-data');
    expect(get(full, '/2009-04-04/')).toBe('dynamic\nmeta-data\nuser-data');
    expect(get(full, '/1.0')).toBe('dynamic\nmeta-data\nuser-data');
  });

  it('meta-data/ of a full instance', () => {
    expect(get(full, '/latest/meta-data/')).toBe(
      [
        'ami-id',
        'ami-launch-index',
        'ami-manifest-path',
        'block-device-mapping/',
        'hostname',
        'instance-action',
        'instance-id',
        'instance-life-cycle',
        'instance-type',
        'kernel-id',
        'local-hostname',
        'local-ipv4',
        'mac',
        'network/',
        'placement/',
        'profile',
        'public-hostname',
        'public-ipv4',
        'public-keys/',
        'ramdisk-id',
        'reservation-id',
        'security-groups',
        'services/',
      ].join('\n'),
    );
  });

  it('meta-data/ of a bare instance leaves out kernel, ramdisk, public address and keys', () => {
    expect(get(bare, '/latest/meta-data')).toBe(
      [
        'ami-id',
        'ami-launch-index',
        'ami-manifest-path',
        'block-device-mapping/',
        'hostname',
        'instance-action',
        'instance-id',
        'instance-life-cycle',
        'instance-type',
        'local-hostname',
        'local-ipv4',
        'mac',
        'network/',
        'placement/',
        'profile',
        'reservation-id',
        'security-groups',
        'services/',
      ].join('\n'),
    );
  });

  it('block-device-mapping/, placement/, services/', () => {
    expect(get(full, '/latest/meta-data/block-device-mapping/')).toBe('ami\nephemeral0\nroot');
    expect(get(bare, '/latest/meta-data/block-device-mapping/')).toBe('ami\nroot');
    expect(get(full, '/latest/meta-data/block-device-mapping/ami')).toBe('/dev/vda');
    expect(get(full, '/latest/meta-data/block-device-mapping/root')).toBe('/dev/vda');
    expect(get(full, '/latest/meta-data/block-device-mapping/ephemeral0')).toBe('vdb');
    expect(get(bare, '/latest/meta-data/block-device-mapping/ephemeral0')).toBe(404);
    expect(get(full, '/latest/meta-data/placement/')).toBe('availability-zone\nregion');
    expect(get(full, '/latest/meta-data/placement/availability-zone')).toBe('koala-1a');
    expect(get(full, '/latest/meta-data/placement/region')).toBe('koala-1');
    expect(get(full, '/latest/meta-data/services/')).toBe('domain\npartition');
  });

  it('network/ down to the interface', () => {
    expect(get(full, '/latest/meta-data/network/')).toBe('interfaces/');
    expect(get(full, '/latest/meta-data/network/interfaces/')).toBe('macs/');
    expect(get(full, '/latest/meta-data/network/interfaces/macs/')).toBe('02:01:23:45:67:89/');
    const base = '/latest/meta-data/network/interfaces/macs/02:01:23:45:67:89';
    expect(get(full, `${base}/`)).toBe(
      [
        'device-number',
        'interface-id',
        'ipv4-associations/',
        'local-hostname',
        'local-ipv4s',
        'mac',
        'owner-id',
        'public-hostname',
        'public-ipv4s',
        'security-group-ids',
        'security-groups',
        'subnet-id',
        'subnet-ipv4-cidr-block',
        'vpc-id',
        'vpc-ipv4-cidr-block',
        'vpc-ipv4-cidr-blocks',
      ].join('\n'),
    );
    expect(get(bare, `${base}/`)).toBe(
      [
        'device-number',
        'interface-id',
        'local-hostname',
        'local-ipv4s',
        'mac',
        'owner-id',
        'security-group-ids',
        'security-groups',
        'subnet-id',
        'subnet-ipv4-cidr-block',
        'vpc-id',
        'vpc-ipv4-cidr-block',
        'vpc-ipv4-cidr-blocks',
      ].join('\n'),
    );
    expect(get(full, `${base}/device-number`)).toBe('0');
    expect(get(full, `${base}/interface-id`)).toBe('eni-0123456789abcdef0');
    expect(get(full, `${base}/ipv4-associations/`)).toBe('198.51.100.7');
    expect(get(full, `${base}/ipv4-associations/198.51.100.7`)).toBe('172.31.0.5');
    expect(get(full, `${base}/local-hostname`)).toBe('ip-172-31-0-5.koala-1.compute.internal');
    expect(get(full, `${base}/local-ipv4s`)).toBe('172.31.0.5');
    expect(get(full, `${base}/mac`)).toBe('02:01:23:45:67:89');
    expect(get(full, `${base}/owner-id`)).toBe('000000000042');
    expect(get(full, `${base}/public-hostname`)).toBe('198.51.100.7');
    expect(get(full, `${base}/public-ipv4s`)).toBe('198.51.100.7');
    expect(get(full, `${base}/security-group-ids`)).toBe('sg-0000000a\nsg-0000000b');
    expect(get(full, `${base}/security-groups`)).toBe('default\nweb');
    expect(get(full, `${base}/subnet-id`)).toBe('subnet-0a1b2c3d4e5f60718');
    expect(get(full, `${base}/subnet-ipv4-cidr-block`)).toBe('172.31.0.0/20');
    expect(get(full, `${base}/vpc-id`)).toBe('vpc-0f0e0d0c0b0a09080');
    expect(get(full, `${base}/vpc-ipv4-cidr-block`)).toBe('172.31.0.0/20');
    expect(get(full, `${base}/vpc-ipv4-cidr-blocks`)).toBe('172.31.0.0/20');
    expect(get(full, '/latest/meta-data/network/interfaces/macs/02:00:00:00:00:01/')).toBe(404);
  });

  it('public-keys/ as EC2: 0=<keyname>, then openssh-key', () => {
    expect(get(full, '/latest/meta-data/public-keys/')).toBe('0=alice');
    expect(get(full, '/latest/meta-data/public-keys/0/')).toBe('openssh-key');
    expect(get(full, '/latest/meta-data/public-keys/0')).toBe('openssh-key');
    expect(get(full, '/latest/meta-data/public-keys/0/openssh-key')).toBe(`${KEY}\n`);
    expect(get(full, '/latest/meta-data/public-keys/1/')).toBe(404);
    expect(get(full, '/latest/meta-data/public-keys/0=alice')).toBe(404);
    expect(get(bare, '/latest/meta-data/public-keys/')).toBe(404);
  });

  it('dynamic/', () => {
    expect(get(full, '/latest/dynamic/')).toBe('instance-identity/');
    expect(get(full, '/latest/dynamic/instance-identity/')).toBe('document');
  });
});

describe('renderImds: values', () => {
  it('every top-level leaf of a full instance', () => {
    const want: Record<string, string> = {
      'ami-id': 'emi-11112222',
      'ami-launch-index': '2',
      'ami-manifest-path': '(unknown)',
      hostname: 'ip-172-31-0-5.koala-1.compute.internal',
      'instance-action': 'none',
      'instance-id': 'i-0123456789abcdef0',
      'instance-life-cycle': 'on-demand',
      'instance-type': 'm1.small',
      'kernel-id': 'eki-33334444',
      'local-hostname': 'ip-172-31-0-5.koala-1.compute.internal',
      'local-ipv4': '172.31.0.5',
      mac: '02:01:23:45:67:89',
      profile: 'default-paravirtual',
      'public-hostname': '198.51.100.7',
      'public-ipv4': '198.51.100.7',
      'ramdisk-id': 'eri-55556666',
      'reservation-id': 'r-0aaaabbbbccccdddd',
      'security-groups': 'default\nweb',
    };
    for (const [k, v] of Object.entries(want)) expect([k, get(full, `/latest/meta-data/${k}`)]).toEqual([k, v]);
    expect(get(bare, '/latest/meta-data/profile')).toBe('default-hvm');
    for (const k of ['kernel-id', 'ramdisk-id', 'public-ipv4', 'public-hostname']) expect(get(bare, `/latest/meta-data/${k}`)).toBe(404);
  });

  it('user-data: the bytes as given, octet-stream; 404 when none', () => {
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe]);
    const a = renderImds({ ...full, userData: bytes }, '/latest/user-data');
    expect(a).toEqual({ status: 200, contentType: 'application/octet-stream', body: bytes });
    expect(get(bare, '/latest/user-data')).toBe(404);
    expect(get(bare, '/2009-04-04/user-data')).toBe(404);
  });

  it('the identity document, as EC2 formats it', () => {
    expect(get(full, '/latest/dynamic/instance-identity/document')).toBe(`{
  "accountId" : "000000000042",
  "architecture" : "x86_64",
  "availabilityZone" : "koala-1a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "emi-11112222",
  "instanceId" : "i-0123456789abcdef0",
  "instanceType" : "m1.small",
  "kernelId" : "eki-33334444",
  "pendingTime" : "2026-12-07T01:02:03Z",
  "privateIp" : "172.31.0.5",
  "ramdiskId" : "eri-55556666",
  "region" : "koala-1",
  "version" : "2017-09-30"
}`);
    const doc = JSON.parse(identityDocument(bare));
    expect(doc).toMatchObject({ kernelId: null, ramdiskId: null, imageId: 'emi-11112222', privateIp: '172.31.0.5' });
  });
});

describe('renderImds: not found', () => {
  it.each([
    '/nope',
    '/2099-01-01/meta-data/',
    '/latest/meta-data/nope',
    '/latest/meta-data/ami-id/more',
    '/latest/meta-data/../meta-data/ami-id',
    '/latest/meta-data/__proto__',
    '/latest/meta-data/constructor',
    '/latest/meta-data/hasOwnProperty',
    '/LATEST/meta-data/',
    '/latest/meta-data/ami-id\u0000',
    'latest/meta-data/',
    '',
  ])('%j', (p) => expect(get(full, p)).toBe(404));

  it('the error page', () => {
    expect(errorPage(404)).toContain('<title>404 - Not Found</title>');
    expect(errorPage(404)).toContain('<h1>404 - Not Found</h1>');
    expect(errorPage(401)).toContain('401 - Unauthorized');
  });
});

describe('imdsInstanceOf', () => {
  const record: LaunchRecord = {
    instanceId: 'i-0123456789abcdef0',
    reservationId: 'r-1',
    accountId: '000000000042',
    instanceType: 'm1.small',
    virtualizationType: 'hvm',
    imageId: 'emi-11112222',
    userData: Buffer.from('hello').toString('base64'),
    keyName: 'alice',
    publicKey: KEY,
    hostname: 'i-0123456789abcdef0',
    availabilityZone: 'koala-1a',
    launchIndex: 0,
    ephemeral: false,
    network: {
      mac: '02:01:23:45:67:89',
      privateIp: '172.31.0.5',
      subnet: '172.31.0.0/20',
      privateDnsName: 'ip-172-31-0-5.koala-1.compute.internal',
      groups: [{ groupId: 'sg-0000000c', name: 'old' }],
    },
    metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 2, httpEndpoint: 'enabled' },
    pendingTime: '2026-12-07T01:02:03Z',
  };
  const state: ZoneNetworkState = {
    zone: 'koala-1a',
    version: 3,
    subnet: '172.31.0.0/20',
    dnsSuffix: 'koala-1.compute.internal',
    nodes: [{ node: 'n1', address: '172.31.0.2' }],
    interfaces: [
      {
        instanceId: 'i-0123456789abcdef0',
        interfaceId: 'eni-00000000000000abc',
        node: 'n1',
        mac: '02:01:23:45:67:89',
        privateIp: '172.31.0.5',
        publicIp: '198.51.100.9',
        groupIds: ['sg-0000000a', 'sg-0000000c'],
      },
      { instanceId: 'i-0000000000000000f', node: 'n2', mac: '02:00:00:00:00:0f', privateIp: '172.31.0.6', groupIds: [] },
    ],
    groups: [{ groupId: 'sg-0000000a', name: 'default', ingress: [], egress: [] }],
    generatedAt: '2026-12-07T01:00:00Z',
  };

  it('takes addresses and groups from the state, the rest from the launch', () => {
    const iface = interfaceOfCaller(state, 'n1', '172.31.0.5')!;
    const i = imdsInstanceOf(record, iface, state, 'koala-1');
    expect(i).toMatchObject({
      localIpv4: '172.31.0.5',
      publicIpv4: '198.51.100.9',
      localHostname: 'ip-172-31-0-5.koala-1.compute.internal',
      securityGroups: [
        { groupId: 'sg-0000000a', name: 'default' },
        { groupId: 'sg-0000000c', name: 'old' },
      ],
      subnetCidr: '172.31.0.0/20',
      ...derivedIds('koala-1', 'koala-1a', iface),
    });
    expect(i.userData?.toString()).toBe('hello');
    // The CLC's ids: its interface id from the state, the default VPC's and subnet's as DescribeInstances shows them.
    expect(i.interfaceId).toBe('eni-00000000000000abc');
    expect(i.vpcId).toBe(defaultVpcId('koala-1'));
    expect(i.subnetId).toBe(defaultSubnetId('koala-1', 'koala-1a'));
    expect(imdsInstanceOf(record, { ...iface, interfaceId: undefined }, state, 'koala-1').interfaceId).toBe('eni-0123456789abcdef0');
    expect(i.vpcId).toMatch(/^vpc-[0-9a-f]{17}$/);
    expect(i.subnetId).toMatch(/^subnet-[0-9a-f]{17}$/);
  });

  it('finds only interfaces of this node', () => {
    expect(interfaceOfCaller(state, 'n1', '172.31.0.6')).toBeUndefined();
    expect(interfaceOfCaller(state, 'n2', '172.31.0.6')?.instanceId).toBe('i-0000000000000000f');
    expect(interfaceOfCaller(undefined, 'n1', '172.31.0.5')).toBeUndefined();
  });

  it('metadata options: live state, then launch, then defaults', () => {
    const iface = state.interfaces[0]!;
    expect(metadataOptionsOf(iface, record).httpTokens).toBe('required');
    expect(metadataOptionsOf({ ...iface, metadataOptions: { httpTokens: 'optional', httpPutResponseHopLimit: 1, httpEndpoint: 'disabled' } }, record).httpEndpoint).toBe('disabled');
    expect(metadataOptionsOf(iface, undefined)).toEqual({ httpTokens: 'optional', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' });
  });
});
