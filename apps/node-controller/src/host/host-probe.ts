import type { DomainReport, Resources } from '@koala/contracts';

/** What a node controller can tell about its host. Backed by libvirt on real nodes. */
export interface HostProbe {
  /** Hypervisor URI and a human-readable description (e.g. "QEMU 7.2.0 (qemu)"). */
  describe(): Promise<{ uri: string; hypervisor: string }>;
  /** Total host resources offered to instances. */
  total(): Promise<Resources>;
  /** Domains defined on the host. */
  domains(): Promise<DomainReport[]>;
}
export const HOST_PROBE = Symbol('HOST_PROBE');
