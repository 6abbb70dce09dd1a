import type { ListDomainsResponse, NodeDomains, NodeHeartbeat, NodeSummary, Resources } from '@koala/contracts';

interface Entry {
  heartbeat: NodeHeartbeat;
  lastSeen: Date;
}

const zero = (): Resources => ({ cores: 0, memoryMiB: 0, diskGiB: 0 });
const add = (a: Resources, b: Resources): Resources => ({ cores: a.cores + b.cores, memoryMiB: a.memoryMiB + b.memoryMiB, diskGiB: a.diskGiB + b.diskGiB });

/**
 * The CC's live view of its nodes, built only from heartbeats. A node silent for longer than
 * `timeoutMs` is `down` (kept, so an operator sees it, and revived by its next heartbeat).
 * Pure and clock-free: callers pass `now`, so tests need no timers.
 */
export class NodeRegistry {
  private readonly nodes = new Map<string, Entry>();
  /** Node names in code-point order; rebuilt only when a node first appears. */
  private order: string[] = [];

  constructor(
    readonly zone: string,
    private readonly timeoutMs: number,
  ) {}

  /** Records a heartbeat; heartbeats for another zone are ignored (returns false). */
  record(heartbeat: NodeHeartbeat, now: Date): boolean {
    if (heartbeat.zone !== this.zone) return false;
    const known = this.nodes.has(heartbeat.node);
    this.nodes.set(heartbeat.node, { heartbeat, lastSeen: now });
    if (!known) this.order = [...this.nodes.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return true;
  }

  /** Whether `node` is known and heard from within the timeout (O(1): called per heartbeat). */
  isUp(node: string, now: Date): boolean {
    const e = this.nodes.get(node);
    return !!e && now.getTime() - e.lastSeen.getTime() <= this.timeoutMs;
  }

  private stateOf(lastSeen: Date, now: Date) {
    return now.getTime() - lastSeen.getTime() <= this.timeoutMs ? ('up' as const) : ('down' as const);
  }

  private sorted(): [string, Entry][] {
    return this.order.map((name) => [name, this.nodes.get(name)!]);
  }

  /** The nodes that are up with their heartbeat's free capacity, by name: what placement reads (no summaries built). */
  upFree(now: Date): Array<{ node: string; free: Resources }> {
    const out: Array<{ node: string; free: Resources }> = [];
    for (const name of this.order) {
      const e = this.nodes.get(name)!;
      if (this.stateOf(e.lastSeen, now) === 'up') out.push({ node: name, free: e.heartbeat.free });
    }
    return out;
  }

  /** Every node with its capacity, by name; domains are counted, not listed (see `domainsPage`). */
  list(now: Date): NodeSummary[] {
    return this.sorted().map(([, { heartbeat, lastSeen }]) => {
      const { domains, ...rest } = heartbeat;
      return { ...rest, domainCount: domains.length, state: this.stateOf(lastSeen, now), lastSeen: lastSeen.toISOString() };
    });
  }

  /**
   * Nodes named after `after` (code-point order) with their domains: whole nodes, as many as fit
   * in `maxDomains` but always at least one, and `next` when more nodes follow.
   */
  domainsPage(now: Date, after: string | undefined, maxDomains: number): Omit<ListDomainsResponse, 'zone'> {
    const rest = this.sorted().filter(([name]) => after === undefined || name > after);
    const nodes: NodeDomains[] = [];
    let count = 0;
    for (const [name, { heartbeat, lastSeen }] of rest) {
      if (nodes.length && count + heartbeat.domains.length > maxDomains) break;
      nodes.push({ node: name, state: this.stateOf(lastSeen, now), lastSeen: lastSeen.toISOString(), domains: heartbeat.domains });
      count += heartbeat.domains.length;
    }
    return nodes.length < rest.length ? { nodes, next: nodes.at(-1)!.node } : { nodes };
  }

  /** Capacity totals over the nodes that are up. */
  capacity(now: Date): { nodes: number; nodesUp: number; total: Resources; free: Resources } {
    const all = this.list(now);
    const up = all.filter((n) => n.state === 'up');
    return {
      nodes: all.length,
      nodesUp: up.length,
      total: up.reduce((acc, n) => add(acc, n.total), zero()),
      free: up.reduce((acc, n) => add(acc, n.free), zero()),
    };
  }
}
