// Secret XML: a libvirt secret holding iSCSI CHAP credentials. The value itself is set separately
// (virSecretSetValue) and never appears in any XML we write.
import { attr, checkLine, checkUuid, child, childText, parseXmlRoot, renderXml, type XmlNode } from './xml-common.js';

export interface SecretSpec {
  usageType: 'iscsi';
  /** Usage name other XML refers to (`<secret type='iscsi' usage=NAME/>`). Unique per host. */
  usageTarget: string;
  uuid?: string;
  description?: string;
  /** Default false: kept by libvirtd across restarts. */
  ephemeral?: boolean;
  /** Default true: the value cannot be read back through the API. */
  private?: boolean;
}

export interface ParsedSecret {
  uuid?: string;
  usageType?: string;
  usageTarget?: string;
  description?: string;
  ephemeral: boolean;
  private: boolean;
}

export function buildSecretXml(spec: SecretSpec): string {
  if (!spec || typeof spec !== 'object') throw new Error('secret spec must be an object');
  if (spec.usageType !== 'iscsi') throw new Error(`secret.usageType must be iscsi, got ${JSON.stringify(spec.usageType)}`);
  const node: XmlNode = {
    $: { ephemeral: spec.ephemeral ? 'yes' : 'no', private: spec.private === false ? 'no' : 'yes' },
  };
  if (spec.uuid !== undefined) node.uuid = checkUuid(spec.uuid, 'secret.uuid');
  if (spec.description !== undefined) node.description = checkLine(spec.description, 'secret.description', { allowEmpty: true });
  node.usage = { $: { type: 'iscsi' }, target: checkLine(spec.usageTarget, 'secret.usageTarget') };
  return renderXml('secret', node);
}

export function parseSecretXml(xml: string): ParsedSecret {
  const s = parseXmlRoot(xml, 'secret');
  const usage = child(s, 'usage');
  const out: ParsedSecret = { ephemeral: attr(s, 'ephemeral') === 'yes', private: attr(s, 'private') === 'yes' };
  const uuid = childText(s, 'uuid');
  if (uuid !== undefined) out.uuid = uuid;
  const type = attr(usage, 'type');
  if (type !== undefined) out.usageType = type;
  // iscsi uses <target>, volume uses <volume>, ceph/tls/vtpm use <name>.
  const target = childText(usage, 'target') ?? childText(usage, 'name') ?? childText(usage, 'volume');
  if (target !== undefined) out.usageTarget = target;
  const description = childText(s, 'description');
  if (description !== undefined) out.description = description;
  return out;
}
