import type { ClusterSummary, ListNodesResponse, NodeSummary } from '@koala/contracts';
import type { ClustersService } from '../clusters.service.js';

/** For specs: what the zones' CCs answer (`describe`), and each zone's nodes (a zone missing here does not answer `nodes`). */
export class FakeZones implements Pick<ClustersService, 'describe' | 'nodes'> {
  clusters: ClusterSummary[] = [];
  readonly nodesOf = new Map<string, NodeSummary[]>();
  async describe(): Promise<ClusterSummary[]> {
    return this.clusters.map((c) => ({ ...c }));
  }
  async nodes(zone: string): Promise<ListNodesResponse> {
    const nodes = this.nodesOf.get(zone);
    if (!nodes) throw new Error(`no answer from ${zone}`);
    return { zone, nodes };
  }
}

/** A node as a CC lists it. */
export function fakeNode(name: string, state: NodeSummary['state'], total: NodeSummary['total'], free: NodeSummary['free']): NodeSummary {
  return { node: name, zone: 'z', version: '1', hypervisorUri: 'test:///default', total, free, domainCount: 0, state, lastSeen: '2026-12-01T00:00:00Z', sentAt: '2026-12-01T00:00:00Z' };
}

/** A logger that keeps its warnings. */
export class FakeLogger {
  readonly warnings: Array<[Record<string, unknown>, string]> = [];
  debug() {}
  info() {}
  error() {}
  warn(fields: Record<string, unknown>, msg: string) {
    this.warnings.push([fields, msg]);
  }
}
