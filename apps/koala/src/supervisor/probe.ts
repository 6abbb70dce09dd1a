import { ClusterSummary, ComponentStatus, listNodes, type ListNodesResponse } from '@koala/contracts';
import type { KoalaConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { Subjects } from '@koala/contracts';
import { natsUrlFor } from './cloud-bus.js';

export interface CloudProbe {
  clcHealthy: boolean;
  clcHealth?: Record<string, unknown>;
  components: ComponentStatus[];
  /** The local zone's (KOALA_ZONE) nodes: what `health` judges. */
  nodes?: ListNodesResponse;
  /** Every CC that answered `clusters.describe`, and each of those zones' nodes (when its CC answered listNodes). */
  clusters: ClusterSummary[];
  zoneNodes: ListNodesResponse[];
  natsReachable: boolean;
  /** When the answers were gathered. */
  at: Date;
}

async function clcHealth(config: KoalaConfig): Promise<Record<string, unknown> | undefined> {
  const url = new URL('/healthz', `http://127.0.0.1:${config.apiPort}`);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as Record<string, unknown>;
    return res.ok ? body : { ...body, httpStatus: res.status };
  } catch {
    return undefined;
  }
}

/** Asks the running cloud how it is: the CLC's health endpoint plus every component over NATS. */
export async function probeCloud(config: KoalaConfig): Promise<CloudProbe> {
  const health = await clcHealth(config);
  let bus: NatsBus | undefined;
  try {
    bus = await NatsBus.connect({ url: natsUrlFor(config, 'cli'), caFile: config.natsCaFile, name: 'koala-cli', connectTimeoutMs: 3000, reconnectWaitMs: 500 });
  } catch {
    return { clcHealthy: health?.status === 'ok', clcHealth: health, components: [], clusters: [], zoneNodes: [], natsReachable: false, at: new Date() };
  }
  try {
    // scatter-gather: every component, every CC; then each zone's CC for its nodes, in parallel
    const [components, clusters] = await Promise.all([
      bus.gather(Subjects.status, ComponentStatus, {}, { timeoutMs: 1500, stallMs: 300 }),
      bus.gather(Subjects.clustersDescribe, ClusterSummary, {}, { timeoutMs: 1500, stallMs: 300 }),
    ]);
    const zones = [...new Set([config.zone, ...clusters.map((c) => c.zone), ...components.flatMap((c) => (c.zone ? [c.zone] : []))])];
    const answers = await Promise.all(zones.map((z) => bus!.request(listNodes(z), {}, { timeoutMs: 2000 }).catch(() => undefined)));
    const zoneNodes = answers.filter((a): a is ListNodesResponse => a !== undefined);
    const nodes = zoneNodes.find((a) => a.zone === config.zone);
    return { clcHealthy: health?.status === 'ok', clcHealth: health, components, nodes, clusters, zoneNodes, natsReachable: true, at: new Date() };
  } finally {
    await bus.close();
  }
}
