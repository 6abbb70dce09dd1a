/**
 * Security group rules: reading both request forms, normalising protocols, ports and CIDRs,
 * and grouping stored rules back into EC2's `IpPermission` shape. Pure functions.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { Ec2Error, type Params } from '@koala/ec2-query';

/** A rule's peer before group references are resolved. */
export type PeerInput =
  | { kind: 'ipv4'; cidr: string; description?: string }
  | { kind: 'ipv6'; cidr: string; description?: string }
  | { kind: 'group'; groupId?: string; groupName?: string; userId?: string; description?: string };

/** One normalised rule request: protocol + ports + one peer. */
export interface RuleInput {
  ipProtocol: string;
  fromPort: number | null;
  toPort: number | null;
  peer: PeerInput;
}

const PROTOCOL_NAMES: Record<string, string> = { tcp: 'tcp', udp: 'udp', icmp: 'icmp', icmpv6: '58', all: '-1', '-1': '-1' };
const PROTOCOL_NUMBERS: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp' };

/** `tcp`/`6` → `tcp`, `udp`/`17` → `udp`, `icmp`/`1` → `icmp`, `-1`/`all` → `-1`, other numbers 0-255 as is. */
export function normalizeProtocol(raw: string): string {
  const t = raw.trim().toLowerCase();
  if (t in PROTOCOL_NAMES) return PROTOCOL_NAMES[t]!;
  if (/^\d{1,3}$/.test(t) && Number(t) <= 255) return PROTOCOL_NUMBERS[Number(t)] ?? String(Number(t));
  throw new Ec2Error('InvalidParameterValue', `Invalid value '${raw}' for IP protocol. Unknown protocol.`);
}

/** Ports of a rule: tcp/udp 0-65535 (both required, from ≤ to); icmp type/code -1..255; none otherwise. */
export function normalizePorts(protocol: string, from: number | undefined, to: number | undefined): { fromPort: number | null; toPort: number | null } {
  if (protocol === 'tcp' || protocol === 'udp') {
    if (from === undefined || to === undefined) {
      throw new Ec2Error('InvalidParameterValue', `Invalid value 'null' for portRange. Must specify both from and to ports with TCP/UDP.`);
    }
    if (from < 0 || from > 65535) throw new Ec2Error('InvalidParameterValue', `Invalid value '${from}' for fromPort. Must be between 0 and 65535.`);
    if (to < 0 || to > 65535) throw new Ec2Error('InvalidParameterValue', `Invalid value '${to}' for toPort. Must be between 0 and 65535.`);
    if (from > to) throw new Ec2Error('InvalidParameterValue', `Invalid TCP/UDP port range ${from}-${to}: fromPort must not be greater than toPort.`);
    return { fromPort: from, toPort: to };
  }
  if (protocol === 'icmp' || protocol === '58') {
    const type = from ?? -1;
    const code = to ?? -1;
    if (type < -1 || type > 255) throw new Ec2Error('InvalidParameterValue', `Invalid value '${type}' for ICMP type. Must be between -1 and 255.`);
    if (code < -1 || code > 255) throw new Ec2Error('InvalidParameterValue', `Invalid value '${code}' for ICMP code. Must be between -1 and 255.`);
    if (type === -1 && code !== -1) throw new Ec2Error('InvalidParameterValue', `Invalid ICMP code ${code}: the code must be -1 when the type is -1.`);
    return { fromPort: type, toPort: code };
  }
  return { fromPort: null, toPort: null };
}

/** `a.b.c.d/n` (n 0-32) → canonical text; `InvalidParameterValue` otherwise. */
export function normalizeCidrV4(raw: string, param = 'cidrIp'): string {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(raw.trim());
  if (!m || !isIPv4(m[1]!) || Number(m[2]) > 32 || m[1]!.split('.').some((o) => o.length > 1 && o.startsWith('0'))) {
    throw new Ec2Error('InvalidParameterValue', `Value (${raw}) for parameter ${param} is invalid. This is not a valid CIDR block.`);
  }
  return `${m[1]}/${Number(m[2])}`;
}

