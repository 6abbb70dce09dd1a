/**
 * The desired network state of a zone (ZoneNetworkState), built from what the database holds.
 * Pure: the repository gathers the inputs, this decides the document; `stateDigest` tells
 * whether a newly built state differs from the last published one (then its version grows).
 */
import { createHash } from 'node:crypto';
import type { InstanceMetadataOptions, NetworkGroup, NetworkRule, ZoneNetworkState } from '@koala/contracts';

/** One security-group rule as stored (security_group_rules). */
export interface StoredRule {
  groupId: string;
  isEgress: boolean;
  ipProtocol: string;
  fromPort: number | null;
  toPort: number | null;
  cidrIpv4: string | null;
  cidrIpv6: string | null;
  referencedGroupId: string | null;
}

export interface InterfaceInput {
  instanceId: string;
  /** network_interfaces.id (eni-…). */
  interfaceId?: string;
  node: string;
  mac: string;
  privateIp: string;
  publicIp: string | null;
  /** In the instance's group order. */
  groupIds: string[];
  metadataOptions: InstanceMetadataOptions;
}

export interface ZoneNetworkInputs {
  zone: string;
  version: number;
  subnet: string;
  dnsSuffix: string;
  generatedAt: Date;
  nodes: Array<{ node: string; address: string }>;
  interfaces: InterfaceInput[];
  /** The groups of the interfaces (others are ignored), with every rule in authorization order. */
  groups: Array<{ groupId: string; name: string }>;
  rules: StoredRule[];
}

const PROTOCOLS: Record<string, NetworkRule['protocol']> = { '-1': 'all', tcp: 'tcp', '6': 'tcp', udp: 'udp', '17': 'udp', icmp: 'icmp', '1': 'icmp' };

/**
 * A stored rule as the NC enforces it; undefined for what the guest network cannot express
 * (IPv6 peers, protocols other than tcp/udp/icmp/all).
 */
export function toNetworkRule(r: StoredRule): NetworkRule | undefined {
  const protocol = PROTOCOLS[r.ipProtocol.toLowerCase()];
  if (!protocol || r.cidrIpv6) return undefined;
  if (!r.cidrIpv4 && !r.referencedGroupId) return undefined;
  let fromPort: number;
  let toPort: number;
  if (protocol === 'all') [fromPort, toPort] = [-1, -1];
  else if (protocol === 'icmp') [fromPort, toPort] = [r.fromPort ?? -1, r.toPort ?? -1];
  else [fromPort, toPort] = [r.fromPort ?? 0, r.toPort ?? 65535];
  return { protocol, fromPort, toPort, cidrs: r.cidrIpv4 ? [r.cidrIpv4] : [], groupIds: r.referencedGroupId ? [r.referencedGroupId] : [] };
}

/** Rules with the same protocol and ports become one rule with all their peers (first-seen order). */
function mergeRules(rules: readonly NetworkRule[]): NetworkRule[] {
  const out = new Map<string, NetworkRule>();
  for (const r of rules) {
    const key = `${r.protocol}:${r.fromPort}:${r.toPort}`;
    const m = out.get(key);
    if (!m) out.set(key, { ...r, cidrs: [...r.cidrs], groupIds: [...r.groupIds] });
    else {
      for (const c of r.cidrs) if (!m.cidrs.includes(c)) m.cidrs.push(c);
      for (const g of r.groupIds) if (!m.groupIds.includes(g)) m.groupIds.push(g);
    }
  }
  return [...out.values()];
}

const byText =
  <T>(key: (t: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

export function buildZoneNetworkState(inputs: ZoneNetworkInputs): ZoneNetworkState {
  const used = new Set(inputs.interfaces.flatMap((i) => i.groupIds));
  const groups: NetworkGroup[] = inputs.groups
    .filter((g) => used.has(g.groupId))
    .sort(byText((g) => g.groupId))
    .map((g) => {
      const mine = inputs.rules.filter((r) => r.groupId === g.groupId);
      const translate = (egress: boolean) =>
        mergeRules(
          mine
            .filter((r) => r.isEgress === egress)
            .map(toNetworkRule)
            .filter((r): r is NetworkRule => r !== undefined),
        );
      return { groupId: g.groupId, name: g.name, ingress: translate(false), egress: translate(true) };
    });
  return {
    zone: inputs.zone,
    version: inputs.version,
    subnet: inputs.subnet,
    dnsSuffix: inputs.dnsSuffix,
    nodes: [...inputs.nodes].sort(byText((n) => n.node)).map((n) => ({ node: n.node, address: n.address })),
    interfaces: [...inputs.interfaces].sort(byText((i) => i.instanceId)).map((i) => ({
      instanceId: i.instanceId,
      ...(i.interfaceId ? { interfaceId: i.interfaceId } : {}),
      node: i.node,
      mac: i.mac,
      privateIp: i.privateIp,
      ...(i.publicIp ? { publicIp: i.publicIp } : {}),
      groupIds: [...i.groupIds],
      metadataOptions: { ...i.metadataOptions },
    })),
    groups,
    generatedAt: inputs.generatedAt.toISOString(),
  };
}

/** Digest of what a state says (not its version or time): equal digests, same network. */
export function stateDigest(s: ZoneNetworkState): string {
  const { version: _v, generatedAt: _g, ...content } = s;
  return createHash('sha256').update(JSON.stringify(content)).digest('hex');
}
