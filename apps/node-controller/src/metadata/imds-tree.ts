/**
 * EC2's instance metadata trees, rendered from one instance's facts (pure: no I/O).
 *
 * Wire form as EC2: a directory answers its entries one a line (no trailing newline),
 * sub-directories with a trailing `/` (except the version list and a version's root, which EC2
 * lists bare); a leaf answers its value; a path is found with or without a trailing slash.
 * Every dated version serves the same tree as `latest` (as Eucalyptus did).
 */

/** What the metadata service knows of one instance. */
export interface ImdsInstance {
  instanceId: string;
  imageId: string;
  kernelId?: string;
  ramdiskId?: string;
  instanceType: string;
  accountId: string;
  reservationId: string;
  launchIndex: number;
  availabilityZone: string;
  region: string;
  virtualizationType: 'hvm' | 'paravirtual';
  /** Private DNS name: `hostname` and `local-hostname`. */
  localHostname: string;
  localIpv4: string;
  /** Koala has no public DNS names: EC2's public-hostname is the address (as Eucalyptus). */
  publicIpv4?: string;
  mac: string;
  interfaceId: string;
  subnetId: string;
  subnetCidr: string;
  vpcId: string;
  vpcCidr: string;
  securityGroups: { groupId: string; name: string }[];
  /** An ephemeral disk is attached (vdb). */
  ephemeral: boolean;
  keyName?: string;
  publicKey?: string;
  userData?: Buffer;
  /** ISO 8601 without milliseconds. */
  pendingTime: string;
}

/** Versions a client may probe, oldest first, then `latest` (as EC2 lists them). */
export const IMDS_VERSIONS: readonly string[] = [
  '1.0',
  '2007-01-19',
  '2007-03-01',
  '2007-08-29',
  '2007-10-10',
  '2007-12-15',
  '2008-02-01',
  '2008-09-01',
  '2009-04-04',
  '2011-01-01',
  '2011-05-01',
  '2012-01-12',
  '2014-02-25',
  '2014-11-05',
  '2015-10-20',
  '2016-04-19',
  '2016-06-30',
  '2016-09-02',
  '2018-03-28',
  '2018-08-17',
  '2018-09-24',
  '2019-10-01',
  '2020-10-27',
  '2021-01-03',
  '2021-03-23',
  '2021-07-15',
  '2022-09-24',
  'latest',
];

export type ImdsAnswer = { status: 200; contentType: string; body: Buffer } | { status: 404 };

/** A directory: its entries, and optionally EC2's own listing (public-keys/: `0=name`). */
class Dir {
  constructor(
    readonly entries: Map<string, Node>,
    readonly listing?: string[],
  ) {}
}
type Node = string | Buffer | Dir;

