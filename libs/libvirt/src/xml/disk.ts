// <disk> device XML: used inside a domain definition and standalone for attach/detach-device.
import {
  attr,
  checkAbsolutePath,
  checkEnum,
  checkHost,
  checkIqn,
  checkLine,
  checkName,
  checkNonNegativeInt,
  checkPort,
  checkUuid,
  child,
  children,
  parseXmlRoot,
  renderXml,
  textOf,
  type XmlNode,
} from './xml-common.js';

export type DiskFormat = 'qcow2' | 'raw';
export const DISK_FORMATS: readonly DiskFormat[] = ['qcow2', 'raw'];
export type DiskCacheMode = 'default' | 'none' | 'writethrough' | 'writeback' | 'directsync' | 'unsafe';
const CACHE_MODES: readonly DiskCacheMode[] = ['default', 'none', 'writethrough', 'writeback', 'directsync', 'unsafe'];

/** Options shared by every disk kind. All disks use the virtio bus. */
export interface DiskCommon {
  /** Guest device name: `vda`, `vdb`, … (see {@link nextFreeTargetDev}). */
  targetDev: string;
  /** Read-only disk (e.g. the config drive). */
  readonly?: boolean;
  /**
   * Serial number the guest sees (`/dev/disk/by-id/virtio-<serial>`). virtio-blk carries at most
   * 20 bytes and QEMU silently truncates longer ones, so longer serials are refused; an EC2
   * volume id without its dash (`vol0123456789abcdef0`) is exactly 20, as on AWS Nitro.
   */
  serial?: string;
  /** QEMU cache mode; libvirt's default when omitted. `none` needs O_DIRECT (not on tmpfs). */
  cache?: DiskCacheMode;
}

/** A volume of a libvirt storage pool: `<disk type='volume'><source pool= volume=/>`. */
export interface VolumeDiskSpec extends DiskCommon {
  kind: 'volume';
  pool: string;
  volume: string;
  format: DiskFormat;
}

/** A host file: `<disk type='file'><source file=/>`. */
export interface FileDiskSpec extends DiskCommon {
  kind: 'file';
  path: string;
  format: DiskFormat;
}

/** Reference to a libvirt secret (never a password in the domain XML). */
export type SecretRef = { usage: string; uuid?: undefined } | { uuid: string; usage?: undefined };

/** CHAP credentials for an iSCSI disk: user name + a libvirt secret of usage type `iscsi`. */
export interface IscsiAuth {
  username: string;
  secret: SecretRef;
}

/**
 * An iSCSI LUN reached through QEMU's own initiator:
 * `<disk type='network'><source protocol='iscsi' name='IQN/LUN'><host/></source>`.
 */
export interface IscsiDiskSpec extends DiskCommon {
  kind: 'iscsi';
  /** Target IQN, e.g. `iqn.2024-01.dev.koala:vol-0123`. */
  iqn: string;
  /** Logical unit number (tgtd exports data LUNs from 1). */
  lun: number;
  host: string;
  /** Default 3260. */
  port?: number;
  auth?: IscsiAuth;
  /** Initiator name QEMU logs in with (`<initiator><iqn name=/></initiator>`), e.g. for tgt ACLs. */
  initiatorIqn?: string;
}

export type DiskSpec = VolumeDiskSpec | FileDiskSpec | IscsiDiskSpec;

/** A disk as read back from domain XML. Fields are absent when libvirt did not write them. */
export interface ParsedDisk {
  /** `file`, `volume`, `network`, `block`, … */
  type: string;
  /** `disk`, `cdrom`, … */
  device: string;
  targetDev?: string;
  bus?: string;
  driverType?: string;
  sourceFile?: string;
  sourcePool?: string;
  sourceVolume?: string;
  sourceProtocol?: string;
  /** For network disks: `IQN/LUN` for iSCSI. */
  sourceName?: string;
  sourceHosts: { name?: string; port?: number }[];
  authUsername?: string;
  authSecretUsage?: string;
  authSecretUuid?: string;
  /** iSCSI initiator name (`<source><initiator><iqn name=/>`). */
  initiatorIqn?: string;
  readonly: boolean;
  serial?: string;
}

