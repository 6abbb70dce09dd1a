// Storage pool XML builder and parser.
//
// Backends: `dir` (the NC's image cache and instance disks), `logical` (LVM volume group; NOT
// testable on the project's machines, which have no device-mapper: only its XML is checked),
// `iscsi` (kernel initiator, LUNs appear under /dev/disk/by-path) and `iscsi-direct` (libiscsi,
// no kernel initiator; initiator IQN required).
import type { SecretRef } from './disk.js';
import {
  attr,
  checkAbsolutePath,
  checkHost,
  checkIqn,
  checkLine,
  checkName,
  checkPort,
  checkUuid,
  child,
  children,
  childText,
  parseXmlRoot,
  renderXml,
  scaledToBytes,
  type XmlNode,
} from './xml-common.js';

export type StoragePoolType = 'dir' | 'logical' | 'iscsi' | 'iscsi-direct';

interface PoolCommon {
  name: string;
  uuid?: string;
}

export interface DirPoolSpec extends PoolCommon {
  type: 'dir';
  targetPath: string;
}

export interface LogicalPoolSpec extends PoolCommon {
  type: 'logical';
  /** Volume group name. */
  vgName: string;
  /** Physical volumes (block devices); needed only to build a new VG. */
  devices?: string[];
  /** Default `/dev/<vgName>`. */
  targetPath?: string;
}

/** CHAP for a pool: user name + libvirt secret (usage type iscsi). */
export interface PoolChapAuth {
  username: string;
  secret: SecretRef;
}

interface IscsiPoolCommon extends PoolCommon {
  host: string;
  /** Default 3260. */
  port?: number;
  /** Target IQN (written as `<device path=IQN/>`). */
  iqn: string;
  auth?: PoolChapAuth;
}

export interface IscsiPoolSpec extends IscsiPoolCommon {
  type: 'iscsi';
  initiatorIqn?: string;
  /** Default `/dev/disk/by-path`. */
  targetPath?: string;
}

export interface IscsiDirectPoolSpec extends IscsiPoolCommon {
  type: 'iscsi-direct';
  initiatorIqn: string;
}

export type StoragePoolSpec = DirPoolSpec | LogicalPoolSpec | IscsiPoolSpec | IscsiDirectPoolSpec;

export interface ParsedStoragePool {
  name: string;
  uuid?: string;
  type: string;
  targetPath?: string;
  capacityBytes?: number;
  allocationBytes?: number;
  availableBytes?: number;
  sourceHosts: { name?: string; port?: number }[];
  sourceDevices: string[];
  /** `<source><name>`: the VG of a logical pool. */
  sourceName?: string;
  initiatorIqn?: string;
  authUsername?: string;
  authSecretUsage?: string;
  authSecretUuid?: string;
}

function poolAuthNode(auth: PoolChapAuth): XmlNode {
  const username = checkLine(auth?.username, 'pool.auth.username');
  const ref = auth.secret;
  let secret: XmlNode;
  if (ref?.uuid !== undefined && ref?.usage !== undefined) throw new Error('pool.auth.secret must give either usage or uuid, not both');
  if (ref?.uuid !== undefined) secret = { $: { uuid: checkUuid(ref.uuid, 'pool.auth.secret.uuid') } };
  else if (ref?.usage !== undefined) secret = { $: { usage: checkLine(ref.usage, 'pool.auth.secret.usage') } };
  else throw new Error('pool.auth.secret must reference a libvirt secret by usage or uuid');
  return { $: { type: 'chap', username }, secret };
}

export function buildStoragePoolXml(spec: StoragePoolSpec): string {
  if (!spec || typeof spec !== 'object') throw new Error('storage pool spec must be an object');
  const pool: XmlNode = { $: { type: spec.type }, name: checkName(spec.name, 'pool.name') };
  if (spec.uuid !== undefined) pool.uuid = checkUuid(spec.uuid, 'pool.uuid');
  switch (spec.type) {
    case 'dir':
      pool.target = { path: checkAbsolutePath(spec.targetPath, 'pool.targetPath') };
      break;
    case 'logical': {
      const vg = checkName(spec.vgName, 'pool.vgName');
      const source: XmlNode = {};
      const devices = (spec.devices ?? []).map((d, i) => ({ $: { path: checkAbsolutePath(d, `pool.devices[${i}]`) } }));
      if (devices.length) source.device = devices;
      source.name = vg;
      source.format = { $: { type: 'lvm2' } };
      pool.source = source;
      pool.target = { path: checkAbsolutePath(spec.targetPath ?? `/dev/${vg}`, 'pool.targetPath') };
      break;
    }
    case 'iscsi':
    case 'iscsi-direct': {
      const source: XmlNode = {
        host: { $: { name: checkHost(spec.host, 'pool.host'), port: String(checkPort(spec.port ?? 3260, 'pool.port')) } },
        device: { $: { path: checkIqn(spec.iqn, 'pool.iqn') } },
      };
      if (spec.type === 'iscsi-direct' && spec.initiatorIqn === undefined) {
        throw new Error('pool.initiatorIqn is required for an iscsi-direct pool');
      }
      if (spec.initiatorIqn !== undefined) {
        source.initiator = { iqn: { $: { name: checkIqn(spec.initiatorIqn, 'pool.initiatorIqn') } } };
      }
      if (spec.auth !== undefined) source.auth = poolAuthNode(spec.auth);
      pool.source = source;
      if (spec.type === 'iscsi') {
        pool.target = { path: checkAbsolutePath(spec.targetPath ?? '/dev/disk/by-path', 'pool.targetPath') };
      }
      break;
    }
    default:
      throw new Error(`pool.type must be one of dir, logical, iscsi, iscsi-direct, got ${JSON.stringify((spec as { type?: unknown }).type)}`);
  }
  return renderXml('pool', pool);
}

export function parseStoragePoolXml(xml: string): ParsedStoragePool {
  const pool = parseXmlRoot(xml, 'pool');
  const source = child(pool, 'source');
  const auth = child(source, 'auth');
  const secret = child(auth, 'secret');
  const out: ParsedStoragePool = {
    name: childText(pool, 'name') ?? '',
    type: attr(pool, 'type') ?? '',
    sourceHosts: children(source, 'host').map((h) => {
      const r: { name?: string; port?: number } = {};
      const name = attr(h, 'name');
      if (name !== undefined) r.name = name;
      const port = Number(attr(h, 'port'));
      if (attr(h, 'port') !== undefined && !Number.isNaN(port)) r.port = port;
      return r;
    }),
    sourceDevices: children(source, 'device')
      .map((d) => attr(d, 'path'))
      .filter((p): p is string => p !== undefined),
  };
  const set = <K extends keyof ParsedStoragePool>(key: K, value: ParsedStoragePool[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set('uuid', childText(pool, 'uuid'));
  set('targetPath', childText(child(pool, 'target'), 'path'));
  set('capacityBytes', scaledToBytes(child(pool, 'capacity'), 'bytes'));
  set('allocationBytes', scaledToBytes(child(pool, 'allocation'), 'bytes'));
  set('availableBytes', scaledToBytes(child(pool, 'available'), 'bytes'));
  set('sourceName', childText(source, 'name'));
  set('initiatorIqn', attr(child(child(source, 'initiator'), 'iqn'), 'name'));
  set('authUsername', attr(auth, 'username'));
  set('authSecretUsage', attr(secret, 'usage'));
  set('authSecretUuid', attr(secret, 'uuid'));
  return out;
}
