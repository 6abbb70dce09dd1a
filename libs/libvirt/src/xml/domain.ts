// Domain (virtual machine) XML builder and parser.
import { diskNode, parseDiskNode, type DiskSpec, type ParsedDisk } from './disk.js';
import { parseCapabilitiesXml } from './capabilities.js';
import { filterRefNode, type FilterRefSpec } from './nwfilter.js';
import {
  attr,
  checkAbsolutePath,
  checkEnum,
  checkLine,
  checkName,
  checkPositiveInt,
  checkUuid,
  child,
  children,
  childText,
  parseXmlRoot,
  renderXml,
  scaledToBytes,
  textOf,
  toInt,
  type XmlNode,
} from './xml-common.js';

export type DomainType = 'kvm' | 'qemu';
export const DOMAIN_TYPES: readonly DomainType[] = ['kvm', 'qemu'];

/** Namespace of Koala's `<metadata>` element; lets a node controller recognise its domains. */
export const KOALA_METADATA_NS = 'https://koala.dev/xmlns/instance/1';
/** Prefix used when writing the metadata element (readers match the namespace URI, not this). */
export const KOALA_METADATA_PREFIX = 'koala';

export type LifecycleAction = 'destroy' | 'restart' | 'preserve' | 'rename-restart';
export type CrashAction = LifecycleAction | 'coredump-destroy' | 'coredump-restart';
const LIFECYCLE: readonly LifecycleAction[] = ['destroy', 'restart', 'preserve', 'rename-restart'];
const CRASH: readonly CrashAction[] = [...LIFECYCLE, 'coredump-destroy', 'coredump-restart'];

/** HVM boot from the first disk (a whole bootable image). */
export interface DiskBoot {
  kind: 'disk';
}
/** Direct kernel boot (paravirtual images: eki kernel + eri ramdisk). Paths are on the host. */
export interface KernelBoot {
  kind: 'kernel';
  kernel: string;
  initrd?: string;
  cmdline?: string;
}
export type BootSpec = DiskBoot | KernelBoot;

/** Koala's identity for a domain, stored in `<metadata>`. */
export interface KoalaDomainMetadata {
  instanceId: string;
  accountId: string;
  /** More facts to keep with the domain (written as `<koala:KEY>VALUE</koala:KEY>`; keys are XML names). */
  extra?: Record<string, string>;
}

/**
 * Serial console written to a host file the node controller reads.
 *
 * Default `pty-log`: `<serial type='pty'><log file=… append='off'/>`. The log file is opened by
 * libvirt's virtlogd (root) and handed to QEMU, so the controller can read it whatever user QEMU
 * runs as; virtlogd rotates it (max_size/max_backups in virtlogd.conf) so a chatty guest cannot
 * fill the disk; `append='off'` starts it afresh at each boot; and the console stays
 * interactive (`virsh console`) for debugging. This is also what OpenStack Nova uses for
 * console.log. `file` (`<serial type='file'><source path=…/>`) is kept for hosts without
 * virtlogd: it has no interactive side and no rotation. Readers should expect the file to be
 * replaced on rotation and re-open it by path.
 */
export interface SerialLogSpec {
  path: string;
  mode?: 'pty-log' | 'file';
  /** Keep earlier content across boots (default false: truncate at start). */
  append?: boolean;
}

/** A NIC on a bridge or network, by `type` and `source`. */
export interface SourceInterfaceSpec {
  type: 'bridge' | 'network';
  /** Bridge name (type bridge) or libvirt network name (type network). */
  source: string;
  mac?: string;
  /** nwfilter reference, e.g. `clean-traffic` with `IP`/`MAC` parameters. */
  filter?: { name: string; parameters?: Record<string, string | readonly string[]> };
  /** Host-side tap name. */
  targetDev?: string;
}

/**
 * A NIC on a libvirt network (Koala's guests): `<interface type='network'>` with its MAC, a
 * virtio model and, usually, the instance's nwfilter with its `IP`/`MAC` parameters.
 */
export interface NetworkInterfaceSpec {
  network: string;
  mac: string;
  model?: 'virtio';
  filterref?: FilterRefSpec;
  targetDev?: string;
}

export type InterfaceSpec = SourceInterfaceSpec | NetworkInterfaceSpec;

export interface DomainSpec {
  name: string;
  uuid?: string;
  type: DomainType;
  memoryMiB: number;
  vcpus: number;
  /** Guest architecture, default `x86_64`. */
  arch?: string;
  /** Machine type (e.g. `pc`, `q35`); libvirt's default (i440fx `pc`, whose pci.0 hot-plugs) when omitted. */
  machine?: string;
  boot: BootSpec;
  onPoweroff?: LifecycleAction;
  onReboot?: LifecycleAction;
  onCrash?: CrashAction;
  disks?: DiskSpec[];
  interfaces?: InterfaceSpec[];
  serialLog?: SerialLogSpec;
  /** virtio-rng fed from /dev/urandom (default false). */
  rng?: boolean;
  /** virtio memballoon (default false: `<memballoon model='none'/>`, since libvirt adds one otherwise). */
  memballoon?: boolean;
  koala?: KoalaDomainMetadata;
  /** Free-text `<description>`. */
  description?: string;
}

