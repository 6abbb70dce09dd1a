// Host capabilities XML (`virConnectGetCapabilities`) parser.
import { attr, child, childPath, children, childText, parseXmlRoot, textOf, toInt } from './xml-common.js';

export interface GuestCapability {
  /** `hvm`, `xen`, `exe`, … */
  osType: string;
  arch: string;
  wordsize?: number;
  emulator?: string;
  /** Domain types offered for this arch, e.g. `['qemu', 'kvm']`. Offered is not usable: see chooseDomainType. */
  domainTypes: string[];
}

export interface ParsedCapabilities {
  hostUuid?: string;
  hostArch?: string;
  /** Logical CPUs: sum of NUMA cells' `<cpus num>`, else sockets×dies×cores×threads; absent if unknown. */
  hostCpuCount?: number;
  /** Host memory in bytes from the NUMA cells, when listed. */
  hostMemoryBytes?: number;
  guests: GuestCapability[];
}

export function parseCapabilitiesXml(xml: string): ParsedCapabilities {
  const caps = parseXmlRoot(xml, 'capabilities');
  const host = child(caps, 'host');
  const cpu = child(host, 'cpu');
  const out: ParsedCapabilities = { guests: [] };
  const uuid = childText(host, 'uuid');
  if (uuid) out.hostUuid = uuid;
  const arch = childText(cpu, 'arch');
  if (arch) out.hostArch = arch.trim();

  const cells = children(childPath(host, 'topology', 'cells'), 'cell');
  let cpus = 0;
  let memKiB = 0;
  let haveCpus = false;
  let haveMem = false;
  for (const cell of cells) {
    const cellCpus = child(cell, 'cpus');
    const num = toInt(attr(cellCpus, 'num')) ?? (cellCpus ? children(cellCpus, 'cpu').length : undefined);
    if (num !== undefined) {
      cpus += num;
      haveCpus = true;
    }
    const mem = toInt(textOf(child(cell, 'memory')));
    const unit = (attr(child(cell, 'memory'), 'unit') ?? 'KiB').toLowerCase();
    if (mem !== undefined && unit === 'kib') {
      memKiB += mem;
      haveMem = true;
    }
  }
  if (haveCpus && cpus > 0) {
    out.hostCpuCount = cpus;
  } else {
    const topo = child(cpu, 'topology');
    const parts = ['sockets', 'dies', 'cores', 'threads'].map((k) => toInt(attr(topo, k)));
    if (topo && parts[0] !== undefined && parts[2] !== undefined && parts[3] !== undefined) {
      out.hostCpuCount = parts[0] * (parts[1] ?? 1) * parts[2] * parts[3];
    }
  }
  if (haveMem) out.hostMemoryBytes = memKiB * 1024;

  for (const guest of children(caps, 'guest')) {
    const osType = (childText(guest, 'os_type') ?? '').trim();
    for (const archNode of children(guest, 'arch')) {
      const g: GuestCapability = {
        osType,
        arch: attr(archNode, 'name') ?? '',
        domainTypes: children(archNode, 'domain')
          .map((d) => attr(d, 'type'))
          .filter((t): t is string => !!t),
      };
      const wordsize = toInt(childText(archNode, 'wordsize'));
      if (wordsize !== undefined) g.wordsize = wordsize;
      const emulator = childText(archNode, 'emulator');
      if (emulator) g.emulator = emulator;
      out.guests.push(g);
    }
  }
  return out;
}
