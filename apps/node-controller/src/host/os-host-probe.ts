import { statfs } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import type { DomainReport, Resources } from '@koala/contracts';
import type { HostProbe } from './host-probe.js';

/**
 * Reads the host's real cores, memory and disk from the OS (fallback when libvirt does not
 * answer, and for hosts without a hypervisor such as a storage-only machine).
 */
export class OsHostProbe implements HostProbe {
  constructor(
    private readonly uri: string,
    private readonly diskPath: string,
  ) {}

  async describe() {
    return { uri: this.uri, hypervisor: 'os' };
  }

  async total(): Promise<Resources> {
    const fs = await statfs(this.diskPath);
    return {
      cores: cpus().length,
      memoryMiB: Math.floor(totalmem() / 1024 / 1024),
      diskGiB: Math.floor((fs.blocks * fs.bsize) / 1024 ** 3),
    };
  }

  async domains(): Promise<DomainReport[]> {
    return [];
  }
}
