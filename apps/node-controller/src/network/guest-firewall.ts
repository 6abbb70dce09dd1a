import type { NetworkGroup, NetworkInterfaceState, NetworkRule } from '@koala/contracts';
import { byIp, cidrOrder, normalCidr, parseCidr } from './net-addresses.js';

/**
 * Security groups and anti-spoofing as Koala's own chains (no libvirt nwfilter): the pure half.
 *
 * A guest's tap is named from its MAC (`tapName`) in its domain XML, so every rule can name it
 * before the domain exists and starting the domain costs no firewall work at all (an nwfilter
 * instantiation was ~1 s of ~100 commands per tap). Taps unknown to the rules (`kv+`) get
 * nothing through: a guest never runs with its groups unapplied.
 *
 * - IPv4, mangle table (before the filter table, and nobody else's: libvirt and the operator
 *   keep theirs): `KOALA-FORWARD` (from FORWARD) lets replies pass, sends what a guest's tap
 *   sends through `KOALA-EGRESS`, what is bridged to a guest's tap through `KOALA-BRIDGED-IN`,
 *   and what the node routes (public addresses, hairpin) through `KOALA-ROUTED-IN` (by
 *   destination address: the kernel knows no outgoing tap for routed packets). `KOALA-INPUT`
 *   (from INPUT) lets a guest reach only the node's services (DHCP, DNS, metadata).
 * - L2, ebtables nat table: `KOALA-L2-IN` (from PREROUTING) lets a guest send only with its own
 *   MAC, IPv4 from its own address (or DHCP from 0.0.0.0) and ARP for its own MAC and address;
 *   `KOALA-L2-OUT` (from POSTROUTING) lets only IPv4 and ARP reach a guest.
 *
 * Rules are in `iptables-save`/`ebtables-save`'s own spelling (checked on the real tools), so
 * the current chains compare line by line and a re-apply changes nothing.
 */

/** Every guest tap starts so; `kv+` matches them all (unknown ones included). */
export const TAP_PREFIX = 'kv';
const ANY_TAP = `${TAP_PREFIX}+`;
/** A guest's tap: `kv` and its MAC's 12 hex digits (14 characters; IFNAMSIZ allows 15). */
export const tapName = (mac: string) => `${TAP_PREFIX}${mac.replace(/:/g, '').toLowerCase()}`;

export const IPSET_PREFIX = 'koala-';
/** Every set the agent owns starts so (`koala-sg-…`); others, even `koala-` ones, are never touched. */
export const OWNED_IPSET_PREFIX = `${IPSET_PREFIX}sg-`;
/**
 * A group's rule set: `a` (protocol all: peer networks) or `p` (tcp/udp: peer network and port),
 * `i` (ingress) or `o` (egress). ≤ 31 characters with the `-t` of a rebuild for 17-hex group ids.
 */
export const groupSetName = (groupId: string, kind: 'a' | 'p', dir: 'i' | 'o') => `${IPSET_PREFIX}${groupId}-${kind}${dir}`;

/** `hash:net`: peer networks; `hash:net,port`: `net,tcp:port` / `net,udp:port` pairs. */
export type IpsetType = 'hash:net' | 'hash:net,port';

export interface PlannedIpset {
  name: string;
  type: IpsetType;
  /** As `ipset save` prints them (a /32 without its prefix), sorted. */
  members: string[];
}

/** Current private IPs of each group's members (across the zone), sorted. */
export type GroupMembers = ReadonlyMap<string, readonly string[]>;

/** A tcp/udp rule expanding to more set entries than this (peers × ports) stays a rule of its own. */
export const MAX_SET_ENTRIES_PER_RULE = 1024;

// ---- sets ----------------------------------------------------------------------------------

/** A network as `ipset save` prints it in a hash:net set (hash:net refuses /0: two halves). */
function setNets(cidr: string): string[] {
  const { base, prefix } = parseCidr(normalCidr(cidr));
  if (prefix === 0) return ['0.0.0.0/1', '128.0.0.0/1'];
  return [prefix === 32 ? base : `${base}/${prefix}`];
}

/**
 * A rule's peers and ports as set entries, or undefined when it stays a rule of its own (icmp:
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
 * Every local guest's chains match its groups' sets, so changing such a rule, or a peer
 * group's members, is an `ipset restore`: no rule changes.
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

// ---- one guest's allowances ----------------------------------------------------------------

/**
 * One thing a guest's groups allow in one direction, as iptables matches: the peer (sender of
 * ingress, destination of egress) and, for tcp/udp, the guest's or the destination's port.
 */
interface Allowance {
  proto?: 'tcp' | 'udp' | 'icmp';
  peer?: string;
  /** `--sport` / `--dport` text: `22` or `8000:8080`. */
  sport?: string;
  dport?: string;
  /** `--icmp-type` text: `8` or `3/4`. */
  icmp?: string;
  set?: { name: string; flags: string };
}

