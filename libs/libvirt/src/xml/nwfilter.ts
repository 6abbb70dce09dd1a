// Network filter XML (`<filter>`): libvirt's nwfilter rules, filter references with parameters
// (e.g. the built-in `clean-traffic` with IP/MAC), and a parser.
//
// Attribute values are checked by kind (address, mask, port, ICMP type, state list, ipset...).
// A value may also be a filter variable (`$IP`, `$IP[@1]`), which libvirt fills in from the
// parameters of the referencing `<filterref>`.
import { checkIpAddress, checkMac } from './network.js';
import { attr, checkEnum, checkLine, checkName, checkNonNegativeInt, checkUuid, children, childText, parseXmlRoot, renderXml, toInt, type XmlNode } from './xml-common.js';

export type NwFilterAction = 'accept' | 'drop' | 'reject' | 'return' | 'continue';
export type NwFilterDirection = 'in' | 'out' | 'inout';
export const NWFILTER_ACTIONS: readonly NwFilterAction[] = ['accept', 'drop', 'reject', 'return', 'continue'];
export const NWFILTER_DIRECTIONS: readonly NwFilterDirection[] = ['in', 'out', 'inout'];

/** The protocol elements of a `<rule>` (libvirt's formatnwfilter). */
export type NwFilterProtocol =
  | 'mac'
  | 'vlan'
  | 'stp'
  | 'arp'
  | 'rarp'
  | 'ip'
  | 'ipv6'
  | 'tcp'
  | 'udp'
  | 'sctp'
  | 'icmp'
  | 'igmp'
  | 'esp'
  | 'ah'
  | 'udplite'
  | 'all'
  | 'tcp-ipv6'
  | 'udp-ipv6'
  | 'sctp-ipv6'
  | 'icmpv6'
  | 'esp-ipv6'
  | 'ah-ipv6'
  | 'udplite-ipv6'
  | 'all-ipv6';
export const NWFILTER_PROTOCOLS: readonly NwFilterProtocol[] = [
  'mac',
  'vlan',
  'stp',
  'arp',
  'rarp',
  'ip',
  'ipv6',
  'tcp',
  'udp',
  'sctp',
  'icmp',
  'igmp',
  'esp',
  'ah',
  'udplite',
  'all',
  'tcp-ipv6',
  'udp-ipv6',
  'sctp-ipv6',
  'icmpv6',
  'esp-ipv6',
  'ah-ipv6',
  'udplite-ipv6',
  'all-ipv6',
];
const PORT_PROTOCOLS = new Set<NwFilterProtocol>(['ip', 'ipv6', 'tcp', 'udp', 'sctp', 'tcp-ipv6', 'udp-ipv6', 'sctp-ipv6']);
const ICMP_PROTOCOLS = new Set<NwFilterProtocol>(['icmp', 'icmpv6']);

/** Attributes of a rule's protocol element; which ones a protocol takes is libvirt's to judge, except ports and ICMP type/code. */
export interface NwFilterRuleAttributes {
  srcmacaddr?: string;
  srcmacmask?: string;
  dstmacaddr?: string;
  dstmacmask?: string;
  srcipaddr?: string;
  /** Prefix length (24) or dotted mask. */
  srcipmask?: string | number;
  dstipaddr?: string;
  dstipmask?: string | number;
  srcipfrom?: string;
  srcipto?: string;
  dstipfrom?: string;
  dstipto?: string;
  /** mac/ip element: the L3/L4 protocol (`ipv4`, `arp`, `tcp`, `0x0800`, a number...). */
  protocolid?: string | number;
  srcportstart?: number | string;
  srcportend?: number | string;
  dstportstart?: number | string;
  dstportend?: number | string;
  /** ICMP type / code. */
  type?: number | string;
  code?: number | string;
  /** Connection states, e.g. `NEW` or `ESTABLISHED,RELATED`. */
  state?: string;
  /** TCP flags `MASK/SET`, e.g. `SYN,ACK,RST,FIN/SYN`. */
  flags?: string;
  dscp?: number | string;
  'connlimit-above'?: number | string;
  /** Name of an ipset (in the host's namespace) to match. */
  ipset?: string;
  /** Which addresses are looked up in the ipset: `src`, `dst`, `src,dst`... (1 to 6 items). */
  ipsetflags?: string;
  comment?: string;
}

