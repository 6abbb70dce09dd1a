// Virtual network XML (`<network>`): builder, the `<host>` fragment virNetworkUpdate takes for
// DHCP entries, and a parser for reconciling a desired network against libvirt's.
import { isIP } from 'node:net';
import { attr, checkEnum, checkLine, checkName, checkNonNegativeInt, checkUuid, child, children, childText, parseXmlRoot, renderXml, toInt, type XmlNode } from './xml-common.js';

export type NetworkForwardMode = 'nat' | 'route' | 'open' | 'bridge' | 'private' | 'vepa' | 'passthrough' | 'hostdev';
export const NETWORK_FORWARD_MODES: readonly NetworkForwardMode[] = ['nat', 'route', 'open', 'bridge', 'private', 'vepa', 'passthrough', 'hostdev'];

/** A static DHCP entry: dnsmasq answers this MAC, and only it, with this address. */
export interface DhcpHostSpec {
  mac: string;
  ip: string;
  /** Host name handed out with the lease. */
  name?: string;
  /** Lease time of this host in minutes (`<lease expiry unit='minutes'/>`; dnsmasq's minimum is 2). */
  leaseMinutes?: number;
}

export interface NetworkSpec {
  name: string;
  uuid?: string;
  bridge: { name: string; stp?: boolean; delay?: number };
  /** Absent: an isolated network (no `<forward>`). */
  forward?: { mode: NetworkForwardMode };
  mtu?: number;
  /** DNS domain of the network's dnsmasq; `localOnly`: names in it are never forwarded upstream. */
  domain?: { name: string; localOnly?: boolean };
  /** The host's address on the bridge; with `dhcpHosts`, dnsmasq serves exactly those entries (no range). */
  ip?: { address: string; prefix: number; dhcpHosts?: DhcpHostSpec[] };
  /**
   * Extra dnsmasq options (`<dnsmasq:options>`, namespace `xmlns:dnsmasq`), e.g.
   * `dhcp-ignore=tag:!known` so a node on a shared segment stays silent to others' guests.
   */
  dnsmasqOptions?: string[];
}

export const DNSMASQ_XMLNS = 'http://libvirt.org/schemas/network/dnsmasq/1.0';

export interface ParsedDhcpHost {
  mac?: string;
  ip?: string;
  name?: string;
}

export interface ParsedNetworkIp {
  address: string;
  /** From `prefix`, or computed from `netmask`. */
  prefix?: number;
  family?: string;
  dhcpHosts: ParsedDhcpHost[];
  dhcpRanges: { start: string; end: string }[];
}

export interface ParsedNetwork {
  name: string;
  uuid?: string;
  bridge?: { name?: string; stp?: boolean; delay?: number };
  forward?: { mode: string };
  mtu?: number;
  domain?: { name?: string; localOnly?: boolean };
  /** Values of `<dnsmasq:options><dnsmasq:option value/>`. */
  dnsmasqOptions: string[];
  /** The first `<ip>` (the one Koala writes). */
  ip?: ParsedNetworkIp;
  ips: ParsedNetworkIp[];
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function checkMac(value: unknown, field: string): string {
  const s = checkLine(value, field);
  if (!MAC.test(s)) throw new Error(`${field} must look like 52:54:00:12:34:56, got ${JSON.stringify(s)}`);
  return s;
}

export function checkIpAddress(value: unknown, field: string, family?: 4 | 6): string {
  const s = checkLine(value, field);
  const f = isIP(s);
  if (f === 0 || (family !== undefined && f !== family)) {
    throw new Error(`${field} must be an IPv${family ?? '4 or IPv6'} address, got ${JSON.stringify(s)}`);
  }
  return s;
}

/** Linux interface names: 1-15 characters, none of them '/', ':' or white space. */
function checkIfName(value: unknown, field: string): string {
  const s = checkLine(value, field);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(s)) throw new Error(`${field} must be an interface name of 1-15 letters, digits, '_', '.', '-', got ${JSON.stringify(s)}`);
  return s;
}

function checkHostName(value: unknown, field: string): string {
  const s = checkLine(value, field);
  if (s.length > 253 || !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(s)) {
    throw new Error(`${field} must be a host name, got ${JSON.stringify(s)}`);
  }
  return s;
}