export interface ParsedInterface {
  type: string;
  source?: string;
  mac?: string;
  model?: string;
  /** The host-side tap (`<target dev>`): given, or libvirt's `vnetN` on a running domain. */
  targetDev?: string;
  filter?: string;
  filterParameters: { name: string; value: string }[];
}

export interface ParsedDomain {
  name: string;
  uuid?: string;
  type: string;
  /** Memory in MiB (rounded down from libvirt's KiB). */
  memoryMiB?: number;
  vcpus?: number;
  arch?: string;
  osType?: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  disks: ParsedDisk[];
  interfaces: ParsedInterface[];
  serialLogPath?: string;
  koala?: KoalaDomainMetadata;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

function checkArch(value: unknown, field: string): string {
  const s = checkLine(value, field);
  if (!/^[A-Za-z0-9_]+$/.test(s)) throw new Error(`${field} must be an architecture name like x86_64, got ${JSON.stringify(s)}`);
  return s;
}

function interfaceNode(given: InterfaceSpec, field: string): XmlNode {
  if (!given || typeof given !== 'object') throw new Error(`${field} must be an object`);
  let spec: SourceInterfaceSpec & { filterref?: FilterRefSpec };
  if ('network' in given) {
    if (given.mac === undefined) throw new Error(`${field}.mac is required`);
    if (given.model !== undefined) checkEnum(given.model, ['virtio'] as const, `${field}.model`);
    spec = { type: 'network', source: given.network, mac: given.mac, targetDev: given.targetDev, filterref: given.filterref };
  } else {
    spec = { ...given, filterref: given.filter && { filter: given.filter.name, parameters: given.filter.parameters } };
  }
  const type = checkEnum(spec.type, ['bridge', 'network'] as const, `${field}.type`);
  const node: XmlNode = { $: { type } };
  if (spec.mac !== undefined) {
    const mac = checkLine(spec.mac, `${field}.mac`);
    if (!MAC.test(mac)) throw new Error(`${field}.mac must look like 52:54:00:12:34:56, got ${JSON.stringify(mac)}`);
    node.mac = { $: { address: mac } };
  }
  node.source = { $: { [type]: checkName(spec.source, `${field}.source`) } };
  if (spec.targetDev !== undefined) node.target = { $: { dev: checkName(spec.targetDev, `${field}.targetDev`) } };
  node.model = { $: { type: 'virtio' } };
  if (spec.filterref !== undefined) node.filterref = filterRefNode(spec.filterref, `${field}.filterref`);
  return node;
}

/** Builds a complete `<domain>` definition. Throws a clear Error on invalid input. */
export function buildDomainXml(spec: DomainSpec): string {
  if (!spec || typeof spec !== 'object') throw new Error('domain spec must be an object');
  const name = checkName(spec.name, 'domain.name');
  const type = checkEnum(spec.type, DOMAIN_TYPES, 'domain.type');
  const memory = checkPositiveInt(spec.memoryMiB, 'domain.memoryMiB');
  const vcpus = checkPositiveInt(spec.vcpus, 'domain.vcpus');
  const arch = checkArch(spec.arch ?? 'x86_64', 'domain.arch');

  const dom: XmlNode = { $: { type }, name };
  if (spec.uuid !== undefined) dom.uuid = checkUuid(spec.uuid, 'domain.uuid');
  if (spec.description !== undefined) dom.description = checkLine(spec.description, 'domain.description', { allowEmpty: true });
  if (spec.koala !== undefined) {
    const p = KOALA_METADATA_PREFIX;
    dom.metadata = {
      [`${p}:instance`]: {
        $: { [`xmlns:${p}`]: KOALA_METADATA_NS },
        [`${p}:instanceId`]: checkLine(spec.koala.instanceId, 'domain.koala.instanceId'),
        [`${p}:accountId`]: checkLine(spec.koala.accountId, 'domain.koala.accountId'),
      },
    };
    for (const [key, value] of Object.entries(spec.koala.extra ?? {})) {
      if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(key) || key === 'instanceId' || key === 'accountId')
        throw new Error(`domain.koala.extra key ${JSON.stringify(key)} must be an XML name other than instanceId/accountId`);
      (dom.metadata as Record<string, XmlNode>)[`${p}:instance`][`${p}:${key}`] = checkLine(value, `domain.koala.extra.${key}`, { allowEmpty: true });
    }
  }
  dom.memory = { $: { unit: 'MiB' }, _: String(memory) };
  dom.currentMemory = { $: { unit: 'MiB' }, _: String(memory) };
  dom.vcpu = { $: { placement: 'static' }, _: String(vcpus) };

