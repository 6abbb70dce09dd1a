import type { InstanceResources, Resources } from '@koala/contracts';

export type PlacementPolicy = 'GREEDY' | 'ROUNDROBIN';

/** A node as the scheduler sees it: what is free right now (heartbeat minus open reservations). */
export interface NodeCapacity {
  node: string;
  free: Resources;
}

/** What one instance takes from a node: cores, memory, and root + ephemeral disk. */
export function demandOf(r: InstanceResources): Resources {
  return { cores: r.vcpus, memoryMiB: r.memoryMiB, diskGiB: r.rootDiskGiB + r.ephemeralGiB };
}

export function fits(free: Resources, need: Resources): boolean {
  return free.cores >= need.cores && free.memoryMiB >= need.memoryMiB && free.diskGiB >= need.diskGiB;
}

export function subtract(free: Resources, need: Resources): Resources {
  return { cores: free.cores - need.cores, memoryMiB: free.memoryMiB - need.memoryMiB, diskGiB: free.diskGiB - need.diskGiB };
}

/**
 * Chooses a node for each of `count` identical instances, as many as fit (callers enforce
 * MinCount). Pure: nodes are taken in the given order (callers sort them by name).
 *  - GREEDY fills the first node that fits before moving to the next (Eucalyptus GREEDY:
 *    packs instances, leaving whole nodes free).
 *  - ROUNDROBIN starts after the node chosen last time (`cursor`, a node name) and moves to
 *    the next node after each instance, skipping nodes that are full.
 * Returns the chosen node per instance (in order) and the cursor for the next call.
 */
export function place(nodes: NodeCapacity[], need: Resources, count: number, policy: PlacementPolicy, cursor?: string): { nodes: string[]; cursor?: string } {
  const free = new Map(nodes.map((n) => [n.node, { ...n.free }]));
  const order = nodes.map((n) => n.node);
  const chosen: string[] = [];
  if (!order.length) return { nodes: chosen, cursor };

  if (policy === 'GREEDY') {
    for (let i = 0; i < count; i++) {
      const node = order.find((n) => fits(free.get(n)!, need));
      if (!node) break;
      free.set(node, subtract(free.get(node)!, need));
      chosen.push(node);
    }
    return { nodes: chosen, cursor: chosen.at(-1) ?? cursor };
  }

  // ROUNDROBIN
  let start = cursor ? (order.indexOf(cursor) + 1) % order.length : 0;
  if (start < 0) start = 0;
  for (let i = 0; i < count; i++) {
    let picked: string | undefined;
    for (let k = 0; k < order.length; k++) {
      const candidate = order[(start + k) % order.length];
      if (fits(free.get(candidate)!, need)) {
        picked = candidate;
        start = (start + k + 1) % order.length;
        break;
      }
    }
    if (!picked) break;
    free.set(picked, subtract(free.get(picked)!, need));
    chosen.push(picked);
  }
  return { nodes: chosen, cursor: chosen.at(-1) ?? cursor };
}
