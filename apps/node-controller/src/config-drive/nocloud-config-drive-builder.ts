import type { ConfigDriveBuilder, ConfigDriveContent } from './config-drive.js';
import { GenisoimageIsoMaker, type IsoFile, type IsoMaker } from './iso-maker.js';

/** ISO 9660 volume label cloud-init's NoCloud (and tiny-linux) look for. */
export const CIDATA_LABEL = 'cidata';

const YAML_RESERVED = /^(y|n|yes|no|on|off|true|false|null|~)$/i;

/** A YAML scalar: plain when unambiguous (ids, host names), otherwise double-quoted (JSON escapes are valid YAML). */
export function yamlScalar(value: string): string {
  return /^[A-Za-z][A-Za-z0-9._-]*$/.test(value) && !YAML_RESERVED.test(value) ? value : JSON.stringify(value);
}

/** Names of the public keys for OpenStack's `public_keys` map: keyName (or key-0), then key-1, ... */
function keyNames(content: ConfigDriveContent): string[] {
  return content.publicKeys.map((_, i) => (i === 0 && content.keyName ? content.keyName : `key-${i}`));
}

/** NoCloud `meta-data` (YAML). */
export function renderMetaData(content: ConfigDriveContent): string {
  const lines = [
    `instance-id: ${yamlScalar(content.instanceId)}`,
    `local-hostname: ${yamlScalar(content.hostname)}`,
    `availability-zone: ${yamlScalar(content.availabilityZone)}`,
    `reservation-id: ${yamlScalar(content.reservationId)}`,
    `launch-index: ${content.launchIndex}`,
  ];
  const keys = content.publicKeys.map((k) => k.trim()).filter(Boolean);
  if (keys.length) lines.push('public-keys:', ...keys.map((k) => `  - ${JSON.stringify(k)}`));
  return `${lines.join('\n')}\n`;
}

/** OpenStack config-2 `openstack/latest/meta_data.json`. */
export function renderOpenStackMetaData(content: ConfigDriveContent): string {
  const names = keyNames(content);
  const publicKeys: Record<string, string> = {};
  content.publicKeys.forEach((k, i) => (publicKeys[names[i]] = k.trim()));
  const doc = {
    uuid: content.instanceId,
    name: content.hostname,
    hostname: content.hostname,
    availability_zone: content.availabilityZone,
    launch_index: content.launchIndex,
    reservation_id: content.reservationId,
    public_keys: publicKeys,
    keys: content.publicKeys.map((k, i) => ({ name: names[i], type: 'ssh', data: k.trim() })),
    meta: {},
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Every file of the config drive (pure: unit-tested without an ISO). */
export function configDriveFiles(content: ConfigDriveContent): IsoFile[] {
  const userData = content.userData ?? Buffer.alloc(0);
  const files: IsoFile[] = [
    { path: 'meta-data', data: renderMetaData(content) },
    // NoCloud needs the file even when empty.
    { path: 'user-data', data: userData },
    { path: 'openstack/latest/meta_data.json', data: renderOpenStackMetaData(content) },
  ];
  if (userData.length) files.push({ path: 'openstack/latest/user_data', data: userData });
  return files;
}

/**
 * ConfigDriveBuilder: an ISO 9660 image labelled `cidata` holding NoCloud `meta-data` +
 * `user-data` and the OpenStack config-2 files, so both cloud-init images and tiny-linux read
 * it. Construct with an IsoMaker (default: `new GenisoimageIsoMaker()`, which spawns
 * Debian's genisoimage).
 */
export class NoCloudConfigDriveBuilder implements ConfigDriveBuilder {
  constructor(private readonly iso: IsoMaker = new GenisoimageIsoMaker()) {}

  build(content: ConfigDriveContent): Promise<Buffer> {
    return this.iso.make(CIDATA_LABEL, configDriveFiles(content));
  }
}