  const osType: Record<string, string> = { arch };
  if (spec.machine !== undefined) {
    const machine = checkLine(spec.machine, 'domain.machine');
    if (!/^[A-Za-z0-9_.-]+$/.test(machine)) throw new Error(`domain.machine must be a machine type like pc or q35, got ${JSON.stringify(machine)}`);
    osType.machine = machine;
  }
  const os: XmlNode = { type: { $: osType, _: 'hvm' } };
  const boot = spec.boot;
  if (!boot || typeof boot !== 'object') throw new Error('domain.boot must be { kind: "disk" } or { kind: "kernel", kernel, … }');
  if (boot.kind === 'kernel') {
    os.kernel = checkAbsolutePath(boot.kernel, 'domain.boot.kernel');
    if (boot.initrd !== undefined) os.initrd = checkAbsolutePath(boot.initrd, 'domain.boot.initrd');
    if (boot.cmdline !== undefined) os.cmdline = checkLine(boot.cmdline, 'domain.boot.cmdline', { allowEmpty: true });
  } else if (boot.kind === 'disk') {
    os.boot = { $: { dev: 'hd' } };
  } else {
    throw new Error(`domain.boot.kind must be disk or kernel, got ${JSON.stringify((boot as { kind?: unknown }).kind)}`);
  }
  dom.os = os;
  // ACPI is required for PCI hot-plug (QEMU: "Bus 'pci.0' does not support hotplugging" without it).
  dom.features = { acpi: '', apic: '' };
  dom.clock = { $: { offset: 'utc' } };
  dom.on_poweroff = checkEnum(spec.onPoweroff ?? 'destroy', LIFECYCLE, 'domain.onPoweroff');
  dom.on_reboot = checkEnum(spec.onReboot ?? 'restart', LIFECYCLE, 'domain.onReboot');
  dom.on_crash = checkEnum(spec.onCrash ?? 'destroy', CRASH, 'domain.onCrash');

  const devices: XmlNode = {};
  const disks = (spec.disks ?? []).map((d, i) => diskNode(d, `domain.disks[${i}]`));
  const targets = new Set<string>();
  for (const d of disks) {
    const dev = (d.target as XmlNode & { $: { dev: string } }).$.dev;
    if (targets.has(dev)) throw new Error(`domain.disks: target dev ${dev} is used twice`);
    targets.add(dev);
  }
  if (disks.length) devices.disk = disks;
  const ifaces = (spec.interfaces ?? []).map((n, i) => interfaceNode(n, `domain.interfaces[${i}]`));
  if (ifaces.length) devices.interface = ifaces;
  if (spec.serialLog !== undefined) {
    const path = checkAbsolutePath(spec.serialLog.path, 'domain.serialLog.path');
    const mode = checkEnum(spec.serialLog.mode ?? 'pty-log', ['pty-log', 'file'] as const, 'domain.serialLog.mode');
    const append = spec.serialLog.append ? 'on' : 'off';
    if (mode === 'pty-log') {
      devices.serial = { $: { type: 'pty' }, log: { $: { file: path, append } }, target: { $: { port: '0' } } };
      devices.console = { $: { type: 'pty' }, target: { $: { type: 'serial', port: '0' } } };
    } else {
      devices.serial = { $: { type: 'file' }, source: { $: { path, append } }, target: { $: { port: '0' } } };
      devices.console = { $: { type: 'file' }, source: { $: { path, append } }, target: { $: { type: 'serial', port: '0' } } };
    }
  }
  if (spec.rng) devices.rng = { $: { model: 'virtio' }, backend: { $: { model: 'random' }, _: '/dev/urandom' } };
  devices.memballoon = { $: { model: spec.memballoon ? 'virtio' : 'none' } };
  dom.devices = devices;
  return renderXml('domain', dom);
}

