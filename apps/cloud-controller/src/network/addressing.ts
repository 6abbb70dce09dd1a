/**
 * Addressing decisions of guest networking (pure): the zone's subnet, the next free private
 * address, an instance's MAC, DNS names and the deterministic default-VPC ids.
 */
import { intToIp, ipToInt } from './address-pool.js';

export interface Subnet {
  cidr: string;
  network: number;
  prefix: number;
  broadcast: number;
}

export function parseSubnet(cidr: string): Subnet {
  const [addr, bits] = cidr.split('/');
  const prefix = Number(bits);
  const size = 2 ** (32 - prefix);
  const network = Math.floor(ipToInt(addr!) / size) * size;
  return { cidr: `${intToIp(network)}/${prefix}`, network, prefix, broadcast: network + size - 1 };
}

/** The zone's subnet from KOALA_ZONE_SUBNETS (its own entry, else `*`); undefined when neither. */
export function zoneSubnet(subnets: Readonly<Record<string, string>>, zone: string): Subnet | undefined {
  const cidr = subnets[zone] ?? subnets['*'];
  return cidr ? parseSubnet(cidr) : undefined;
}

/** The subnet's first usable address: the operator's router, never handed out. */
export const routerAddress = (s: Subnet): string => intToIp(s.network + 1);

/**
 * The lowest address of the subnet that is not the network, the broadcast, the router (first
 * usable) or in `used`; undefined when the subnet is full.
 */
export function nextPrivateIp(s: Subnet, used: Iterable<string>): string | undefined {
  const taken = new Set<number>();
  for (const ip of used) taken.add(ipToInt(ip));
  for (let n = s.network + 2; n < s.broadcast; n++) if (!taken.has(n)) return intToIp(n);
  return undefined;
}

/** The `count` lowest free addresses (as nextPrivateIp picks them one by one), in one pass; fewer when the subnet is full. */
export function nextPrivateIps(s: Subnet, used: Iterable<string>, count: number): string[] {
  const taken = new Set<number>();
  for (const ip of used) taken.add(ipToInt(ip));
  const out: string[] = [];
  for (let n = s.network + 2; n < s.broadcast && out.length < count; n++) if (!taken.has(n)) out.push(intToIp(n));
  return out;
}

const macText = (v: bigint): string => ['02', ...v.toString(16).padStart(10, '0').match(/../g)!].join(':');

/**
 * An instance's MAC: `02:` (locally administered, unicast) and the low 40 bits of its id; on a
 * clash with `used` the next free 40-bit value (wrapping).
 */
export function instanceMac(instanceId: string, used: ReadonlySet<string>): string {
  const hex = instanceId.replace(/^i-/, '');
  const mask = (1n << 40n) - 1n;
  let v = BigInt(`0x${hex.slice(-10)}`) & mask;
  for (let tries = 0; tries < 1_000_000; tries++, v = (v + 1n) & mask) {
    const mac = macText(v);
    if (!used.has(mac)) return mac;
  }
  throw new Error('no free MAC');
}

/** `ip-10-0-0-5.<suffix>` (EC2's IP-based private names). */
export const privateDnsName = (ip: string, suffix: string): string => `ip-${ip.replace(/\./g, '-')}.${suffix}`;

/** `ec2-198-51-100-7.<region>.compute.koala`: Koala's own public names (not amazonaws.com's). */
export const publicDnsName = (ip: string, region: string): string => `ec2-${ip.replace(/\./g, '-')}.${region}.compute.koala`;

/** The default VPC of the region and each zone's default subnet: stable ids derived from names (shared with the NC's metadata service). */
export { defaultSubnetId, defaultVpcId } from '@koala/contracts';