/** The matches of a group's sets (their entries: groupSets). In: the peer is the sender, the port the guest's; out: both the destination's. */
function setAllowances(groupId: string, ingress: boolean): Allowance[] {
  const dir = ingress ? 'i' : 'o';
  return [{ set: { name: groupSetName(groupId, 'a', dir), flags: ingress ? 'src' : 'dst' } }, { set: { name: groupSetName(groupId, 'p', dir), flags: ingress ? 'src,dst' : 'dst,dst' } }];
}

/** A rule that sets cannot hold (setEntries): one allowance per peer network and member. */
function ruleAllowances(rule: NetworkRule, members: GroupMembers): Allowance[] {
  if (setEntries(rule, members)) return [];
  const base: Allowance = {};
  if (rule.protocol === 'tcp' || rule.protocol === 'udp') {
    base.proto = rule.protocol;
    const from = rule.fromPort < 0 ? 0 : rule.fromPort;
    const to = rule.toPort < 0 ? 65535 : rule.toPort;
    if (!(from === 0 && to === 65535)) base.dport = to === from ? `${from}` : `${from}:${to}`;
  } else if (rule.protocol === 'icmp') {
    base.proto = 'icmp';
    if (rule.fromPort >= 0) base.icmp = rule.toPort >= 0 ? `${rule.fromPort}/${rule.toPort}` : `${rule.fromPort}`;
  }
  const peers = [...new Set(rule.cidrs.map(normalCidr))].sort(cidrOrder).map((c) => (c.endsWith('/0') ? undefined : c));
  for (const g of [...new Set(rule.groupIds)].sort()) for (const ip of members.get(g) ?? []) peers.push(`${ip}/32`);
  return peers.map((peer) => ({ ...base, ...(peer ? { peer } : {}) }));
}

/** Everything a guest's groups allow one way: set matches first, then the other rules; unknown groups allow nothing. */
function allowances(iface: NetworkInterfaceState, groups: readonly NetworkGroup[], members: GroupMembers, ingress: boolean): Allowance[] {
  const byId = new Map(groups.map((g) => [g.groupId, g]));
  const out: Allowance[] = [];
  for (const gid of [...new Set(iface.groupIds)].sort()) {
    const g = byId.get(gid);
    if (!g) continue;
    out.push(...setAllowances(gid, ingress));
    for (const r of ingress ? g.ingress : g.egress) out.push(...ruleAllowances(r, members));
  }
  return out;
}

/** An iptables rule in `iptables-save`'s order: addresses, protocol, physdev, protocol match, set, target. */
function iptRule(chain: string, a: Allowance & { src?: string; dst?: string; physdev?: string }, target = 'RETURN'): string {
  const p = [`-A ${chain}`];
  if (a.src) p.push(`-s ${a.src}`);
  if (a.dst) p.push(`-d ${a.dst}`);
  if (a.proto) p.push(`-p ${a.proto}`);
  if (a.physdev) p.push(`-m physdev ${a.physdev}`);
  if (a.proto && (a.sport || a.dport)) p.push(`-m ${a.proto}${a.sport ? ` --sport ${a.sport}` : ''}${a.dport ? ` --dport ${a.dport}` : ''}`);
  if (a.proto === 'icmp' && a.icmp) p.push(`-m icmp --icmp-type ${a.icmp}`);
  if (a.set) p.push(`-m set --match-set ${a.set.name} ${a.set.flags}`);
  p.push(`-j ${target}`);
  return p.join(' ');
}

// ---- the chains ----------------------------------------------------------------------------

export const FIREWALL_CHAINS = {
  forward: 'KOALA-FORWARD',
  egress: 'KOALA-EGRESS',
  bridgedIn: 'KOALA-BRIDGED-IN',
  routedIn: 'KOALA-ROUTED-IN',
  input: 'KOALA-INPUT',
} as const;
/** Built-in mangle chain → Koala's chain jumped to from it. */
export const FIREWALL_JUMPS: readonly (readonly [string, string])[] = [
  ['FORWARD', FIREWALL_CHAINS.forward],
  ['INPUT', FIREWALL_CHAINS.input],
];

const DHCP_REQUEST: Allowance = { proto: 'udp', sport: '68', dport: '67' };

export interface FirewallInput {
  local: readonly NetworkInterfaceState[];
  groups: readonly NetworkGroup[];
  members: GroupMembers;
  nodeAddress: string;
  metadataPort: number;
}

