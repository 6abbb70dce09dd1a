/** What goes on an instance's config drive (NoCloud `cidata`; see ConfigDriveBuilder). */
export interface ConfigDriveContent {
  instanceId: string;
  hostname: string;
  /** Decoded user-data bytes (may be binary, e.g. gzip), if any. */
  userData?: Buffer;
  /** OpenSSH public key lines. */
  publicKeys: string[];
  /** Name of the key pair of the first public key (OpenStack `public_keys` map); default `key-0`. */
  keyName?: string;
  availabilityZone: string;
  launchIndex: number;
  reservationId: string;
}

/**
 * Builds a config drive image (ISO 9660 with volume label `cidata`, files `meta-data` and
 * `user-data` as NoCloud expects; also `openstack/latest/meta_data.json` + `user_data` so
 * config-2 readers work) that the NC uploads into the instance's pool as a read-only disk.
 */
export interface ConfigDriveBuilder {
  build(content: ConfigDriveContent): Promise<Buffer>;
}
export const CONFIG_DRIVE_BUILDER = Symbol('CONFIG_DRIVE_BUILDER');