/** `addr/n` (n 0-128) IPv6 → lower-case text; `InvalidParameterValue` otherwise. */
export function normalizeCidrV6(raw: string, param = 'cidrIpv6'): string {
  const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(raw.trim());
  if (!m || !isIPv6(m[1]!) || Number(m[2]) > 128) {
    throw new Ec2Error('InvalidParameterValue', `Value (${raw}) for parameter ${param} is invalid. This is not a valid IPv6 CIDR block.`);
  }
  return `${m[1]!.toLowerCase()}/${Number(m[2])}`;
}

function checkDescription(d: string | undefined): string | undefined {
  if (d === undefined) return undefined;
  if (d.length > 255 || !/^[a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]*$/.test(d)) {
    throw new Ec2Error('InvalidParameterValue', `Invalid rule description. Valid descriptions are strings less than 256 characters from the following set: a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*`);
  }
  return d;
}

/**
 * Reads the rules of an Authorize/Revoke request, new form (`IpPermissions.N.*`) or old form
 * (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp`, `SourceSecurityGroupName`, `SourceSecurityGroupOwnerId`).
 * Old form without a protocol but with a source group means tcp, udp and icmp from that group
 * (EC2-Classic); old form without any peer means 0.0.0.0/0.
 */
export function readRuleInputs(p: Params): RuleInput[] {
  const perms = p.members('IpPermissions');
  if (perms.length) {
    const out: RuleInput[] = [];
    for (const m of perms) {
      const ipProtocol = normalizeProtocol(m.str('IpProtocol', { required: true }));
      const { fromPort, toPort } = normalizePorts(ipProtocol, m.int('FromPort'), m.int('ToPort'));
      const peers: PeerInput[] = [];
      for (const r of m.members('IpRanges')) {
        const cidr = r.str('CidrIp', { required: true });
        peers.push({ kind: 'ipv4', cidr: normalizeCidrV4(cidr, r.fullName('CidrIp')), description: checkDescription(r.str('Description')) });
      }
      for (const r of m.members('Ipv6Ranges')) {
        const cidr = r.str('CidrIpv6', { required: true });
        peers.push({ kind: 'ipv6', cidr: normalizeCidrV6(cidr, r.fullName('CidrIpv6')), description: checkDescription(r.str('Description')) });
      }
      for (const g of m.members('Groups')) {
        const groupId = g.str('GroupId') || undefined;
        const groupName = g.str('GroupName') || undefined;
        if (!groupId && !groupName) throw Ec2Error.missingParameter(g.fullName('GroupId'));
        peers.push({ kind: 'group', groupId, groupName, userId: g.str('UserId') || undefined, description: checkDescription(g.str('Description')) });
      }
      if (m.members('PrefixListIds').some((x) => x.str('PrefixListId') !== undefined)) throw new Ec2Error('InvalidParameterValue', 'Prefix lists are not supported by this cloud.');
      if (!peers.length) {
        throw new Ec2Error('MissingParameter', `The request must contain the parameter ${m.fullName('IpRanges')}, ${m.fullName('Ipv6Ranges')} or ${m.fullName('Groups')}`);
      }
      for (const peer of peers) out.push({ ipProtocol, fromPort, toPort, peer });
    }
    return out;
  }
  const proto = p.str('IpProtocol');
  const cidr = p.str('CidrIp');
  const sourceName = p.str('SourceSecurityGroupName') || undefined;
  const sourceOwner = p.str('SourceSecurityGroupOwnerId') || undefined;
  if (proto === undefined && cidr === undefined && sourceName === undefined) {
    throw Ec2Error.missingParameter('IpPermissions');
  }
  if (proto === undefined && sourceName !== undefined) {
    const peer: PeerInput = { kind: 'group', groupName: sourceName, userId: sourceOwner };
    return [
      { ipProtocol: 'tcp', fromPort: 0, toPort: 65535, peer },
      { ipProtocol: 'udp', fromPort: 0, toPort: 65535, peer },
      { ipProtocol: 'icmp', fromPort: -1, toPort: -1, peer },
    ];
  }
  const ipProtocol = normalizeProtocol(proto ?? '-1');
  const { fromPort, toPort } = normalizePorts(ipProtocol, p.int('FromPort'), p.int('ToPort'));
  const out: RuleInput[] = [];
  if (sourceName !== undefined) out.push({ ipProtocol, fromPort, toPort, peer: { kind: 'group', groupName: sourceName, userId: sourceOwner } });
  if (cidr !== undefined || sourceName === undefined) {
    out.push({ ipProtocol, fromPort, toPort, peer: { kind: 'ipv4', cidr: normalizeCidrV4(cidr ?? '0.0.0.0/0', 'CidrIp') } });
  }
  return out;
}

