/** Public libvirt enum values (libvirt-domain.h, libvirt-storage.h, libvirt-secret.h, libvirt-host.h). */

/** virConnectFlags */
export const VIR_CONNECT_RO = 1;

/** virDomainState */
export const DomainState = {
  NOSTATE: 0,
  RUNNING: 1,
  BLOCKED: 2,
  PAUSED: 3,
  SHUTDOWN: 4,
  SHUTOFF: 5,
  CRASHED: 6,
  PMSUSPENDED: 7,
} as const;

/** virConnectListAllDomainsFlags */
export const VIR_CONNECT_LIST_DOMAINS_ACTIVE = 1;
export const VIR_CONNECT_LIST_DOMAINS_INACTIVE = 2;
export const VIR_CONNECT_LIST_DOMAINS_PERSISTENT = 4;
export const VIR_CONNECT_LIST_DOMAINS_TRANSIENT = 8;

/** virDomainModificationImpact / virDomainDeviceModifyFlags */
export const VIR_DOMAIN_AFFECT_CURRENT = 0;
export const VIR_DOMAIN_AFFECT_LIVE = 1;
export const VIR_DOMAIN_AFFECT_CONFIG = 2;

/** virDomainUndefineFlagsValues */
export const VIR_DOMAIN_UNDEFINE_MANAGED_SAVE = 1;
export const VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA = 2;
export const VIR_DOMAIN_UNDEFINE_NVRAM = 4;
export const VIR_DOMAIN_UNDEFINE_KEEP_NVRAM = 8;
export const VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA = 16;

/** virDomainDestroyFlagsValues */
export const VIR_DOMAIN_DESTROY_DEFAULT = 0;
export const VIR_DOMAIN_DESTROY_GRACEFUL = 1;

/** virDomainXMLFlags */
export const VIR_DOMAIN_XML_SECURE = 1;
export const VIR_DOMAIN_XML_INACTIVE = 2;

/** virDomainEventID */
export const VIR_DOMAIN_EVENT_ID_LIFECYCLE = 0;

/** virDomainEventType */
export const DomainEventType = {
  DEFINED: 0,
  UNDEFINED: 1,
  STARTED: 2,
  SUSPENDED: 3,
  RESUMED: 4,
  STOPPED: 5,
  SHUTDOWN: 6,
  PMSUSPENDED: 7,
  CRASHED: 8,
} as const;

export type DomainEventName = 'defined' | 'undefined' | 'started' | 'suspended' | 'resumed' | 'stopped' | 'shutdown' | 'pmsuspended' | 'crashed' | 'unknown';

const EVENT_NAMES: DomainEventName[] = ['defined', 'undefined', 'started', 'suspended', 'resumed', 'stopped', 'shutdown', 'pmsuspended', 'crashed'];

export function domainEventName(event: number): DomainEventName {
  return EVENT_NAMES[event] ?? 'unknown';
}

/** virStoragePoolState */
export const StoragePoolState = {
  INACTIVE: 0,
  BUILDING: 1,
  RUNNING: 2,
  DEGRADED: 3,
  INACCESSIBLE: 4,
} as const;

/** virStoragePoolBuildFlags */
export const VIR_STORAGE_POOL_BUILD_NEW = 0;
export const VIR_STORAGE_POOL_BUILD_REPAIR = 1;
export const VIR_STORAGE_POOL_BUILD_RESIZE = 2;
export const VIR_STORAGE_POOL_BUILD_NO_OVERWRITE = 4;
export const VIR_STORAGE_POOL_BUILD_OVERWRITE = 8;

/** virConnectListAllStoragePoolsFlags (subset) */
export const VIR_CONNECT_LIST_STORAGE_POOLS_INACTIVE = 1;
export const VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE = 2;

/** virStorageVolType */
export const StorageVolType = {
  FILE: 0,
  BLOCK: 1,
  DIR: 2,
  NETWORK: 3,
  NETDIR: 4,
  PLOOP: 5,
} as const;