/** Koala's mangle chains for its guests' IPv4 traffic (see the top of this file). */
export function firewallRules({ local, groups, members, nodeAddress, metadataPort }: FirewallInput): string[] {
  const C = FIREWALL_CHAINS;
  const guests = [...local].sort((a, b) => byIp(a.privateIp, b.privateIp));
  const out: string[] = [
    `-A ${C.forward} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    `-A ${C.forward} -m physdev --physdev-in ${ANY_TAP} -j ${C.egress}`,
    `-A ${C.forward} -m physdev --physdev-out ${ANY_TAP} --physdev-is-bridged -j ${C.bridgedIn}`,
    `-A ${C.forward} -m physdev --physdev-is-bridged -j RETURN`,
    `-A ${C.forward} -j ${C.routedIn}`,
  ];
  const uniq = (rules: string[]) => [...new Set(rules)];
  for (const g of guests) {
    const tap = tapName(g.mac);
    const physdev = `--physdev-in ${tap}`;
    // DHCP with any server on the segment (the broadcast is bridged to the uplink too; the node's
    // own copy is KOALA-INPUT's), stateless: broadcast answers match no connection.
    out.push(iptRule(C.egress, { ...DHCP_REQUEST, physdev }));
    out.push(...uniq(allowances(g, groups, members, false).map((a) => iptRule(C.egress, { ...a, dst: a.peer, physdev }))));
  }
  out.push(`-A ${C.egress} -j DROP`);
  for (const g of guests) {
    const physdev = `--physdev-out ${tapName(g.mac)} --physdev-is-bridged`;
    out.push(...uniq(allowances(g, groups, members, true).map((a) => iptRule(C.bridgedIn, { ...a, src: a.peer, physdev }))));
  }
  out.push(`-A ${C.bridgedIn} -j DROP`);
  for (const g of guests) {
    const dst = `${g.privateIp}/32`;
    out.push(...uniq(allowances(g, groups, members, true).map((a) => iptRule(C.routedIn, { ...a, src: a.peer, dst }))), `-A ${C.routedIn} -d ${dst} -j DROP`);
  }
  // What a guest may send to the node itself, whatever its groups say.
  const physdev = `--physdev-in ${ANY_TAP}`;
  const node = `${nodeAddress}/32`;
  out.push(
    `-A ${C.input} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    iptRule(C.input, { ...DHCP_REQUEST, physdev }),
    iptRule(C.input, { dst: node, proto: 'udp', physdev, dport: '53' }),
    iptRule(C.input, { dst: node, proto: 'tcp', physdev, dport: '53' }),
    // The metadata service, after its DNAT from 169.254.169.254:80.
    iptRule(C.input, { dst: node, proto: 'tcp', physdev, dport: String(metadataPort) }),
    `-A ${C.input} -m physdev ${physdev} -j DROP`,
  );
  return out;
}

export function firewallRestoreText(rules: readonly string[]): string {
  return ['*mangle', ...Object.values(FIREWALL_CHAINS).map((c) => `:${c} - [0:0]`), ...rules, 'COMMIT', ''].join('\n');
}

// ---- L2: ebtables --------------------------------------------------------------------------

export const L2_CHAINS = { fromGuest: 'KOALA-L2-IN', toGuest: 'KOALA-L2-OUT' } as const;
/** Built-in ebtables nat chain → Koala's chain jumped to from it. */
export const L2_JUMPS: readonly (readonly [string, string])[] = [
  ['PREROUTING', L2_CHAINS.fromGuest],
  ['POSTROUTING', L2_CHAINS.toGuest],
];

/**
 * Anti-spoofing: a guest's tap passes only frames with its own MAC carrying IPv4 from its own
 * address (or a DHCP request from 0.0.0.0) or ARP announcing its own MAC with its address (or
 * 0.0.0.0, a probe); only IPv4 and ARP reach a guest. Anything else from or to a `kv` tap —
 * IPv6, other ethertypes, taps no rule knows — is dropped.
 */
export function l2Rules(local: readonly NetworkInterfaceState[]): string[] {
  const I = L2_CHAINS.fromGuest;
  const O = L2_CHAINS.toGuest;
  const out: string[] = [];
  for (const g of [...local].sort((a, b) => byIp(a.privateIp, b.privateIp))) {
    const tap = tapName(g.mac);
    const mac = g.mac.toLowerCase();
    out.push(
      `-A ${I} -s ! ${mac} -i ${tap} -j DROP`,
      `-A ${I} -p IPv4 -i ${tap} --ip-src ${g.privateIp} -j RETURN`,
      `-A ${I} -p IPv4 -i ${tap} --ip-src 0.0.0.0 --ip-proto udp --ip-sport 68 --ip-dport 67 -j RETURN`,
      `-A ${I} -p ARP -i ${tap} --arp-ip-src ${g.privateIp} --arp-mac-src ${mac} -j RETURN`,
      `-A ${I} -p ARP -i ${tap} --arp-ip-src 0.0.0.0 --arp-mac-src ${mac} -j RETURN`,
    );
  }
  out.push(`-A ${I} -i ${ANY_TAP} -j DROP`, `-A ${O} -p IPv4 -o ${ANY_TAP} -j RETURN`, `-A ${O} -p ARP -o ${ANY_TAP} -j RETURN`, `-A ${O} -o ${ANY_TAP} -j DROP`);
  return out;
}

/** `ebtables-restore --noflush` input holding only Koala's chains (policy RETURN: falling off the end goes back to the built-in chain). */
export function l2RestoreText(rules: readonly string[]): string {
  return ['*nat', ...Object.values(L2_CHAINS).map((c) => `:${c} RETURN`), ...rules, 'COMMIT', ''].join('\n');
}
