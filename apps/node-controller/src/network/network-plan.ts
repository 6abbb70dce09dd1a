import type { NetworkGroup, NetworkInterfaceState, NetworkRule, ZoneNetworkState } from '@koala/contracts';
import { buildDhcpHostXml, buildNetworkXml } from '@koala/libvirt';

/**
 * The pure half of the network agent: from the zone's desired state and this node's settings,
 * everything this node must hold (libvirt network, per-instance nwfilters, ipsets, NAT rules,
 * public addresses). Every list is sorted so two plans compare exactly and a re-apply finds
 * nothing to change.
 */

export interface NodeNetConfig {
  node: string;
  bridge: string;
  uplink?: string;
  publicIf?: string;
  metadataPort: number;
}

export interface DhcpHost {
  mac: string;
  ip: string;
  name: string;
}

export interface PlannedNetwork {
  name: string;
  bridge: string;
  address: string;
  prefix: number;
  domain: string;
  hosts: DhcpHost[];
  /** dnsmasq options of the network (ZONE_DNSMASQ_OPTIONS). */
  dnsmasqOptions: string[];
  xml: string;
}

export interface PlannedFilter {
  name: string;
  instanceId: string;
  xml: string;
}

/** `hash:net`: peer networks; `hash:net,port`: `net,tcp:port` / `net,udp:port` pairs. */
export type IpsetType = 'hash:net' | 'hash:net,port';

export interface PlannedIpset {
  name: string;
  type: IpsetType;
  /** As `ipset save` prints them (a /32 without its prefix), sorted. */
  members: string[];
}

export interface NatRules {
  prerouting: string[];
  postrouting: string[];
  output: string[];
}

export interface NetworkPlan {
  /** Koala's mangle chain: the IMDSv2 token answers' hop limit (`imdsHopLimitRules`). */
  mangle: string[];
  /** `iptables-restore --noflush` input holding only that chain. */
  mangleRestore: string;
  /** Koala's mangle chain for traffic routed to the guests: their ingress rules (`routedIngressRules`). */
  forward: string[];
  /** `iptables-restore --noflush` input holding only that chain. */
  forwardRestore: string;
  zone: string;
  version: number;
  subnet: string;
  nodeAddress: string;
  network: PlannedNetwork;
  filters: PlannedFilter[];
  ipsets: PlannedIpset[];
  nat: NatRules;
  /** `iptables-restore --noflush` input holding only Koala's chains. */
  natRestore: string;
  /** Addresses this node holds on its public interface (its instances' public IPs). */
  publicAddresses: string[];
  /** This node's interfaces (after local additions and exclusions), by instance id. */
  interfaces: NetworkInterfaceState[];
}

/** What the NC knows beyond the state: launches not yet in it, terminated instances still in it. */
export interface LocalOverrides {
  extra?: NetworkInterfaceState[];
  exclude?: Iterable<string>;
}

export const METADATA_ADDRESS = '169.254.169.254';
export const NAT_CHAINS = { prerouting: 'KOALA-PREROUTING', postrouting: 'KOALA-POSTROUTING', output: 'KOALA-OUTPUT' } as const;
/** Built-in nat chain → Koala's chain jumped to from it. */
export const NAT_JUMPS: readonly (readonly [string, string])[] = [
  ['PREROUTING', NAT_CHAINS.prerouting],
  ['POSTROUTING', NAT_CHAINS.postrouting],
  ['OUTPUT', NAT_CHAINS.output],
];
export const FILTER_PREFIX = 'koala-i-';
export const IPSET_PREFIX = 'koala-';
/** Every set the agent owns starts so (`koala-sg-…`); others, even `koala-` ones, are never touched. */
export const OWNED_IPSET_PREFIX = `${IPSET_PREFIX}sg-`;

export const networkName = (zone: string) => `koala-${zone}`;
export const filterName = (instanceId: string) => `${FILTER_PREFIX}${instanceId}`;
/**
 * A group's rule set: `a` (protocol all: peer networks) or `p` (tcp/udp: peer network and port),
 * `i` (ingress) or `o` (egress). ≤ 31 characters with the `-t` of a rebuild for 17-hex group ids.
 */