const dir = (entries: [string, Node | undefined][], listing?: string[]) =>
  new Dir(new Map(entries.filter((e): e is [string, Node] => e[1] !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), listing);

const lines = (xs: readonly string[]) => xs.join('\n');

/** The identity document, formatted as EC2 does (`"key" : value`, two-space indent). */
export function identityDocument(i: ImdsInstance): string {
  const fields: [string, string | null][] = [
    ['accountId', i.accountId],
    ['architecture', 'x86_64'],
    ['availabilityZone', i.availabilityZone],
    ['billingProducts', null],
    ['devpayProductCodes', null],
    ['marketplaceProductCodes', null],
    ['imageId', i.imageId],
    ['instanceId', i.instanceId],
    ['instanceType', i.instanceType],
    ['kernelId', i.kernelId ?? null],
    ['pendingTime', i.pendingTime],
    ['privateIp', i.localIpv4],
    ['ramdiskId', i.ramdiskId ?? null],
    ['region', i.region],
    ['version', '2017-09-30'],
  ];
  return `{\n${fields.map(([k, v]) => `  ${JSON.stringify(k)} : ${JSON.stringify(v)}`).join(',\n')}\n}`;
}

function metaData(i: ImdsInstance): Dir {
  const publicHostname = i.publicIpv4;
  const groupNames = lines(i.securityGroups.map((g) => g.name));
  const iface = dir([
    ['device-number', '0'],
    ['interface-id', i.interfaceId],
    ['ipv4-associations', i.publicIpv4 ? dir([[i.publicIpv4, i.localIpv4]]) : undefined],
    ['local-hostname', i.localHostname],
    ['local-ipv4s', i.localIpv4],
    ['mac', i.mac],
    ['owner-id', i.accountId],
    ['public-hostname', publicHostname],
    ['public-ipv4s', i.publicIpv4],
    ['security-group-ids', lines(i.securityGroups.map((g) => g.groupId))],
    ['security-groups', groupNames],
    ['subnet-id', i.subnetId],
    ['subnet-ipv4-cidr-block', i.subnetCidr],
    ['vpc-id', i.vpcId],
    ['vpc-ipv4-cidr-block', i.vpcCidr],
    ['vpc-ipv4-cidr-blocks', i.vpcCidr],
  ]);
  const publicKeys = i.publicKey !== undefined ? dir([['0', dir([['openssh-key', i.publicKey.trim() + '\n']])]], [`0=${i.keyName ?? ''}`]) : undefined;
  return dir([
    ['ami-id', i.imageId],
    ['ami-launch-index', String(i.launchIndex)],
    ['ami-manifest-path', '(unknown)'],
    [
      'block-device-mapping',
      dir([
        ['ami', '/dev/vda'],
        ['root', '/dev/vda'],
        ['ephemeral0', i.ephemeral ? 'vdb' : undefined],
      ]),
    ],
    ['hostname', i.localHostname],
    ['instance-action', 'none'],
    ['instance-id', i.instanceId],
    ['instance-life-cycle', 'on-demand'],
    ['instance-type', i.instanceType],
    ['kernel-id', i.kernelId],
    ['local-hostname', i.localHostname],
    ['local-ipv4', i.localIpv4],
    ['mac', i.mac],
    ['network', dir([['interfaces', dir([['macs', dir([[i.mac, iface]])]])]])],
    [
      'placement',
      dir([
        ['availability-zone', i.availabilityZone],
        ['region', i.region],
      ]),
    ],
    ['profile', i.virtualizationType === 'paravirtual' ? 'default-paravirtual' : 'default-hvm'],
    ['public-hostname', publicHostname],
    ['public-ipv4', i.publicIpv4],
    ['public-keys', publicKeys],
    ['ramdisk-id', i.ramdiskId],
    ['reservation-id', i.reservationId],
    ['security-groups', groupNames],
    [
      'services',
      dir([
        ['domain', 'amazonaws.com'],
        ['partition', 'aws'],
      ]),
    ],
  ]);
}

/** One version's tree; its root lists its entries bare (`dynamic`, `meta-data`, `user-data`). */
export function versionTree(i: ImdsInstance): Dir {
  const entries: [string, Node | undefined][] = [
    ['dynamic', dir([['instance-identity', dir([['document', identityDocument(i)]])]])],
    ['meta-data', metaData(i)],
    ['user-data', i.userData],
  ];
  const root = dir(entries);
  return new Dir(root.entries, [...root.entries.keys()]);
}

const TEXT = 'text/plain';

/**
 * The answer for a GET of `path` (the URL path without query) by instance `i`. Unknown paths,
 * unknown versions and absent user-data are 404.
 */
export function renderImds(i: ImdsInstance, path: string): ImdsAnswer {
  if (!path.startsWith('/')) return { status: 404 };
  const parts = path.split('/').filter((p) => p.length > 0);
  if (parts.length === 0) return { status: 200, contentType: TEXT, body: Buffer.from(lines(IMDS_VERSIONS)) };
  if (!IMDS_VERSIONS.includes(parts[0]!)) return { status: 404 };
  let node: Node = versionTree(i);
  for (const part of parts.slice(1)) {
    if (!(node instanceof Dir)) return { status: 404 };
    const next: Node | undefined = node.entries.get(part);
    if (next === undefined) return { status: 404 };
    node = next;
  }
  if (node instanceof Dir) {
    const listing = node.listing ?? [...node.entries].map(([k, v]) => (v instanceof Dir ? `${k}/` : k));
    return { status: 200, contentType: TEXT, body: Buffer.from(lines(listing)) };
  }
  if (Buffer.isBuffer(node)) return { status: 200, contentType: 'application/octet-stream', body: node };
  return { status: 200, contentType: TEXT, body: Buffer.from(node) };
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 500: 'Internal Server Error' };

/** EC2's error page for a status (an XHTML page titled `404 - Not Found`). */
export function errorPage(status: number): string {
  const title = `${status} - ${REASONS[status] ?? 'Error'}`;
  return [
    '<?xml version="1.0" encoding="iso-8859-1"?>',
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"',
    '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">',
    ' <head>',
    `  <title>${title}</title>`,
    ' </head>',
    ' <body>',
    `  <h1>${title}</h1>`,
    ' </body>',
    '</html>',
    '',
  ].join('\n');
}
