/**
 * Where RegisterImage may fetch from (pure rules; no I/O). A tenant's ImageLocation must not make
 * the CLC reach its own host or the operator's internal network (server-side request forgery):
 * only globally routable unicast addresses pass, unless the operator allow-lists a destination
 * (KOALA_IMAGE_FETCH_ALLOW: CIDRs and/or host[:port] entries).
 */
import { BlockList, isIP, isIPv4 } from 'node:net';

/** Special-purpose IPv4 ranges (IANA registry): never a fetch destination unless allow-listed. */
const DENIED_V4: ReadonlyArray<[string, number]> = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // private (RFC 1918)
  ['100.64.0.0', 10], // shared address space (CGNAT)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
];
/** Inside 2000::/3 (the only globally routable unicast IPv6 space), the special ranges. */
const DENIED_V6_IN_GLOBAL: ReadonlyArray<[string, number]> = [
  ['2001::', 23], // IETF protocol assignments (Teredo, benchmarking, ORCHID, ...)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address we would not check
  ['3fff::', 20], // documentation
];

const deniedV4 = new BlockList();
for (const [a, p] of DENIED_V4) deniedV4.addSubnet(a, p, 'ipv4');
const globalV6 = new BlockList();
globalV6.addSubnet('2000::', 3, 'ipv6');
const deniedV6 = new BlockList();
for (const [a, p] of DENIED_V6_IN_GLOBAL) deniedV6.addSubnet(a, p, 'ipv6');

/** `::ffff:a.b.c.d` (either spelling) → `a.b.c.d`; anything else unchanged. */
export function unmapIPv4(address: string): string {
  const m = /^::ffff:(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return address;
  if (m[1]) return m[1];
  const hi = parseInt(m[2]!, 16);
  const lo = parseInt(m[3]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** True for a globally routable unicast address (not loopback, private, link-local, multicast, reserved...). */
export function isPublicAddress(address: string): boolean {
  const a = unmapIPv4(address);
  if (isIPv4(a)) return !deniedV4.check(a, 'ipv4');
  if (isIP(a) === 6) return globalV6.check(a, 'ipv6') && !deniedV6.check(a, 'ipv6');
  return false;
}

/** The operator's allow-list, parsed. */
export interface FetchAllowList {
  readonly subnets: BlockList;
  /** `host` (any port) or `host:port` (`[v6]:port`), lower case. */
  readonly hosts: ReadonlySet<string>;
}

/** Parses KOALA_IMAGE_FETCH_ALLOW entries; throws on a malformed one (the config check uses it). */
export function parseFetchAllowList(entries: readonly string[]): FetchAllowList {
  const subnets = new BlockList();
  const hosts = new Set<string>();
  for (const raw of entries) {
    const e = raw.trim().toLowerCase();
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(e);
    if (cidr) {
      const fam = isIP(cidr[1]!);
      const bits = Number(cidr[2]);
      if (!fam || bits > (fam === 4 ? 32 : 128)) throw new Error(`not a CIDR: "${raw}"`);
      subnets.addSubnet(cidr[1]!, bits, fam === 4 ? 'ipv4' : 'ipv6');
      continue;
    }
    const hp = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9.-]+|[0-9a-f:]*:[0-9a-f:.]*))(?::(\d{1,5}))?$/.exec(e);
    // A bare IPv6 address has colons: it is a host without port (write [v6]:port for one).
    const bareV6 = isIP(e) === 6;
    const host = bareV6 ? e : (hp?.[1] ?? hp?.[2]);
    const port = bareV6 ? undefined : hp?.[3];
    if (!host || (hp?.[1] && isIP(hp[1]) !== 6) || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) {
      throw new Error(`not a CIDR or host[:port]: "${raw}"`);
    }
    hosts.add(port ? hostPort(host, Number(port)) : host);
  }
  return { subnets, hosts };
}

const hostPort = (host: string, port: number) => (isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`);

export type DestinationDecision = { ok: true; address: string; family: 4 | 6 } | { ok: false; reason: string };

/**
 * Decides a fetch destination: `host` (URL hostname, brackets removed), `port`, and every address
 * it resolved to. Every address must pass (a mix of public and internal answers is refused); the
 * connection is then pinned to the first one, so a second DNS answer cannot swap it.
 */
export function decideDestination(host: string, port: number, addresses: readonly string[], allow: FetchAllowList): DestinationDecision {
  const h = host.toLowerCase();
  if (!addresses.length) return { ok: false, reason: `${host} has no address` };
  const hostAllowed = allow.hosts.has(h) || allow.hosts.has(hostPort(h, port));
  for (const a of addresses) {
    const plain = unmapIPv4(a);
    const fam = isIP(plain);
    if (!fam) return { ok: false, reason: `${host} resolved to a non-address ${a}` };
    // An address entry (with or without port) also allows names that resolve to it.
    const allowed = hostAllowed || allow.subnets.check(plain, fam === 4 ? 'ipv4' : 'ipv6') || allow.hosts.has(plain) || allow.hosts.has(hostPort(plain, port));
    if (!allowed && !isPublicAddress(plain)) return { ok: false, reason: `${host} resolves to ${a}, a non-public address not in KOALA_IMAGE_FETCH_ALLOW` };
  }
  const first = unmapIPv4(addresses[0]!);
  return { ok: true, address: first, family: isIP(first) === 4 ? 4 : 6 };
}