function dhcpHostNode(spec: DhcpHostSpec, field: string): XmlNode {
  if (!spec || typeof spec !== 'object') throw new Error(`${field} must be an object`);
  const a: Record<string, string> = { mac: checkMac(spec.mac, `${field}.mac`).toLowerCase(), ip: checkIpAddress(spec.ip, `${field}.ip`, 4) };
  if (spec.name !== undefined) a.name = checkHostName(spec.name, `${field}.name`);
  if (spec.leaseMinutes === undefined) return { $: a };
  const minutes = checkNonNegativeInt(spec.leaseMinutes, `${field}.leaseMinutes`);
  if (minutes < 2) throw new Error(`${field}.leaseMinutes must be at least 2 (dnsmasq's minimum), got ${minutes}`);
  return { $: a, lease: { $: { expiry: String(minutes), unit: 'minutes' } } };
}

/** `<host mac ip name/>`: the XML virNetworkUpdate takes for VIR_NETWORK_SECTION_IP_DHCP_HOST. */
export function buildDhcpHostXml(spec: DhcpHostSpec): string {
  return renderXml('host', dhcpHostNode(spec, 'dhcpHost'));
}

/** Builds a `<network>` definition. Throws a clear Error on invalid input. */
export function buildNetworkXml(spec: NetworkSpec): string {
  if (!spec || typeof spec !== 'object') throw new Error('network spec must be an object');
  const net: XmlNode = { name: checkName(spec.name, 'network.name') };
  if (spec.dnsmasqOptions !== undefined) {
    if (!Array.isArray(spec.dnsmasqOptions)) throw new Error('network.dnsmasqOptions must be an array');
    if (spec.dnsmasqOptions.length) net.$ = { 'xmlns:dnsmasq': DNSMASQ_XMLNS };
  }
  if (spec.uuid !== undefined) net.uuid = checkUuid(spec.uuid, 'network.uuid');
  if (spec.forward !== undefined) {
    if (!spec.forward || typeof spec.forward !== 'object') throw new Error('network.forward must be { mode } or undefined');
    net.forward = { $: { mode: checkEnum(spec.forward.mode, NETWORK_FORWARD_MODES, 'network.forward.mode') } };
  }
  if (!spec.bridge || typeof spec.bridge !== 'object') throw new Error('network.bridge must be { name, stp?, delay? }');
  const bridge: Record<string, string> = { name: checkIfName(spec.bridge.name, 'network.bridge.name') };
  if (spec.bridge.stp !== undefined) {
    if (typeof spec.bridge.stp !== 'boolean') throw new Error('network.bridge.stp must be a boolean');
    bridge.stp = spec.bridge.stp ? 'on' : 'off';
  }
  if (spec.bridge.delay !== undefined) bridge.delay = String(checkNonNegativeInt(spec.bridge.delay, 'network.bridge.delay'));
  net.bridge = { $: bridge };
  if (spec.mtu !== undefined) {
    const mtu = checkNonNegativeInt(spec.mtu, 'network.mtu');
    if (mtu < 68 || mtu > 65535) throw new Error(`network.mtu must be between 68 and 65535, got ${mtu}`);
    net.mtu = { $: { size: String(mtu) } };
  }
  if (spec.domain !== undefined) {
    if (!spec.domain || typeof spec.domain !== 'object') throw new Error('network.domain must be { name, localOnly? }');
    const d: Record<string, string> = { name: checkHostName(spec.domain.name, 'network.domain.name') };
    if (spec.domain.localOnly !== undefined) d.localOnly = spec.domain.localOnly ? 'yes' : 'no';
    net.domain = { $: d };
  }
  if (spec.ip !== undefined) {
    if (!spec.ip || typeof spec.ip !== 'object') throw new Error('network.ip must be { address, prefix, dhcpHosts? }');
    const address = checkIpAddress(spec.ip.address, 'network.ip.address');
    const family = isIP(address) as 4 | 6;
    const prefix = checkNonNegativeInt(spec.ip.prefix, 'network.ip.prefix');
    if (prefix > (family === 4 ? 32 : 128)) throw new Error(`network.ip.prefix must be at most ${family === 4 ? 32 : 128}, got ${prefix}`);
    const ip: XmlNode = { $: family === 4 ? { address, prefix: String(prefix) } : { family: 'ipv6', address, prefix: String(prefix) } };
    if (spec.ip.dhcpHosts !== undefined) {
      if (!Array.isArray(spec.ip.dhcpHosts)) throw new Error('network.ip.dhcpHosts must be an array');
      // IPv6 DHCP hosts are keyed by DUID, not MAC: not modelled.
      if (family !== 4) throw new Error('network.ip.dhcpHosts need an IPv4 network.ip.address');
      const hosts = spec.ip.dhcpHosts.map((h, i) => dhcpHostNode(h, `network.ip.dhcpHosts[${i}]`));
      const macs = new Set<string>();
      const ips = new Set<string>();
      for (const h of hosts) {
        const { mac, ip: addr } = h.$ as { mac: string; ip: string };
        if (macs.has(mac)) throw new Error(`network.ip.dhcpHosts: MAC ${mac} appears twice`);
        if (ips.has(addr)) throw new Error(`network.ip.dhcpHosts: IP ${addr} appears twice`);
        macs.add(mac);
        ips.add(addr);
      }
      // An empty <dhcp/> still turns dnsmasq's DHCP on (entries come later by virNetworkUpdate).
      ip.dhcp = hosts.length ? { host: hosts } : '';
    }
    net.ip = ip;
  }
  if (spec.dnsmasqOptions?.length) {
    const option = spec.dnsmasqOptions.map((o, i) => ({ $: { value: checkLine(o, `network.dnsmasqOptions[${i}]`) } }));
    net['dnsmasq:options'] = { 'dnsmasq:option': option };
  }
  return renderXml('network', net);
}