export interface NwFilterRule {
  action: NwFilterAction;
  direction: NwFilterDirection;
  /** -1000..1000; libvirt's default 500. Lower runs first. */
  priority?: number;
  /** false turns connection tracking off for this rule. */
  statematch?: boolean;
  protocol: NwFilterProtocol;
  attributes?: NwFilterRuleAttributes;
}

export interface FilterRefSpec {
  filter: string;
  /** A list value becomes one `<parameter>` per item (libvirt iterates over them). */
  parameters?: Record<string, string | readonly string[]>;
}

export interface NwFilterSpec {
  name: string;
  uuid?: string;
  /** `root` (default), `mac`, `vlan`, `stp`, `arp`, `rarp`, `ipv4`, `ipv6`, optionally with a `-suffix`. */
  chain?: string;
  /** -1000..1000. */
  priority?: number;
  filterrefs?: FilterRefSpec[];
  rules?: NwFilterRule[];
}

export interface ParsedNwFilterRule {
  action: string;
  direction: string;
  priority?: number;
  statematch?: boolean;
  protocol?: string;
  attributes: Record<string, string>;
}

export interface ParsedNwFilter {
  name: string;
  uuid?: string;
  chain?: string;
  priority?: number;
  filterrefs: { filter: string; parameters: Record<string, string[]> }[];
  rules: ParsedNwFilterRule[];
}

const VARIABLE = /^\$[A-Za-z_][A-Za-z0-9_]*(\[@?\d+\])?$/;
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const STATES = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'NONE'];
const TCP_FLAGS = ['SYN', 'ACK', 'URG', 'PSH', 'FIN', 'RST', 'ALL', 'NONE'];

const describe = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

function checkIntRange(value: unknown, field: string, min: number, max: number): string {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  const i = checkNonNegativeInt(n, field);
  if (i < min || i > max) throw new Error(`${field} must be between ${min} and ${max}, got ${i}`);
  return String(i);
}

function checkPriority(value: unknown, field: string): string {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -1000 || value > 1000) {
    throw new Error(`${field} must be an integer between -1000 and 1000, got ${describe(value)}`);
  }
  return String(value);
}

function checkMask(value: unknown, field: string): string {
  if (typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value))) return checkIntRange(value, field, 0, 128);
  return checkIpAddress(value, field);
}

function checkList(value: unknown, field: string, allowed: string[], max: number): string {
  const s = checkLine(value, field);
  const items = s.split(',');
  if (items.length > max || items.some((i) => !allowed.includes(i))) {
    throw new Error(`${field} must be a comma-separated list of ${allowed.join(', ')}, got ${describe(s)}`);
  }
  return s;
}

const ATTRIBUTE_CHECKS: Record<keyof NwFilterRuleAttributes, (v: unknown, field: string) => string> = {
  srcmacaddr: checkMac,
  srcmacmask: checkMac,
  dstmacaddr: checkMac,
  dstmacmask: checkMac,
  srcipaddr: (v, f) => checkIpAddress(v, f),
  srcipmask: checkMask,
  dstipaddr: (v, f) => checkIpAddress(v, f),
  dstipmask: checkMask,
  srcipfrom: (v, f) => checkIpAddress(v, f),
  srcipto: (v, f) => checkIpAddress(v, f),
  dstipfrom: (v, f) => checkIpAddress(v, f),
  dstipto: (v, f) => checkIpAddress(v, f),
  protocolid: (v, f) => {
    if (typeof v === 'number') return checkIntRange(v, f, 0, 0xffff);
    const s = checkLine(v, f);
    if (!/^([a-z0-9-]{1,16}|0x[0-9a-fA-F]{1,4})$/.test(s)) throw new Error(`${f} must be a protocol name or number, got ${describe(s)}`);
    return s;
  },
  srcportstart: (v, f) => checkIntRange(v, f, 0, 65535),
  srcportend: (v, f) => checkIntRange(v, f, 0, 65535),
  dstportstart: (v, f) => checkIntRange(v, f, 0, 65535),
  dstportend: (v, f) => checkIntRange(v, f, 0, 65535),
  type: (v, f) => checkIntRange(v, f, 0, 255),
  code: (v, f) => checkIntRange(v, f, 0, 255),
  state: (v, f) => checkList(v, f, STATES, STATES.length),
  flags: (v, f) => {
    const s = checkLine(v, f);
    const parts = s.split('/');
    if (parts.length !== 2) throw new Error(`${f} must be MASK/SET (e.g. SYN,ACK/SYN), got ${describe(s)}`);
    for (const p of parts) checkList(p, f, TCP_FLAGS, TCP_FLAGS.length);
    return s;
  },
  dscp: (v, f) => checkIntRange(v, f, 0, 63),
  'connlimit-above': (v, f) => checkIntRange(v, f, 0, 0xffff),
  ipset: (v, f) => {
    const s = checkLine(v, f);
    if (!/^[A-Za-z0-9_.:-]{1,31}$/.test(s)) throw new Error(`${f} must be an ipset name of 1-31 letters, digits, '_', '.', ':', '-', got ${describe(s)}`);
    return s;
  },
  ipsetflags: (v, f) => checkList(v, f, ['src', 'dst'], 6),
  comment: (v, f) => {
    const s = checkLine(v, f, { allowEmpty: true });
    if (s.length > 256) throw new Error(`${f} must be at most 256 characters`);
    return s;
  },
};
/** Attribute order in the output (stable, for readable diffs). */
const ATTRIBUTE_ORDER = Object.keys(ATTRIBUTE_CHECKS) as (keyof NwFilterRuleAttributes)[];