/** Finds Koala's metadata element whatever prefix it was written with (matched by namespace URI). */
function readKoalaMetadata(metadata: XmlNode | undefined): KoalaDomainMetadata | undefined {
  if (!metadata) return undefined;
  for (const key of Object.keys(metadata)) {
    if (key === '$' || key === '_') continue;
    const colon = key.indexOf(':');
    const prefix = colon >= 0 ? key.slice(0, colon) : '';
    const local = colon >= 0 ? key.slice(colon + 1) : key;
    if (local !== 'instance') continue;
    for (const el of children(metadata, key)) {
      const ns = attr(el, prefix ? `xmlns:${prefix}` : 'xmlns');
      if (ns !== KOALA_METADATA_NS) continue;
      const q = (n: string) => (prefix ? `${prefix}:${n}` : n);
      const instanceId = childText(el, q('instanceId'));
      const accountId = childText(el, q('accountId'));
      if (instanceId === undefined || accountId === undefined) continue;
      const extra: Record<string, string> = {};
      for (const k of Object.keys(el)) {
        if (k === '$' || k === '_' || k === q('instanceId') || k === q('accountId')) continue;
        if (prefix ? !k.startsWith(`${prefix}:`) : k.includes(':')) continue;
        const text = childText(el, k);
        if (text !== undefined) extra[prefix ? k.slice(prefix.length + 1) : k] = text;
      }
      return Object.keys(extra).length ? { instanceId, accountId, extra } : { instanceId, accountId };
    }
  }
  return undefined;
}

function parseInterface(node: XmlNode): ParsedInterface {
  const type = attr(node, 'type') ?? 'network';
  const source = child(node, 'source');
  const filterref = child(node, 'filterref');
  const out: ParsedInterface = {
    type,
    filterParameters: children(filterref, 'parameter').map((p) => ({ name: attr(p, 'name') ?? '', value: attr(p, 'value') ?? '' })),
  };
  const src = attr(source, type) ?? attr(source, 'bridge') ?? attr(source, 'network');
  if (src !== undefined) out.source = src;
  const mac = attr(child(node, 'mac'), 'address');
  if (mac !== undefined) out.mac = mac;
  const model = attr(child(node, 'model'), 'type');
  if (model !== undefined) out.model = model;
  const targetDev = attr(child(node, 'target'), 'dev');
  if (targetDev !== undefined) out.targetDev = targetDev;
  const filter = attr(filterref, 'filter');
  if (filter !== undefined) out.filter = filter;
  return out;
}

/** Reads a domain XML (as written by us or by `virsh dumpxml`). Tolerant of unknown content. */
export function parseDomainXml(xml: string): ParsedDomain {
  const dom = parseXmlRoot(xml, 'domain');
  const devices = child(dom, 'devices');
  const os = child(dom, 'os');
  const osType = child(os, 'type');
  const memBytes = scaledToBytes(child(dom, 'memory'), 'KiB');
  const out: ParsedDomain = {
    name: childText(dom, 'name') ?? '',
    type: attr(dom, 'type') ?? '',
    disks: children(devices, 'disk').map(parseDiskNode),
    interfaces: children(devices, 'interface').map(parseInterface),
  };
  const set = <K extends keyof ParsedDomain>(key: K, value: ParsedDomain[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set('uuid', childText(dom, 'uuid'));
  set('memoryMiB', memBytes !== undefined ? Math.floor(memBytes / 1024 ** 2) : undefined);
  set('vcpus', toInt(childText(dom, 'vcpu')));
  set('arch', attr(osType, 'arch'));
  set('osType', textOf(osType));
  set('kernel', childText(os, 'kernel'));
  set('initrd', childText(os, 'initrd'));
  set('cmdline', childText(os, 'cmdline'));
  // Serial log: <serial type='pty'><log file=…/> or <serial type='file'><source path=…/>; the
  // <console> libvirt mirrors from serial0 is the fallback.
  for (const el of [...children(devices, 'serial'), ...children(devices, 'console')]) {
    const path = attr(child(el, 'log'), 'file') ?? (attr(el, 'type') === 'file' ? attr(child(el, 'source'), 'path') : undefined);
    if (path !== undefined) {
      out.serialLogPath = path;
      break;
    }
  }
  set('koala', readKoalaMetadata(child(dom, 'metadata')));
  return out;
}

/**
 * Picks the domain type for this host: `kvm` only when the capabilities offer it for the arch AND
 * /dev/kvm is present (the caller checks the device; libvirt lists kvm even on hosts without it),
 * otherwise `qemu` (TCG). Throws when the host offers neither (e.g. the test driver).
 */
export function chooseDomainType(capabilitiesXml: string, kvmDevicePresent: boolean, arch?: string): DomainType {
  const caps = parseCapabilitiesXml(capabilitiesXml);
  const wanted = arch ?? caps.hostArch ?? 'x86_64';
  const offered = new Set<string>();
  for (const g of caps.guests) {
    if (g.osType === 'hvm' && g.arch === wanted) for (const t of g.domainTypes) offered.add(t);
  }
  if (kvmDevicePresent && offered.has('kvm')) return 'kvm';
  if (offered.has('qemu')) return 'qemu';
  if (offered.has('kvm')) {
    throw new Error(`host offers only kvm for ${wanted} guests but /dev/kvm is not present`);
  }
  throw new Error(`host capabilities offer neither kvm nor qemu hvm guests for arch ${wanted}`);
}
