import { Inject, Injectable } from '@nestjs/common';
import { ClusterSummary, listNodes, Subjects, type ListNodesResponse } from '@koala/contracts';
import type { NatsBus } from '@koala/messaging';
import { BUS } from '@koala/runtime';

/** The CLC's view of its zones: asks the cluster controllers over NATS, keeps no state. */
@Injectable()
export class ClustersService {
  /** The scatter-gather under way, per timeout: callers that ask meanwhile share its answer. */
  private readonly inFlight = new Map<number, Promise<ClusterSummary[]>>();

  constructor(@Inject(BUS) private readonly bus: NatsBus) {}

  /**
   * Every CC that answers within the timeout, one summary per zone (sorted by zone). Concurrent
   * callers (many DescribeAvailabilityZones at once) share one question on the bus instead of
   * asking every CC once each; nothing is kept after the answer.
   */
  describe(timeoutMs = 500): Promise<ClusterSummary[]> {
    let p = this.inFlight.get(timeoutMs);
    if (!p) {
      p = this.gather(timeoutMs).finally(() => this.inFlight.delete(timeoutMs));
      this.inFlight.set(timeoutMs, p);
    }
    return p.then((zones) => zones.map((z) => ({ ...z })));
  }

  private async gather(timeoutMs: number): Promise<ClusterSummary[]> {
    const all = await this.bus.gather(Subjects.clustersDescribe, ClusterSummary, {}, { timeoutMs });
    const byZone = new Map<string, ClusterSummary>();
    for (const c of all) if (!byZone.has(c.zone)) byZone.set(c.zone, c);
    return [...byZone.values()].sort((a, b) => a.zone.localeCompare(b.zone));
  }

  async nodes(zone: string, timeoutMs = 2000): Promise<ListNodesResponse> {
    return this.bus.request(listNodes(zone), {}, { timeoutMs });
  }
}