const TARGET_DEV = /^vd[a-z]{1,3}$/;
const SERIAL = /^[A-Za-z0-9_.+ -]{1,20}$/;

function checkTargetDev(value: unknown, field: string): string {
  const s = checkLine(value, field);
  if (!TARGET_DEV.test(s)) throw new Error(`${field} must be a virtio device name like vda, vdb, got ${JSON.stringify(s)}`);
  return s;
}

function secretRefNode(ref: SecretRef, field: string, type: string): XmlNode {
  if (!ref || typeof ref !== 'object') throw new Error(`${field} must reference a libvirt secret by usage or uuid`);
  if (ref.uuid !== undefined && ref.usage !== undefined) {
    throw new Error(`${field} must give either usage or uuid, not both`);
  }
  if (ref.uuid !== undefined) return { $: { type, uuid: checkUuid(ref.uuid, `${field}.uuid`) } };
  if (ref.usage !== undefined) return { $: { type, usage: checkLine(ref.usage, `${field}.usage`) } };
  throw new Error(`${field} must reference a libvirt secret by usage or uuid`);
}

/** The object tree of one `<disk>` (validated). */
export function diskNode(spec: DiskSpec, field = 'disk'): XmlNode {
  if (!spec || typeof spec !== 'object') throw new Error(`${field} must be an object`);
  const targetDev = checkTargetDev(spec.targetDev, `${field}.targetDev`);
  const driver: Record<string, string> = { name: 'qemu' };
  const node: XmlNode = {};
  let source: XmlNode;
  let type: string;
  switch (spec.kind) {
    case 'volume':
      type = 'volume';
      driver.type = checkEnum(spec.format, DISK_FORMATS, `${field}.format`);
      source = { $: { pool: checkName(spec.pool, `${field}.pool`), volume: checkName(spec.volume, `${field}.volume`) } };
      break;
    case 'file':
      type = 'file';
      driver.type = checkEnum(spec.format, DISK_FORMATS, `${field}.format`);
      source = { $: { file: checkAbsolutePath(spec.path, `${field}.path`) } };
      break;
    case 'iscsi': {
      type = 'network';
      // A LUN is a raw block device; QEMU must not probe a format on it.
      driver.type = 'raw';
      const iqn = checkIqn(spec.iqn, `${field}.iqn`);
      const lun = checkNonNegativeInt(spec.lun, `${field}.lun`);
      const host = checkHost(spec.host, `${field}.host`);
      const port = checkPort(spec.port ?? 3260, `${field}.port`);
      source = { $: { protocol: 'iscsi', name: `${iqn}/${lun}` }, host: { $: { name: host, port: String(port) } } };
      if (spec.initiatorIqn !== undefined) source.initiator = { iqn: { $: { name: checkIqn(spec.initiatorIqn, `${field}.initiatorIqn`) } } };
      if (spec.auth !== undefined) {
        // libvirt >= 3.9 recommends <auth> inside <source>; the parser accepts both places.
        source.auth = {
          $: { username: checkLine(spec.auth.username, `${field}.auth.username`) },
          secret: secretRefNode(spec.auth.secret, `${field}.auth.secret`, 'iscsi'),
        };
      }
      break;
    }
    default:
      throw new Error(`${field}.kind must be one of volume, file, iscsi, got ${JSON.stringify((spec as { kind?: unknown }).kind)}`);
  }
  if (spec.cache !== undefined) driver.cache = checkEnum(spec.cache, CACHE_MODES, `${field}.cache`);
  node.$ = { type, device: 'disk' };
  node.driver = { $: driver };
  node.source = source;
  node.target = { $: { dev: targetDev, bus: 'virtio' } };
  if (spec.readonly) node.readonly = '';
  if (spec.serial !== undefined) {
    const serial = checkLine(spec.serial, `${field}.serial`);
    if (!SERIAL.test(serial)) {
      throw new Error(`${field}.serial must be 1-20 characters of A-Z a-z 0-9 _ . + - or space (virtio-blk limit), got ${JSON.stringify(serial)}`);
    }
    node.serial = serial;
  }
  return node;
}

