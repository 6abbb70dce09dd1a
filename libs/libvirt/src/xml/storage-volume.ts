// Storage volume XML builder and parser (for `dir` pools: raw sparse files and qcow2 files,
// including qcow2 overlays on a cached base image so a launch copies nothing).
import { attr, checkAbsolutePath, checkEnum, checkLine, checkName, checkNonNegativeInt, child, childText, parseXmlRoot, renderXml, scaledToBytes, type XmlNode } from './xml-common.js';

export type VolumeFormat = 'raw' | 'qcow2';
const VOLUME_FORMATS: readonly VolumeFormat[] = ['raw', 'qcow2'];

export interface VolumePermissions {
  /** Octal mode, e.g. `0600` or 0o600. */
  mode?: string | number;
  owner?: number;
  group?: number;
  label?: string;
}

export interface StorageVolumeSpec {
  name: string;
  format: VolumeFormat;
  /**
   * Virtual size in bytes. Required except for a qcow2 overlay, where it defaults to the
   * backing image's size (give it to grow the root disk beyond the image).
   */
  capacityBytes?: number | bigint;
  /** Bytes to preallocate; default 0 (sparse). */
  allocationBytes?: number | bigint;
  /** Makes a qcow2 overlay on this base (copy-on-write, nothing copied). */
  backingStore?: { path: string; format: VolumeFormat };
  permissions?: VolumePermissions;
}

export interface ParsedStorageVolume {
  name: string;
  type?: string;
  key?: string;
  path?: string;
  capacityBytes?: number;
  allocationBytes?: number;
  format?: string;
  backingStorePath?: string;
  backingStoreFormat?: string;
}

function permissionsNode(p: VolumePermissions): XmlNode {
  const node: XmlNode = {};
  if (p.mode !== undefined) {
    const mode = typeof p.mode === 'number' ? p.mode.toString(8).padStart(4, '0') : checkLine(p.mode, 'volume.permissions.mode');
    if (!/^0?[0-7]{3,4}$/.test(mode) || (typeof p.mode === 'number' && (p.mode < 0 || p.mode > 0o7777))) {
      throw new Error(`volume.permissions.mode must be an octal mode like 0600, got ${JSON.stringify(p.mode)}`);
    }
    node.mode = mode;
  }
  if (p.owner !== undefined) node.owner = String(checkNonNegativeInt(p.owner, 'volume.permissions.owner'));
  if (p.group !== undefined) node.group = String(checkNonNegativeInt(p.group, 'volume.permissions.group'));
  if (p.label !== undefined) node.label = checkLine(p.label, 'volume.permissions.label');
  return node;
}

export function buildStorageVolumeXml(spec: StorageVolumeSpec): string {
  if (!spec || typeof spec !== 'object') throw new Error('storage volume spec must be an object');
  const name = checkName(spec.name, 'volume.name');
  const format = checkEnum(spec.format, VOLUME_FORMATS, 'volume.format');
  const vol: XmlNode = { name };
  if (spec.backingStore !== undefined && format !== 'qcow2') {
    throw new Error('volume.backingStore needs format qcow2 (a raw file cannot have a backing store)');
  }
  if (spec.capacityBytes === undefined) {
    if (spec.backingStore === undefined) throw new Error('volume.capacityBytes is required (except for a qcow2 overlay)');
  } else {
    const capacity = checkNonNegativeInt(spec.capacityBytes, 'volume.capacityBytes');
    if (capacity === 0) throw new Error('volume.capacityBytes must be greater than zero');
    vol.capacity = { $: { unit: 'bytes' }, _: String(capacity) };
  }
  const allocation = checkNonNegativeInt(spec.allocationBytes ?? 0, 'volume.allocationBytes');
  if (vol.capacity && allocation > Number((vol.capacity as { _: string })._)) {
    throw new Error('volume.allocationBytes must not exceed capacityBytes');
  }
  vol.allocation = { $: { unit: 'bytes' }, _: String(allocation) };
  const target: XmlNode = { format: { $: { type: format } } };
  if (spec.permissions !== undefined) target.permissions = permissionsNode(spec.permissions);
  vol.target = target;
  if (spec.backingStore !== undefined) {
    vol.backingStore = {
      path: checkAbsolutePath(spec.backingStore.path, 'volume.backingStore.path'),
      format: { $: { type: checkEnum(spec.backingStore.format, VOLUME_FORMATS, 'volume.backingStore.format') } },
    };
  }
  return renderXml('volume', vol);
}

export function parseStorageVolumeXml(xml: string): ParsedStorageVolume {
  const vol = parseXmlRoot(xml, 'volume');
  const target = child(vol, 'target');
  const backing = child(vol, 'backingStore');
  const out: ParsedStorageVolume = { name: childText(vol, 'name') ?? '' };
  const set = <K extends keyof ParsedStorageVolume>(key: K, value: ParsedStorageVolume[K] | undefined) => {
    if (value !== undefined && value !== '') out[key] = value;
  };
  set('type', attr(vol, 'type'));
  set('key', childText(vol, 'key'));
  set('path', childText(target, 'path'));
  set('capacityBytes', scaledToBytes(child(vol, 'capacity'), 'bytes'));
  set('allocationBytes', scaledToBytes(child(vol, 'allocation'), 'bytes'));
  set('format', attr(child(target, 'format'), 'type'));
  set('backingStorePath', childText(backing, 'path'));
  set('backingStoreFormat', attr(child(backing, 'format'), 'type'));
  return out;
}