function ruleNode(rule: NwFilterRule, field: string): XmlNode {
  if (!rule || typeof rule !== 'object') throw new Error(`${field} must be an object`);
  const r: Record<string, string> = {
    action: checkEnum(rule.action, NWFILTER_ACTIONS, `${field}.action`),
    direction: checkEnum(rule.direction, NWFILTER_DIRECTIONS, `${field}.direction`),
  };
  if (rule.priority !== undefined) r.priority = checkPriority(rule.priority, `${field}.priority`);
  if (rule.statematch !== undefined) {
    if (typeof rule.statematch !== 'boolean') throw new Error(`${field}.statematch must be a boolean`);
    r.statematch = rule.statematch ? 'true' : 'false';
  }
  const protocol = checkEnum(rule.protocol, NWFILTER_PROTOCOLS, `${field}.protocol`);
  const given = rule.attributes ?? {};
  if (typeof given !== 'object') throw new Error(`${field}.attributes must be an object`);
  for (const key of Object.keys(given)) {
    if (!(key in ATTRIBUTE_CHECKS)) throw new Error(`${field}.attributes.${key} is not a supported rule attribute`);
  }
  const a: Record<string, string> = {};
  for (const key of ATTRIBUTE_ORDER) {
    const v = given[key];
    if (v === undefined) continue;
    const f = `${field}.attributes.${key}`;
    if (/port(start|end)$/.test(key) && !PORT_PROTOCOLS.has(protocol)) throw new Error(`${f}: protocol ${protocol} has no ports`);
    if ((key === 'type' || key === 'code') && !ICMP_PROTOCOLS.has(protocol)) throw new Error(`${f}: only icmp/icmpv6 rules have a type and code`);
    a[key] = typeof v === 'string' && VARIABLE.test(v) ? v : ATTRIBUTE_CHECKS[key](v, f);
  }
  const ipset = a.ipset !== undefined;
  if (ipset !== (a.ipsetflags !== undefined)) throw new Error(`${field}.attributes: ipset and ipsetflags go together`);
  for (const [start, end] of [
    ['srcportstart', 'srcportend'],
    ['dstportstart', 'dstportend'],
  ]) {
    if (a[start] !== undefined && a[end] !== undefined && !VARIABLE.test(a[start]) && !VARIABLE.test(a[end]) && Number(a[start]) > Number(a[end])) {
      throw new Error(`${field}.attributes: ${start} ${a[start]} is above ${end} ${a[end]}`);
    }
  }
  return { $: r, [protocol]: Object.keys(a).length ? { $: a } : '' };
}

/** `<filterref filter=…><parameter name value/>…</filterref>`, shared with the domain builder. */
export function filterRefNode(spec: FilterRefSpec, field: string): XmlNode {
  if (!spec || typeof spec !== 'object') throw new Error(`${field} must be { filter, parameters? }`);
  const node: XmlNode = { $: { filter: checkFilterName(spec.filter, `${field}.filter`) } };
  const params: XmlNode[] = [];
  const given = spec.parameters ?? {};
  if (typeof given !== 'object') throw new Error(`${field}.parameters must be an object`);
  for (const [name, values] of Object.entries(given)) {
    if (!PARAM_NAME.test(name)) throw new Error(`${field}.parameters: ${describe(name)} is not a variable name (letters, digits, '_')`);
    const list = typeof values === 'string' ? [values] : Array.isArray(values) ? [...values] : undefined;
    if (!list) throw new Error(`${field}.parameters.${name} must be a string or a list of strings`);
    for (const v of list) params.push({ $: { name, value: checkLine(v, `${field}.parameters.${name}`) } });
  }
  if (params.length) node.parameter = params;
  return node;
}

