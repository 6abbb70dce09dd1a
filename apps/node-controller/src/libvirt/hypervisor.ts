import type { InstanceResources } from '@koala/contracts';
import type { CachedImage } from '../images/image-cache.js';

/** What Koala keeps in a domain's `<metadata>` so a restarted NC can re-adopt it. */
export interface InstanceMeta {
  instanceId: string;
  accountId: string;
  reservationId: string;
  instanceType: string;
  /** The node that launched it (simulated nodes share one test:///default driver). */
  node: string;
  resources: InstanceResources;
  /** sha256 digests of the cached images the instance uses (re-marked in use on adoption). */
  images: { root: string; kernel?: string; ramdisk?: string };
}

/** A libvirt domain state, simplified. */
export type DomainRunState = 'running' | 'paused' | 'shutdown' | 'shutoff' | 'crashed' | 'other';

export interface HostDomain {
  name: string;
  /** Present only for domains Koala created. */
  meta?: InstanceMeta;
  state: DomainRunState;
}

export interface VolumeRef {
  pool: string;
  name: string;
  format: 'raw' | 'qcow2';
}

export interface InstanceDomainSpec {
  meta: InstanceMeta;
  memoryMiB: number;
  vcpus: number;
  root: VolumeRef;
  ephemeral?: VolumeRef;
  configDrive?: VolumeRef;
  boot: { kind: 'disk' } | { kind: 'kernel'; kernel: string; initrd?: string; cmdline: string };
  consoleLogPath: string;
  /** The guest's interface on the zone network (absent: no interface at all). */
  network?: InstanceNic;
}

/**
 * A guest NIC on the node's libvirt network. Its tap has a name of Koala's (not libvirt's
 * `vnetN`): the security-group and anti-spoofing rules name it before the domain exists.
 */
export interface InstanceNic {
  network: string;
  mac: string;
  ip: string;
  tap: string;
}

/** A lifecycle change of a domain (libvirt event names: started, stopped, resumed, crashed, …). */
export interface HostDomainEvent {
  name: string;
  event: string;
  detail: number;
}

/**
 * The hypervisor as the instance manager needs it: instance disks in the instances pool and
 * domains by name (= instance id). Implemented over libvirt (LibvirtHypervisor); unit tests use
 * a fake. Operations on things that are already gone succeed (idempotent clean-up).
 */
export interface Hypervisor {
  /** Ensures the instances pool exists, is started and autostarted; picks the domain type. */
  prepare(): Promise<void>;
  listDomains(): Promise<HostDomain[]>;
  getDomain(name: string): Promise<HostDomain | undefined>;
  /** qcow2 overlay `<id>-root.qcow2` on the cached base (nothing copied). */
  createRootDisk(instanceId: string, base: CachedImage, capacityBytes: number): Promise<VolumeRef>;
  /** Sparse raw `<id>-ephemeral.raw`. */
  createEphemeralDisk(instanceId: string, capacityBytes: number): Promise<VolumeRef>;
  /** `<id>-config.iso` with the given bytes (uploaded through a libvirt stream). */
  createConfigDrive(instanceId: string, iso: Buffer): Promise<VolumeRef>;
  /** Deletes every volume of the instance that exists. */
  deleteVolumes(instanceId: string): Promise<void>;
  defineDomain(spec: InstanceDomainSpec): Promise<void>;
  startDomain(name: string): Promise<void>;
  /** ACPI power button. */
  shutdownDomain(name: string): Promise<void>;
  /** ACPI reboot. */
  rebootDomain(name: string): Promise<void>;
  /** Hard power-off; no-op when not running or missing. */
  destroyDomain(name: string): Promise<void>;
  /** Undefines (with managed save, NVRAM and snapshot metadata); no-op when missing. */
  undefineDomain(name: string): Promise<void>;
  /** Lifecycle events of all domains, across reconnections. */
  onDomainEvent(listener: (ev: HostDomainEvent) => void): void;
  /** Called after every (re)connection to the hypervisor, and now if connected. */
  onConnected(listener: () => unknown): void;
}
export const HYPERVISOR = Symbol('HYPERVISOR');

/** Names of an instance's volumes in the instances pool. */
export const volumeNames = (instanceId: string) => ({
  root: `${instanceId}-root.qcow2`,
  ephemeral: `${instanceId}-ephemeral.raw`,
  configDrive: `${instanceId}-config.iso`,
});