export const groupSetName = (groupId: string, kind: 'a' | 'p', dir: 'i' | 'o') => `${IPSET_PREFIX}${groupId}-${kind}${dir}`;
/** EC2's private host name (`ip-10-0-0-5`), the DHCP host name. */
export const privateHostName = (ip: string) => `ip-${ip.replace(/\./g, '-')}`;

// ---- addresses -----------------------------------------------------------------------------

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

const byIp = (a: string, b: string) => ipToInt(a) - ipToInt(b);

export function parseCidr(cidr: string): { base: string; prefix: number } {
  const [base, p] = cidr.split('/');
  return { base: base!, prefix: Number(p) };
}

export function inCidr(ip: string, cidr: string): boolean {
  const { base, prefix } = parseCidr(cidr);
  if (prefix === 0) return true;
  const mask = prefix === 32 ? 0xffffffff : ~((1 << (32 - prefix)) - 1) >>> 0;
  return (ipToInt(ip) & mask) >>> 0 === (ipToInt(base) & mask) >>> 0;
}

/** A CIDR with its host bits cleared (iptables and libvirt print it that way). */
export function normalCidr(cidr: string): string {
  const { base, prefix } = parseCidr(cidr);
  const mask = prefix === 0 ? 0 : prefix === 32 ? 0xffffffff : ~((1 << (32 - prefix)) - 1) >>> 0;
  const n = (ipToInt(base) & mask) >>> 0;
  return `${[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')}/${prefix}`;
}

