import type { NetworkInterfaceState, ZoneNetworkState } from '@koala/contracts';
import { buildDhcpHostXml, buildNetworkXml } from '@koala/libvirt';
import { firewallRestoreText, firewallRules, groupSets, l2RestoreText, l2Rules, type GroupMembers, type PlannedIpset } from './guest-firewall.js';
import { byIp, normalCidr, parseCidr } from './net-addresses.js';

/**
 * The pure half of the network agent: from the zone's desired state and this node's settings,
 * everything this node must hold (libvirt network, ipsets, its guests' firewall and L2 chains, NAT rules,
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
  /** Koala's mangle chains of the guests' security groups (`firewallRules`). */
  firewall: string[];
  /** `iptables-restore --noflush` input holding only those chains. */
  firewallRestore: string;
  /** Koala's ebtables nat chains: anti-spoofing (`l2Rules`). */
  l2: string[];
  /** `ebtables-restore --noflush` input holding only those chains. */
  l2Restore: string;
  zone: string;
  version: number;
  subnet: string;
  nodeAddress: string;
  network: PlannedNetwork;
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
/** The per-instance nwfilters of Koala before its own chains; an apply removes any left (after an upgrade). */
export const LEGACY_FILTER_PREFIX = 'koala-i-';

export const networkName = (zone: string) => `koala-${zone}`;
/** EC2's private host name (`ip-10-0-0-5`), the DHCP host name. */
export const privateHostName = (ip: string) => `ip-${ip.replace(/\./g, '-')}`;

// ---- the libvirt network -----------------------------------------------------------------

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
  // its members' current IPs (in the sets, or in rules of their own where sets cannot hold them).
  const groups = new Map(state.groups.map((g) => [g.groupId, g]));
  const localGroups = [...new Set(local.flatMap((i) => i.groupIds))].filter((g) => groups.has(g)).sort();
  const referenced = new Set(localGroups.flatMap((gid) => [...groups.get(gid)!.ingress, ...groups.get(gid)!.egress].flatMap((r) => r.groupIds)));
  const members: GroupMembers = new Map([...referenced].map((gid) => [gid, [...new Set(all.filter((i) => i.groupIds.includes(gid)).map((i) => i.privateIp))].sort(byIp)]));
  const ipsets = localGroups.flatMap((gid) => groupSets(groups.get(gid)!, members));

  const firewall = firewallRules({ local, groups: state.groups, members, nodeAddress: me.address, metadataPort: cfg.metadataPort });
  const l2 = l2Rules(local);
  const nat = natRules(state, local, all, cfg, me.address);
  const mangle = imdsHopLimitRules(local, me.address, cfg.metadataPort);
  return {
    zone: state.zone,
    version: state.version,
    subnet: normalCidr(state.subnet),
    nodeAddress: me.address,
    network: { ...net, xml: networkXml(net) },
    ipsets,
    nat,
    natRestore: natRestoreText(nat),
    mangle,
    mangleRestore: mangleRestoreText(mangle),
    firewall,
    firewallRestore: firewallRestoreText(firewall),
    l2,
    l2Restore: l2RestoreText(l2),
    publicAddresses: cfg.publicIf ? local.flatMap((i) => (i.publicIp ? [i.publicIp] : [])).sort(byIp) : [],
    interfaces: local,
  };
}