/** virStorageVolCreateFlags */
export const VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA = 1;
export const VIR_STORAGE_VOL_CREATE_REFLINK = 2;

/** virStorageVolDownloadFlags: the daemon sends holes (VIR_NET_STREAM_HOLE) instead of zeros. */
export const VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM = 1;

/** virStorageVolUploadFlags: the client may send holes instead of zeros. */
export const VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM = 1;

/** virStorageVolResizeFlags */
export const VIR_STORAGE_VOL_RESIZE_ALLOCATE = 1;
export const VIR_STORAGE_VOL_RESIZE_DELTA = 2;
export const VIR_STORAGE_VOL_RESIZE_SHRINK = 4;

/** virSecretUsageType */
export const SecretUsageType = {
  NONE: 0,
  VOLUME: 1,
  CEPH: 2,
  ISCSI: 3,
  TLS: 4,
  VTPM: 5,
} as const;

/** virConnectListAllNetworksFlags */
export const VIR_CONNECT_LIST_NETWORKS_INACTIVE = 1;
export const VIR_CONNECT_LIST_NETWORKS_ACTIVE = 2;
export const VIR_CONNECT_LIST_NETWORKS_PERSISTENT = 4;
export const VIR_CONNECT_LIST_NETWORKS_TRANSIENT = 8;
export const VIR_CONNECT_LIST_NETWORKS_AUTOSTART = 16;
export const VIR_CONNECT_LIST_NETWORKS_NO_AUTOSTART = 32;

/** virNetworkXMLFlags */
export const VIR_NETWORK_XML_INACTIVE = 1;

/** virNetworkUpdateCommand */
export const VIR_NETWORK_UPDATE_COMMAND_NONE = 0;
export const VIR_NETWORK_UPDATE_COMMAND_MODIFY = 1;
export const VIR_NETWORK_UPDATE_COMMAND_DELETE = 2;
export const VIR_NETWORK_UPDATE_COMMAND_ADD_LAST = 3;
export const VIR_NETWORK_UPDATE_COMMAND_ADD_FIRST = 4;

/** virNetworkUpdateSection */
export const VIR_NETWORK_SECTION_NONE = 0;
export const VIR_NETWORK_SECTION_BRIDGE = 1;
export const VIR_NETWORK_SECTION_DOMAIN = 2;
export const VIR_NETWORK_SECTION_IP = 3;
export const VIR_NETWORK_SECTION_IP_DHCP_HOST = 4;
export const VIR_NETWORK_SECTION_IP_DHCP_RANGE = 5;
export const VIR_NETWORK_SECTION_FORWARD = 6;
export const VIR_NETWORK_SECTION_FORWARD_INTERFACE = 7;
export const VIR_NETWORK_SECTION_FORWARD_PF = 8;
export const VIR_NETWORK_SECTION_PORTGROUP = 9;
export const VIR_NETWORK_SECTION_DNS_HOST = 10;
export const VIR_NETWORK_SECTION_DNS_TXT = 11;
export const VIR_NETWORK_SECTION_DNS_SRV = 12;

/** virNetworkUpdateFlags */
export const VIR_NETWORK_UPDATE_AFFECT_CURRENT = 0;
export const VIR_NETWORK_UPDATE_AFFECT_LIVE = 1;
export const VIR_NETWORK_UPDATE_AFFECT_CONFIG = 2;

/** virNetworkEventID */
export const VIR_NETWORK_EVENT_ID_LIFECYCLE = 0;

/** virNetworkEventLifecycleType */
export const NetworkEventType = {
  DEFINED: 0,
  UNDEFINED: 1,
  STARTED: 2,
  STOPPED: 3,
} as const;

export type NetworkEventName = 'defined' | 'undefined' | 'started' | 'stopped' | 'unknown';

const NETWORK_EVENT_NAMES: NetworkEventName[] = ['defined', 'undefined', 'started', 'stopped'];

export function networkEventName(event: number): NetworkEventName {
  return NETWORK_EVENT_NAMES[event] ?? 'unknown';
}