/** Standalone `<disk>` XML for `attachDeviceFlags` / `detachDeviceFlags`. */
export function buildDiskXml(spec: DiskSpec): string {
  return renderXml('disk', diskNode(spec));
}

/** Reads one `<disk>` element (from a parsed domain or a standalone disk XML). */
export function parseDiskNode(disk: XmlNode): ParsedDisk {
  const source = child(disk, 'source');
  const target = child(disk, 'target');
  const auth = child(source, 'auth') ?? child(disk, 'auth');
  const secret = child(auth, 'secret');
  const result: ParsedDisk = {
    type: attr(disk, 'type') ?? 'file',
    device: attr(disk, 'device') ?? 'disk',
    sourceHosts: children(source, 'host').map((h) => {
      const port = attr(h, 'port');
      return { name: attr(h, 'name'), port: port !== undefined ? Number(port) : undefined };
    }),
    readonly: child(disk, 'readonly') !== undefined,
  };
  const set = <K extends keyof ParsedDisk>(key: K, value: ParsedDisk[K] | undefined) => {
    if (value !== undefined) result[key] = value;
  };
  set('targetDev', attr(target, 'dev'));
  set('bus', attr(target, 'bus'));
  set('driverType', attr(child(disk, 'driver'), 'type'));
  set('sourceFile', attr(source, 'file') ?? attr(source, 'dev'));
  set('sourcePool', attr(source, 'pool'));
  set('sourceVolume', attr(source, 'volume'));
  set('sourceProtocol', attr(source, 'protocol'));
  set('sourceName', attr(source, 'name'));
  set('authUsername', attr(auth, 'username'));
  set('authSecretUsage', attr(secret, 'usage'));
  set('authSecretUuid', attr(secret, 'uuid'));
  set('initiatorIqn', attr(child(child(source, 'initiator'), 'iqn'), 'name'));
  set('serial', textOf(child(disk, 'serial')));
  for (const h of result.sourceHosts) {
    if (h.name === undefined) delete h.name;
    if (h.port === undefined || Number.isNaN(h.port)) delete h.port;
  }
  return result;
}

/** Parses standalone `<disk>` XML. */
export function parseDiskXml(xml: string): ParsedDisk {
  return parseDiskNode(parseXmlRoot(xml, 'disk'));
}

/** `0 -> a`, `25 -> z`, `26 -> aa` (libvirt's virIndexToDiskName). */
export function diskIndexToSuffix(index: number): string {
  checkNonNegativeInt(index, 'disk index');
  let n = index;
  let out = '';
  do {
    out = String.fromCharCode(97 + (n % 26)) + out;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return out;
}

/** Inverse of {@link diskIndexToSuffix}; undefined when `suffix` is not a-z letters. */
export function diskSuffixToIndex(suffix: string): number | undefined {
  if (!/^[a-z]+$/.test(suffix)) return undefined;
  let n = 0;
  for (const c of suffix) n = n * 26 + (c.charCodeAt(0) - 96);
  return n - 1;
}

/**
 * The first free `vdX` target dev (`vda`, `vdb`, … `vdz`, `vdaa`, …) given the existing disks
 * (target names or parsed disks). Only `vd*` names are considered taken-by-virtio; others are ignored.
 */
export function nextFreeTargetDev(existing: Iterable<string | { targetDev?: string } | undefined>, prefix = 'vd'): string {
  const taken = new Set<number>();
  for (const e of existing) {
    const dev = typeof e === 'string' ? e : e?.targetDev;
    if (!dev || !dev.startsWith(prefix)) continue;
    const idx = diskSuffixToIndex(dev.slice(prefix.length));
    if (idx !== undefined) taken.add(idx);
  }
  let i = 0;
  while (taken.has(i)) i++;
  return prefix + diskIndexToSuffix(i);
}
