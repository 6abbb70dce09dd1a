import type { NodeSummary, Resources } from '@koala/contracts';
import type { InstanceTypeSpec } from './instance-types.table.js';

export interface TypeCapacity {
  type: InstanceTypeSpec;
  /** Instances of this type that still fit, summed over the zone's up nodes. */
  free: number;
  /** Instances of this type that fit in the nodes' total resources. */
  max: number;
}

function fits(r: Resources, t: InstanceTypeSpec): number {
  return Math.max(0, Math.min(Math.floor(r.cores / t.vcpus), Math.floor(r.memoryMiB / t.memoryMiB), Math.floor(r.diskGiB / (t.rootDiskGiB + t.ephemeralGiB))));
}

/** Per instance type, how many instances fit per node (free and total resources), summed over up nodes. */
export function zoneCapacity(nodes: readonly NodeSummary[], types: readonly InstanceTypeSpec[]): TypeCapacity[] {
  const up = nodes.filter((n) => n.state === 'up');
  return types.map((type) => ({
    type,
    free: up.reduce((s, n) => s + fits(n.free, type), 0),
    max: up.reduce((s, n) => s + fits(n.total, type), 0),
  }));
}

/** Eucalyptus' `verbose` line: `0012 / 0024   1    256     5` (free / max, cpu, ram MiB, disk GiB). */
export function formatCapacity(c: TypeCapacity): string {
  const pad = (n: number, w: number) => String(n).padStart(w, ' ');
  const four = (n: number) => String(n).padStart(4, '0');
  return `${four(c.free)} / ${four(c.max)} ${pad(c.type.vcpus, 3)} ${pad(c.type.memoryMiB, 6)} ${pad(c.type.rootDiskGiB + c.type.ephemeralGiB, 5)}`;
}