/** A stored rule, as far as grouping and output are concerned. */
export interface RuleLike {
  ipProtocol: string;
  fromPort: number | null;
  toPort: number | null;
  cidrIpv4: string | null;
  cidrIpv6: string | null;
  referencedGroupId: string | null;
  referencedUserId: string | null;
  description: string | null;
}

/** Identity of a rule (what makes two rules duplicates); the description is not part of it. */
export function ruleIdentity(r: Omit<RuleLike, 'description' | 'referencedUserId'>): string {
  return [r.ipProtocol, r.fromPort ?? '', r.toPort ?? '', r.cidrIpv4 ?? '', r.cidrIpv6 ?? '', r.referencedGroupId ?? ''].join('|');
}

/** Text AWS uses in InvalidPermission.Duplicate: `peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW`. */
export function ruleLabel(r: RuleLike): string {
  const peer = r.cidrIpv4 ?? r.cidrIpv6 ?? r.referencedGroupId ?? '';
  const proto = r.ipProtocol === '-1' ? 'ALL' : r.ipProtocol.toUpperCase();
  const ports = r.fromPort === null ? '' : `, from port: ${r.fromPort}, to port: ${r.toPort}`;
  return `peer: ${peer}, ${proto}${ports}, ALLOW`;
}

export type IpPermissionXml = {
  ipProtocol: string;
  fromPort?: number;
  toPort?: number;
  groups: Array<{ userId?: string; groupId: string; groupName?: string; description?: string }>;
  ipRanges: Array<{ cidrIp: string; description?: string }>;
  ipv6Ranges: Array<{ cidrIpv6: string; description?: string }>;
  prefixListIds: never[];
};

/** Groups rules by (protocol, from, to) into EC2 `IpPermission`s, in first-seen order. */
export function toIpPermissions(rules: readonly RuleLike[], groupNames: ReadonlyMap<string, string> = new Map()): IpPermissionXml[] {
  const byKey = new Map<string, IpPermissionXml>();
  for (const r of rules) {
    const key = `${r.ipProtocol}|${r.fromPort ?? ''}|${r.toPort ?? ''}`;
    let perm = byKey.get(key);
    if (!perm) {
      perm = {
        ipProtocol: r.ipProtocol,
        fromPort: r.fromPort ?? undefined,
        toPort: r.toPort ?? undefined,
        groups: [],
        ipRanges: [],
        ipv6Ranges: [],
        prefixListIds: [],
      };
      byKey.set(key, perm);
    }
    const description = r.description ?? undefined;
    if (r.cidrIpv4) perm.ipRanges.push({ cidrIp: r.cidrIpv4, description });
    else if (r.cidrIpv6) perm.ipv6Ranges.push({ cidrIpv6: r.cidrIpv6, description });
    else if (r.referencedGroupId) {
      perm.groups.push({
        userId: r.referencedUserId ?? undefined,
        groupId: r.referencedGroupId,
        groupName: groupNames.get(r.referencedGroupId),
        description,
      });
    }
  }
  return [...byKey.values()];
}