function checkFilterName(value: unknown, field: string): string {
  const s = checkName(value, field);
  if (/\s/.test(s)) throw new Error(`${field} must not contain white space: ${describe(s)}`);
  return s;
}

/** Builds a `<filter>` definition. Throws a clear Error on invalid input. */
export function buildNwFilterXml(spec: NwFilterSpec): string {
  if (!spec || typeof spec !== 'object') throw new Error('nwfilter spec must be an object');
  const a: Record<string, string> = { name: checkFilterName(spec.name, 'nwfilter.name') };
  if (spec.chain !== undefined) {
    const chain = checkLine(spec.chain, 'nwfilter.chain');
    if (!/^(root|mac|vlan|stp|arp|rarp|ipv4|ipv6)(-[A-Za-z0-9_]{1,24})?$/.test(chain) || (chain.startsWith('root') && chain !== 'root')) {
      throw new Error(`nwfilter.chain must be root, mac, vlan, stp, arp, rarp, ipv4 or ipv6 (optionally -suffix), got ${describe(chain)}`);
    }
    a.chain = chain;
  }
  if (spec.priority !== undefined) a.priority = checkPriority(spec.priority, 'nwfilter.priority');
  const filter: XmlNode = { $: a };
  if (spec.uuid !== undefined) filter.uuid = checkUuid(spec.uuid, 'nwfilter.uuid');
  if (spec.filterrefs !== undefined && !Array.isArray(spec.filterrefs)) throw new Error('nwfilter.filterrefs must be an array');
  if (spec.rules !== undefined && !Array.isArray(spec.rules)) throw new Error('nwfilter.rules must be an array');
  const refs = (spec.filterrefs ?? []).map((r, i) => filterRefNode(r, `nwfilter.filterrefs[${i}]`));
  if (refs.length) filter.filterref = refs;
  const rules = (spec.rules ?? []).map((r, i) => ruleNode(r, `nwfilter.rules[${i}]`));
  if (rules.length) filter.rule = rules;
  return renderXml('filter', filter);
}

/** Reads a `<filter>` (ours or libvirt's dump). Tolerant of unknown content. */
export function parseNwFilterXml(xml: string): ParsedNwFilter {
  const f = parseXmlRoot(xml, 'filter');
  const out: ParsedNwFilter = {
    name: attr(f, 'name') ?? '',
    filterrefs: children(f, 'filterref').map((ref) => {
      const parameters: Record<string, string[]> = {};
      for (const p of children(ref, 'parameter')) {
        const name = attr(p, 'name') ?? '';
        (parameters[name] ??= []).push(attr(p, 'value') ?? '');
      }
      return { filter: attr(ref, 'filter') ?? '', parameters };
    }),
    rules: children(f, 'rule').map((r) => {
      const rule: ParsedNwFilterRule = { action: attr(r, 'action') ?? '', direction: attr(r, 'direction') ?? '', attributes: {} };
      const priority = toInt(attr(r, 'priority'));
      if (priority !== undefined) rule.priority = priority;
      const sm = attr(r, 'statematch');
      if (sm !== undefined) rule.statematch = !(sm === 'false' || sm === '0');
      const protocol = Object.keys(r).find((k) => k !== '$' && k !== '_' && (NWFILTER_PROTOCOLS as readonly string[]).includes(k));
      if (protocol) {
        rule.protocol = protocol;
        const el = children(r, protocol)[0];
        rule.attributes = { ...((el?.['$'] as Record<string, string> | undefined) ?? {}) };
      }
      return rule;
    }),
  };
  const uuid = childText(f, 'uuid');
  if (uuid !== undefined) out.uuid = uuid;
  const chain = attr(f, 'chain');
  if (chain !== undefined) out.chain = chain;
  const priority = toInt(attr(f, 'priority'));
  if (priority !== undefined) out.priority = priority;
  return out;
}