function netmaskToPrefix(mask: string | undefined): number | undefined {
  if (mask === undefined || isIP(mask) !== 4) return undefined;
  const bits = mask
    .split('.')
    .map((o) => Number(o).toString(2).padStart(8, '0'))
    .join('');
  return /^1*0*$/.test(bits) ? (bits.indexOf('0') === -1 ? 32 : bits.indexOf('0')) : undefined;
}

function parseIp(node: XmlNode): ParsedNetworkIp {
  const dhcp = child(node, 'dhcp');
  const out: ParsedNetworkIp = {
    address: attr(node, 'address') ?? '',
    dhcpHosts: children(dhcp, 'host').map((h) => {
      const host: ParsedDhcpHost = {};
      for (const k of ['mac', 'ip', 'name'] as const) {
        const v = attr(h, k);
        if (v !== undefined) host[k] = v;
      }
      return host;
    }),
    dhcpRanges: children(dhcp, 'range').map((r) => ({ start: attr(r, 'start') ?? '', end: attr(r, 'end') ?? '' })),
  };
  const prefix = toInt(attr(node, 'prefix')) ?? netmaskToPrefix(attr(node, 'netmask'));
  if (prefix !== undefined) out.prefix = prefix;
  const family = attr(node, 'family');
  if (family !== undefined) out.family = family;
  return out;
}

/** Reads a `<network>` (ours or libvirt's own dump). Tolerant of unknown content. */
export function parseNetworkXml(xml: string): ParsedNetwork {
  const net = parseXmlRoot(xml, 'network');
  const ips = children(net, 'ip').map(parseIp);
  const options = Object.entries(net).find(([k]) => /^[A-Za-z0-9_.-]+:options$/.test(k))?.[0];
  const dnsmasqOptions = options
    ? children(net, options).flatMap((o) =>
        Object.entries(o)
          .filter(([k]) => /:option$/.test(k))
          .flatMap(([k]) => children(o, k).map((x) => attr(x, 'value') ?? '')),
      )
    : [];
  const out: ParsedNetwork = { name: childText(net, 'name') ?? '', ips, dnsmasqOptions };
  const dom = child(net, 'domain');
  if (dom) {
    const domain: NonNullable<ParsedNetwork['domain']> = {};
    const name = attr(dom, 'name');
    if (name !== undefined) domain.name = name;
    const lo = attr(dom, 'localOnly');
    if (lo !== undefined) domain.localOnly = lo === 'yes';
    out.domain = domain;
  }
  const uuid = childText(net, 'uuid');
  if (uuid !== undefined) out.uuid = uuid;
  const b = child(net, 'bridge');
  if (b) {
    const bridge: NonNullable<ParsedNetwork['bridge']> = {};
    const name = attr(b, 'name');
    if (name !== undefined) bridge.name = name;
    const stp = attr(b, 'stp');
    if (stp !== undefined) bridge.stp = stp === 'on';
    const delay = toInt(attr(b, 'delay'));
    if (delay !== undefined) bridge.delay = delay;
    out.bridge = bridge;
  }
  const fwd = child(net, 'forward');
  // libvirt's default forward mode is nat when <forward> has no mode.
  if (fwd) out.forward = { mode: attr(fwd, 'mode') ?? 'nat' };
  const mtu = toInt(attr(child(net, 'mtu'), 'size'));
  if (mtu !== undefined) out.mtu = mtu;
  if (ips.length) out.ip = ips[0];
  return out;
}