// ---- XML -----------------------------------------------------------------------------------

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
const attrs = (a: Record<string, string | number | undefined>) =>
  Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}='${esc(String(v))}'`)
    .join('');

/**
 * Lease time of a guest's DHCP entry. dnsmasq will not hand an address to a new MAC while an
 * old lease of it runs (libvirt's default: one hour), and the CLC reuses a terminated
 * instance's address at once: a short lease bounds that wait (guests renew at half of it).
 */
export const DHCP_LEASE_MINUTES = 2;

/**
 * A DHCP entry every node's network holds besides its guests': the node's own address under a
 * MAC no guest has (the CLC gives guests `02:` MACs). libvirt restarts dnsmasq (1-2 s here)
 * when an update turns DHCP on or off, i.e. when the first guest's entry comes or the last one's
 * goes; with this entry DHCP is always on and every guest's entry is a hosts-file reload (SIGHUP).
 * The MAC never sends (anti-spoofing lets a guest send only with its own), so nothing is ever
 * offered the node's address.
 */
export const DHCP_ANCHOR_MAC = '06:00:00:00:00:00';
export function dhcpAnchor(nodeAddress: string): DhcpHost {
  return { mac: DHCP_ANCHOR_MAC, ip: nodeAddress, name: 'koala-dhcp-anchor' };
}

export function dhcpHostXml(h: DhcpHost): string {
  return buildDhcpHostXml({ ...h, leaseMinutes: DHCP_LEASE_MINUTES });
}

/**
 * libvirt makes its dnsmasq `dhcp-authoritative`: on a segment shared by several nodes each
 * dnsmasq sees every guest's DHCP traffic and would NAK the other nodes' guests when they renew
 * (broadcast REQUEST). Clients without a static entry here are ignored instead.
 */
export const ZONE_DNSMASQ_OPTIONS: readonly string[] = ['dhcp-ignore=tag:!known'];

export function networkXml(n: Omit<PlannedNetwork, 'xml'>): string {
  return (
    buildNetworkXml({
      name: n.name,
      forward: { mode: 'open' },
      bridge: { name: n.bridge, stp: false, delay: 0 },
      domain: { name: n.domain, localOnly: true },
      ip: { address: n.address, prefix: n.prefix, dhcpHosts: n.hosts.map((h) => ({ ...h, leaseMinutes: DHCP_LEASE_MINUTES })) },
      dnsmasqOptions: n.dnsmasqOptions,
    }) + '\n'
  );
}

/** nwfilter rule priorities: lower runs first (libvirt orders by priority, then by position). */
const PRIO = { replies: 100, dhcp: 110, node: 120, group: 500, drop: 1000 } as const;
/** Anti-spoofing (ebtables: libvirt keeps these apart from the ip rules above), before everything. */
const L2 = { mac: -900, dhcp: -890, ip: -880, arp: -870, other: -860 } as const;

type Dir = 'in' | 'out' | 'inout';
interface FilterRule {
  action: 'accept' | 'drop';
  direction: Dir;
  priority: number;
  statematch?: false;
  proto: 'all' | 'tcp' | 'udp' | 'icmp' | 'mac' | 'ip' | 'arp';
  attrs: Record<string, string | number | undefined>;
}

const ruleXml = (r: FilterRule) =>
  `  <rule${attrs({ action: r.action, direction: r.direction, priority: r.priority, statematch: r.statematch === false ? 'false' : undefined })}>\n    <${r.proto}${attrs(r.attrs)}/>\n  </rule>`;

/** Current private IPs of each group's members (across the zone), sorted. */
export type GroupMembers = ReadonlyMap<string, readonly string[]>;

/** A tcp/udp rule expanding to more set entries than this (peers × ports) stays an nwfilter rule. */
export const MAX_SET_ENTRIES_PER_RULE = 1024;

/** A network as `ipset save` prints it in a hash:net set (hash:net refuses /0: two halves). */
function setNets(cidr: string): string[] {
  const { base, prefix } = parseCidr(normalCidr(cidr));
  if (prefix === 0) return ['0.0.0.0/1', '128.0.0.0/1'];
  return [prefix === 32 ? base : `${base}/${prefix}`];
}

/**
 * A rule's peers and ports as set entries, or undefined when it stays an nwfilter rule (icmp:
 * `ipset save` prints types by name; tcp/udp ranges too wide to list port by port).
 */
function setEntries(rule: NetworkRule, members: GroupMembers): { kind: 'a' | 'p'; entries: string[] } | undefined {
  const nets = [...rule.cidrs.flatMap(setNets), ...rule.groupIds.flatMap((g) => members.get(g) ?? [])];
  if (rule.protocol === 'all') return { kind: 'a', entries: nets };
  if (rule.protocol !== 'tcp' && rule.protocol !== 'udp') return undefined;
  const from = rule.fromPort < 0 ? 0 : rule.fromPort;
  const to = rule.toPort < 0 ? 65535 : rule.toPort;
  if (to < from || (to - from + 1) * Math.max(nets.length, 1) > MAX_SET_ENTRIES_PER_RULE) return undefined;
  const entries: string[] = [];
  for (const n of nets) for (let p = from; p <= to; p++) entries.push(`${n},${rule.protocol}:${p}`);
  return { kind: 'p', entries };
}

const entryOrder = (a: string, b: string) => {
  const [na, pa = ''] = a.split(',');
  const [nb, pb = ''] = b.split(',');
  const ca = na!.includes('/') ? na! : `${na}/32`;
  const cb = nb!.includes('/') ? nb! : `${nb}/32`;
  return cidrOrder(ca, cb) || (pa < pb ? -1 : pa > pb ? 1 : 0);
};

/**
 * A group's four rule sets (`a`/`p` × ingress/egress) from its rules that sets can hold.
 * Every local guest's filter matches its groups' sets, so changing such a rule, or a peer
 * group's members, is an `ipset restore`: no filter changes, nothing for libvirt to rebuild.
 */
export function groupSets(group: NetworkGroup, members: GroupMembers): PlannedIpset[] {
  const out: PlannedIpset[] = [];
  for (const [dir, rules] of [
    ['i', group.ingress],
    ['o', group.egress],
  ] as const) {
    const acc = { a: new Set<string>(), p: new Set<string>() };
    for (const r of rules) {
      const e = setEntries(r, members);
      if (e) for (const x of e.entries) acc[e.kind].add(x);
    }
    out.push({ name: groupSetName(group.groupId, 'a', dir), type: 'hash:net', members: [...acc.a].sort(entryOrder) });
    out.push({ name: groupSetName(group.groupId, 'p', dir), type: 'hash:net,port', members: [...acc.p].sort(entryOrder) });
  }
  return out;
}

/** The filter's matches of a group's sets (their entries: groupSets). */
function groupSetRules(groupId: string): FilterRule[] {
  const rule = (direction: Dir, kind: 'a' | 'p', flags: string): FilterRule => ({
    action: 'accept',
    direction,
    priority: PRIO.group,
    proto: 'all',
    attrs: { ipset: groupSetName(groupId, kind, direction === 'in' ? 'i' : 'o'), ipsetflags: flags },
  });
  // In: the peer is the sender, the port the guest's; out: both the destination's.
  return [rule('in', 'a', 'src'), rule('in', 'p', 'src,dst'), rule('out', 'a', 'dst'), rule('out', 'p', 'dst,dst')];
}

/**
 * One security-group rule that sets cannot hold (setEntries) as nwfilter rules. libvirt's
 * directions: `in` is traffic TO the guest, `out` traffic FROM it; the attributes describe
 * packets of that direction (a rule `in` with `srcipaddr` names the sender, libvirt swaps the
 * fields for the reply chain itself).
 *
 * Group peers: libvirt (9.0 at least) keeps `ipset` only on `<all>` and silently DROPS it from
 * `<tcp>`, `<udp>` and `<icmp>` (the rule would then accept every sender): such a rule gets one
 * rule per current member (`srcipaddr`/`dstipaddr`), and a member joining or leaving redefines
 * the filters that name it. (Set rules are `<all>` rules matching `net,proto:port` sets.)
 */
function groupRules(rule: NetworkRule, ingress: boolean, members: GroupMembers): FilterRule[] {
  if (setEntries(rule, members)) return [];
  const direction: Dir = ingress ? 'in' : 'out';
  const peer = ingress ? 'src' : 'dst';
  const ports: Record<string, number | undefined> = {};
  if (rule.protocol === 'tcp' || rule.protocol === 'udp') {
    const from = rule.fromPort < 0 ? 0 : rule.fromPort;
    const to = rule.toPort < 0 ? 65535 : rule.toPort;
    if (!(from === 0 && to === 65535)) {
      ports.dstportstart = from;
      if (to !== from) ports.dstportend = to;
    }
  } else if (rule.protocol === 'icmp') {
    if (rule.fromPort >= 0) ports.type = rule.fromPort;
    if (rule.fromPort >= 0 && rule.toPort >= 0) ports.code = rule.toPort;
  }
  const out: FilterRule[] = [];
  for (const c of [...new Set(rule.cidrs.map(normalCidr))].sort(cidrOrder)) {
    const { base, prefix } = parseCidr(c);
    const addr = prefix === 0 ? {} : { [`${peer}ipaddr`]: base, [`${peer}ipmask`]: prefix };
    out.push({ action: 'accept', direction, priority: PRIO.group, proto: rule.protocol, attrs: { ...addr, ...ports } });
  }
  for (const g of [...new Set(rule.groupIds)].sort()) {
    for (const ip of members.get(g) ?? []) out.push({ action: 'accept', direction, priority: PRIO.group, proto: rule.protocol, attrs: { [`${peer}ipaddr`]: ip, ...ports } });
  }
  return out;
}

const cidrOrder = (a: string, b: string) => {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  return byIp(pa.base, pb.base) || pa.prefix - pb.prefix;
};

/**
 * The guest's own MAC and IP, IPv4 and ARP only: what libvirt's `clean-traffic` guarantees,
 * with the values written out and every rule in the tap's root ebtables chain. clean-traffic's
 * six filters make libvirt create, link and rename a chain per protocol on every tap (about 100
 * ebtables commands); these are about 30. Sent by the guest (`out`): its MAC as source or
 * dropped; IPv4 from its IP (or DHCP from 0.0.0.0); ARP announcing its MAC with its IP (or
 * 0.0.0.0, a probe); anything else at L2 dropped both ways (IPv6, RARP, ...).
 */
function antiSpoofRules(ip: string, mac: string): FilterRule[] {
  return [
    { action: 'drop', direction: 'out', priority: L2.mac, proto: 'mac', attrs: { match: 'no', srcmacaddr: mac } },
    { action: 'accept', direction: 'out', priority: L2.dhcp, proto: 'ip', attrs: { srcipaddr: '0.0.0.0', protocol: 'udp', srcportstart: 68, dstportstart: 67 } },
    { action: 'accept', direction: 'out', priority: L2.ip, proto: 'ip', attrs: { srcipaddr: ip } },
    { action: 'accept', direction: 'in', priority: L2.ip, proto: 'ip', attrs: {} },
    { action: 'accept', direction: 'out', priority: L2.arp, proto: 'arp', attrs: { arpsrcmacaddr: mac, arpsrcipaddr: ip } },
    { action: 'accept', direction: 'out', priority: L2.arp, proto: 'arp', attrs: { arpsrcmacaddr: mac, arpsrcipaddr: '0.0.0.0' } },
    { action: 'accept', direction: 'in', priority: L2.arp, proto: 'arp', attrs: {} },
    { action: 'drop', direction: 'inout', priority: L2.other, proto: 'mac', attrs: {} },
  ];
}

/** What the guest's security groups allow, both directions (sets first, then the rules sets cannot hold). */
function groupFilterRules(iface: NetworkInterfaceState, groups: readonly NetworkGroup[], members: GroupMembers): FilterRule[] {
  const byId = new Map(groups.map((g) => [g.groupId, g]));
  const out: FilterRule[] = [];
  for (const gid of [...new Set(iface.groupIds)].sort()) {
    const g = byId.get(gid);
    if (!g) continue; // unknown yet: contributes nothing (deny)
    out.push(...groupSetRules(gid));
    for (const r of g.ingress) out.push(...groupRules(r, true, members));
    for (const r of g.egress) out.push(...groupRules(r, false, members));
  }
  return out;
}

export function filterXml(iface: NetworkInterfaceState, groups: readonly NetworkGroup[], nodeAddress: string, metadataPort: number, members: GroupMembers = new Map()): string {
  const rules: FilterRule[] = [
    ...antiSpoofRules(iface.privateIp, iface.mac),
    // Replies to connections either side opened (libvirt keeps state per rule, but a reply must
    // pass even when the rule that let the first packet through was removed meanwhile).
    { action: 'accept', direction: 'in', priority: PRIO.replies, proto: 'all', attrs: { state: 'ESTABLISHED,RELATED' } },
    { action: 'accept', direction: 'out', priority: PRIO.replies, proto: 'all', attrs: { state: 'ESTABLISHED,RELATED' } },
    // DHCP with the node (broadcast answers match no connection: stateless).
    { action: 'accept', direction: 'out', priority: PRIO.dhcp, statematch: false, proto: 'udp', attrs: { srcportstart: 68, dstportstart: 67 } },
    { action: 'accept', direction: 'in', priority: PRIO.dhcp, statematch: false, proto: 'udp', attrs: { srcipaddr: nodeAddress, srcportstart: 67, dstportstart: 68 } },
    // The node's services whatever the groups say: DNS and the metadata service (before and after its DNAT).
    { action: 'accept', direction: 'out', priority: PRIO.node, proto: 'udp', attrs: { dstipaddr: nodeAddress, dstportstart: 53 } },
    { action: 'accept', direction: 'out', priority: PRIO.node, proto: 'tcp', attrs: { dstipaddr: nodeAddress, dstportstart: 53 } },
    { action: 'accept', direction: 'out', priority: PRIO.node, proto: 'tcp', attrs: { dstipaddr: METADATA_ADDRESS, dstportstart: 80 } },
    { action: 'accept', direction: 'out', priority: PRIO.node, proto: 'tcp', attrs: { dstipaddr: nodeAddress, dstportstart: metadataPort } },
  ];
  const seen = new Set<string>();
  for (const r of groupFilterRules(iface, groups, members)) {
    const x = ruleXml(r);
    if (!seen.has(x)) seen.add(x);
  }
  // Deterministic: ingress first, then egress, each sorted by rendered text.
  const rendered = [...seen].sort((a, b) => dirKey(a) - dirKey(b) || (a < b ? -1 : a > b ? 1 : 0));
  return [
    `<filter name='${esc(filterName(iface.instanceId))}' chain='root'>`,
    ...rules.map(ruleXml),
    ...rendered,
    // Everything no rule accepted, both ways (stateless: also late packets of a revoked rule).
    ruleXml({ action: 'drop', direction: 'inout', priority: PRIO.drop, statematch: false, proto: 'all', attrs: {} }),
    '</filter>',
    '',
  ].join('\n');
}

const dirKey = (x: string) => (x.includes("direction='in'") ? 0 : 1);

// ---- routed traffic to the guests ----------------------------------------------------------

/**
 * Koala's chain for traffic the node ROUTES to its guests, in the mangle table (jumped to from
 * its FORWARD chain). libvirt's filters see only BRIDGED traffic to a guest (`--physdev-out` of
 * its tap): what the node routes to a guest — a client reaching its public address (DNAT),
 * another guest through the hairpin — leaves the IP stack through the bridge without passing
 * them. This chain holds the same ingress rules for that traffic: bridged packets and replies
 * RETURN at once; then per local guest its groups' set matches and other ingress rules (RETURN:
 * the rest of the tables decide, as without Koala), then a DROP. Not the filter table: libvirt
 * puts its own jumps first in filter/FORWARD at every filter instantiation, and its
 * `libvirt-in-post` ACCEPTs everything a guest sends (hairpin included) before a later chain
 * could look at it; mangle/FORWARD runs before filter/FORWARD and libvirt leaves it alone.
 */
export const FORWARD_CHAIN = 'KOALA-FORWARD';
export const FORWARD_JUMPS: readonly (readonly [string, string])[] = [['FORWARD', FORWARD_CHAIN]];

/** One ingress rule of a guest's groups as an iptables rule of that chain, in `iptables-save`'s spelling. */
function routedRule(ip: string, r: FilterRule): string {
  const a = r.attrs;
  const parts = [`-A ${FORWARD_CHAIN}`];
  if (a.srcipaddr !== undefined) parts.push(`-s ${a.srcipaddr}/${a.srcipmask ?? 32}`);
  parts.push(`-d ${ip}/32`);
  if (r.proto === 'tcp' || r.proto === 'udp') {
    parts.push(`-p ${r.proto}`);
    if (a.dstportstart !== undefined) parts.push(`-m ${r.proto} --dport ${a.dstportstart}${a.dstportend !== undefined ? `:${a.dstportend}` : ''}`);
  } else if (r.proto === 'icmp') {
    parts.push('-p icmp');
    if (a.type !== undefined) parts.push(`-m icmp --icmp-type ${a.type}${a.code !== undefined ? `/${a.code}` : ''}`);
  }
  if (a.ipset !== undefined) parts.push(`-m set --match-set ${a.ipset} ${a.ipsetflags}`);
  parts.push('-j RETURN');
  return parts.join(' ');
}

export function routedIngressRules(local: readonly NetworkInterfaceState[], groups: readonly NetworkGroup[], members: GroupMembers): string[] {
  const rules = [`-A ${FORWARD_CHAIN} -m physdev --physdev-is-bridged -j RETURN`, `-A ${FORWARD_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`];
  for (const i of [...local].sort((a, b) => byIp(a.privateIp, b.privateIp))) {
    const own = groupFilterRules(i, groups, members)
      .filter((r) => r.direction === 'in')
      .map((r) => routedRule(i.privateIp, r));
    rules.push(...new Set(own), `-A ${FORWARD_CHAIN} -d ${i.privateIp}/32 -j DROP`);
  }
  return rules;
}

export function forwardRestoreText(rules: readonly string[]): string {
  return ['*mangle', `:${FORWARD_CHAIN} - [0:0]`, ...rules, 'COMMIT', ''].join('\n');
}

// ---- NAT -----------------------------------------------------------------------------------

/** Rules in `iptables-save`'s own spelling, so the current chains compare line by line. */
export function natRules(state: ZoneNetworkState, local: readonly NetworkInterfaceState[], all: readonly NetworkInterfaceState[], cfg: NodeNetConfig, nodeAddress: string): NatRules {
  const subnet = normalCidr(state.subnet);
  const pre: string[] = [`-A ${NAT_CHAINS.prerouting} -d ${METADATA_ADDRESS}/32 -i ${cfg.bridge} -p tcp -m tcp --dport 80 -j DNAT --to-destination ${nodeAddress}:${cfg.metadataPort}`];
  const post: string[] = [];
  const out: string[] = [];
  const mapped = all.filter((i) => i.publicIp).sort((a, b) => byIp(a.publicIp!, b.publicIp!));
  for (const i of mapped) pre.push(`-A ${NAT_CHAINS.prerouting} -d ${i.publicIp}/32 -j DNAT --to-destination ${i.privateIp}`);
  // Hairpin: a guest reaching another by its public address gets the answer back through us.
  for (const i of mapped) post.push(`-A ${NAT_CHAINS.postrouting} -s ${subnet} -d ${i.privateIp}/32 -m conntrack --ctstate DNAT -j SNAT --to-source ${nodeAddress}`);
  for (const i of [...local].filter((x) => x.publicIp).sort((a, b) => byIp(a.privateIp, b.privateIp))) {
    post.push(`-A ${NAT_CHAINS.postrouting} -s ${i.privateIp}/32 ! -d ${subnet} -j SNAT --to-source ${i.publicIp}`);
  }
  for (const i of mapped) out.push(`-A ${NAT_CHAINS.output} -d ${i.publicIp}/32 -j DNAT --to-destination ${i.privateIp}`);
  return { prerouting: pre, postrouting: post, output: out };
}

export function natRestoreText(nat: NatRules): string {
  return ['*nat', `:${NAT_CHAINS.prerouting} - [0:0]`, `:${NAT_CHAINS.postrouting} - [0:0]`, `:${NAT_CHAINS.output} - [0:0]`, ...nat.prerouting, ...nat.postrouting, ...nat.output, 'COMMIT', ''].join(
    '\n',
  );
}

// ---- IMDSv2 hop limit ----------------------------------------------------------------------

/** Koala's mangle chain (jumped to from OUTPUT): TTLs of metadata answers. */
export const MANGLE_CHAIN = 'KOALA-IMDS-TTL';
export const MANGLE_JUMPS: readonly (readonly [string, string])[] = [['OUTPUT', MANGLE_CHAIN]];
/**
 * The conntrack mark bit the metadata relay sets (`conntrack -U`) on a guest's connection once it
 * has read `PUT /latest/api/token` in it, before the request reaches the server: the relay sees
 * the reassembled stream, so how the guest splits its packets does not matter.
 */
export const TOKEN_CONNMARK = 0x20000000;
const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * EC2's `HttpPutResponseHopLimit`: the answer to a token request leaves the node with IP TTL =
 * the instance's hop limit (default 1), so a container or a host routed behind the guest, one hop
 * further, never receives a token; IMDSv1 answers are not limited, as in EC2. One rule per local
 * interface, in `iptables-save`'s spelling.
 */
export function imdsHopLimitRules(local: readonly NetworkInterfaceState[], nodeAddress: string, metadataPort: number): string[] {
  return [...local]
    .sort((a, b) => byIp(a.privateIp, b.privateIp))
    .map(
      (i) =>
        `-A ${MANGLE_CHAIN} -s ${nodeAddress}/32 -d ${i.privateIp}/32 -p tcp -m tcp --sport ${metadataPort} -m connmark --mark ${hex(TOKEN_CONNMARK)}/${hex(TOKEN_CONNMARK)} -j TTL --ttl-set ${i.metadataOptions?.httpPutResponseHopLimit ?? 1}`,
    );
}

export function mangleRestoreText(rules: readonly string[]): string {
  return ['*mangle', `:${MANGLE_CHAIN} - [0:0]`, ...rules, 'COMMIT', ''].join('\n');
}

// ---- the plan ------------------------------------------------------------------------------

/**
 * This node's share of the zone's state, or undefined when the state does not know this node
 * (no address yet: nothing to do). Interfaces in `exclude` are left out (terminated here, the
 * state lags); `extra` ones (launches the state does not know yet) are added.
 */
export function planNetwork(state: ZoneNetworkState, cfg: NodeNetConfig, overrides: LocalOverrides = {}): NetworkPlan | undefined {
  const me = state.nodes.find((n) => n.node === cfg.node);
  if (!me) return undefined;
  const { prefix } = parseCidr(state.subnet);
  const exclude = new Set(overrides.exclude ?? []);
  const byInstance = new Map<string, NetworkInterfaceState>();
  const norm = (i: NetworkInterfaceState) => ({ ...i, groupIds: [...new Set(i.groupIds)].sort() });
  for (const i of state.interfaces) if (!exclude.has(i.instanceId)) byInstance.set(i.instanceId, norm(i));
  for (const i of overrides.extra ?? []) if (!exclude.has(i.instanceId) && !byInstance.has(i.instanceId)) byInstance.set(i.instanceId, norm(i));
  const all = [...byInstance.values()].sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
  const local = all.filter((i) => i.node === cfg.node);

  const hosts = [dhcpAnchor(me.address), ...local.map((i) => ({ mac: i.mac, ip: i.privateIp, name: privateHostName(i.privateIp) }))].sort((a, b) => byIp(a.ip, b.ip) || (a.mac < b.mac ? -1 : 1));
  const net = { name: networkName(state.zone), bridge: cfg.bridge, address: me.address, prefix, domain: state.dnsSuffix, hosts, dnsmasqOptions: [...ZONE_DNSMASQ_OPTIONS] };
  // The local instances' groups (their rule sets) and every group their rules name as peers:
  // its members' current IPs (in the sets, or in the filters for rules sets cannot hold).
  const groups = new Map(state.groups.map((g) => [g.groupId, g]));
  const localGroups = [...new Set(local.flatMap((i) => i.groupIds))].filter((g) => groups.has(g)).sort();
  const referenced = new Set(localGroups.flatMap((gid) => [...groups.get(gid)!.ingress, ...groups.get(gid)!.egress].flatMap((r) => r.groupIds)));
  const members: GroupMembers = new Map([...referenced].map((gid) => [gid, [...new Set(all.filter((i) => i.groupIds.includes(gid)).map((i) => i.privateIp))].sort(byIp)]));
  const filters = local.map((i) => ({ name: filterName(i.instanceId), instanceId: i.instanceId, xml: filterXml(i, state.groups, me.address, cfg.metadataPort, members) }));
  const ipsets = localGroups.flatMap((gid) => groupSets(groups.get(gid)!, members));

  const forward = routedIngressRules(local, state.groups, members);
  const nat = natRules(state, local, all, cfg, me.address);
  const mangle = imdsHopLimitRules(local, me.address, cfg.metadataPort);
  return {
    zone: state.zone,
    version: state.version,
    subnet: normalCidr(state.subnet),
    nodeAddress: me.address,
    network: { ...net, xml: networkXml(net) },
    filters,
    ipsets,
    nat,
    natRestore: natRestoreText(nat),
    mangle,
    mangleRestore: mangleRestoreText(mangle),
    forward,
    forwardRestore: forwardRestoreText(forward),
    publicAddresses: cfg.publicIf ? local.flatMap((i) => (i.publicIp ? [i.publicIp] : [])).sort(byIp) : [],
    interfaces: local,
  };
}
