/**
 * The default-VPC face (pure): modern tools expect a default VPC with one default subnet per
 * zone. Koala has one flat network per zone, so the face is derived, never stored: the region's
 * one VPC (`defaultVpcId`), whose CIDR is the smallest block covering every zone subnet of
 * KOALA_ZONE_SUBNETS, and each answering zone's subnet as its default subnet (`defaultSubnetId`).
 */
import type { FilterSpec } from '@koala/ec2-query';
import { intToIp } from './address-pool.js';
import { defaultSubnetId, defaultVpcId, parseSubnet, zoneSubnet, type Subnet } from './addressing.js';

/** EC2's default limit (enforced at RunInstances; DescribeAccountAttributes `vpc-max-security-groups-per-interface`). */
export const MAX_GROUPS_PER_INTERFACE = 5;

export interface VpcView {
  vpcId: string;
  cidrBlock: string;
  ownerId: string;
  region: string;
}

export interface SubnetView {
  subnetId: string;
  vpcId: string;
  zone: string;
  zoneId: string;
  cidrBlock: string;
  ownerId: string;
  availableIpAddressCount: number;
  mapPublicIpOnLaunch: boolean;
}

/** The smallest block covering all `cidrs` (undefined when none). */
export function coveringCidr(cidrs: readonly string[]): string | undefined {
  const subnets = cidrs.map(parseSubnet);
  if (!subnets.length) return undefined;
  const lo = Math.min(...subnets.map((s) => s.network));
  const hi = Math.max(...subnets.map((s) => s.broadcast));
  let prefix = Math.min(...subnets.map((s) => s.prefix));
  for (; prefix > 0; prefix--) {
    const size = 2 ** (32 - prefix);
    const base = Math.floor(lo / size) * size;
    if (base + size - 1 >= hi) return `${intToIp(base)}/${prefix}`;
  }
  return '0.0.0.0/0';
}

/** The region's default VPC as `account` sees it (every account has the same one: one flat network). */
export function defaultVpc(region: string, zoneSubnets: Readonly<Record<string, string>>, accountId: string): VpcView {
  return { vpcId: defaultVpcId(region), cidrBlock: coveringCidr(Object.values(zoneSubnets)) ?? '0.0.0.0/0', ownerId: accountId, region };
}

/**
 * Free addresses of a subnet as EC2 counts them for a VPC subnet: all but the network, the
 * broadcast, the router (the first usable, never handed out) and `used` (interfaces and nodes).
 */
export function availableIpCount(s: Subnet, used: number): number {
  return Math.max(0, s.broadcast - s.network + 1 - 3 - used);
}

/** The default subnet of `zone` (undefined when KOALA_ZONE_SUBNETS gives it none). */
export function defaultSubnet(
  region: string,
  zoneSubnets: Readonly<Record<string, string>>,
  zone: { name: string; zoneId: string },
  accountId: string,
  used: number,
  mapPublicIpOnLaunch: boolean,
): SubnetView | undefined {
  const s = zoneSubnet(zoneSubnets, zone.name);
  if (!s) return undefined;
  return {
    subnetId: defaultSubnetId(region, zone.name),
    vpcId: defaultVpcId(region),
    zone: zone.name,
    zoneId: zone.zoneId,
    cidrBlock: s.cidr,
    ownerId: accountId,
    availableIpAddressCount: availableIpCount(s, used),
    mapPublicIpOnLaunch,
  };
}

export const VPC_FILTERS: FilterSpec<VpcView> = {
  'vpc-id': (v) => v.vpcId,
  'is-default': () => true,
  isDefault: () => true, // EC2 takes this spelling too (ansible's ec2_instance sends it)
  cidr: (v) => v.cidrBlock,
  'cidr-block-association.cidr-block': (v) => v.cidrBlock,
  'cidr-block-association.state': () => 'associated',
  state: () => 'available',
  'owner-id': (v) => v.ownerId,
  'dhcp-options-id': () => 'default',
  'instance-tenancy': () => 'default',
};

export const SUBNET_FILTERS: FilterSpec<SubnetView> = {
  'subnet-id': (s) => s.subnetId,
  'vpc-id': (s) => s.vpcId,
  'availability-zone': (s) => s.zone,
  availabilityZone: (s) => s.zone,
  'availability-zone-id': (s) => s.zoneId,
  'default-for-az': () => true,
  defaultForAz: () => true,
  'cidr-block': (s) => s.cidrBlock,
  cidr: (s) => s.cidrBlock,
  cidrBlock: (s) => s.cidrBlock,
  state: () => 'available',
  'owner-id': (s) => s.ownerId,
  'available-ip-address-count': (s) => s.availableIpAddressCount,
  'map-public-ip-on-launch': (s) => s.mapPublicIpOnLaunch,
};

export function vpcItem(v: VpcView) {
  return {
    vpcId: v.vpcId,
    ownerId: v.ownerId,
    state: 'available',
    cidrBlock: v.cidrBlock,
    cidrBlockAssociationSet: [{ associationId: `${v.vpcId.replace(/^vpc-/, 'vpc-cidr-assoc-')}`, cidrBlock: v.cidrBlock, cidrBlockState: { state: 'associated' } }],
    dhcpOptionsId: 'default',
    instanceTenancy: 'default',
    isDefault: true,
    tagSet: [],
  };
}

export function subnetItem(s: SubnetView, region: string) {
  return {
    subnetId: s.subnetId,
    subnetArn: `arn:aws:ec2:${region}:${s.ownerId}:subnet/${s.subnetId}`,
    state: 'available',
    ownerId: s.ownerId,
    vpcId: s.vpcId,
    cidrBlock: s.cidrBlock,
    ipv6CidrBlockAssociationSet: [],
    availableIpAddressCount: s.availableIpAddressCount,
    availabilityZone: s.zone,
    availabilityZoneId: s.zoneId,
    defaultForAz: true,
    mapPublicIpOnLaunch: s.mapPublicIpOnLaunch,
    assignIpv6AddressOnCreation: false,
    mapCustomerOwnedIpOnLaunch: false,
    enableDns64: false,
    ipv6Native: false,
    privateDnsNameOptionsOnLaunch: { hostnameType: 'ip-name', enableResourceNameDnsARecord: false, enableResourceNameDnsAAAARecord: false },
    tagSet: [],
  };
}
