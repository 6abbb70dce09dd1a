import type { ClusterSummary, ComponentStatus, ListNodesResponse, Resources } from '@koala/contracts';

/** One row of `koala status`: the CLC, or a zone's CC, SC or NC. */
export interface StatusRow {
  role: 'CLC' | 'CC' | 'SC' | 'NC';
  zone?: string;
  name: string;
  state: 'up' | 'down';
  host?: string;
  version?: string;
  /** CC: the zone's free/total; NC: the node's (heartbeat); SC: bytes as `storage`. */
  capacity?: { free: Resources; total: Resources };
  storage?: { backend?: string; availableBytes?: number; capacityBytes?: number };
  domains?: number;
  /** NC: its last heartbeat as the CC saw it; CLC/CC/SC: when it answered this probe. */
  lastSeen?: string;
  policy?: string;
}

export interface ZoneView {
  zone: string;
  /** From its CC's summary; `unavailable` when no CC answered. */
  state: ClusterSummary['state'];
  nodes: number;
  nodesUp: number;
  rows: StatusRow[];
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * Every zone with its CC, SCs and NCs, one row each (CC first, then SCs, then NCs by name),
 * from the probe's answers. A node its CC lists is shown even if its NC did not answer the
 * status gather (host and version then come from the heartbeat or stay empty); an NC that
 * answered but its CC does not list is shown `down` (no heartbeat reached a CC).
 */
export function buildCloudView(input: { components: readonly ComponentStatus[]; clusters: readonly ClusterSummary[]; zoneNodes: readonly ListNodesResponse[]; at: Date }): {
  clc: StatusRow[];
  zones: ZoneView[];
} {
  const at = input.at.toISOString();
  const of = (kind: ComponentStatus['component'], zone?: string) => input.components.filter((c) => c.component === kind && (zone === undefined || c.zone === zone));
  const clc: StatusRow[] = of('cloud-controller')
    .map((c) => ({ role: 'CLC' as const, name: c.id, state: 'up' as const, host: c.host, version: c.version, lastSeen: at }))
    .sort(byName);
  const zoneNames = new Set<string>();
  for (const c of input.clusters) zoneNames.add(c.zone);
  for (const z of input.zoneNodes) zoneNames.add(z.zone);
  for (const c of input.components) if (c.zone && c.component !== 'cloud-controller') zoneNames.add(c.zone);

  const zones: ZoneView[] = [...zoneNames].sort().map((zone) => {
    const summaries = input.clusters.filter((c) => c.zone === zone);
    const ccAnswers = of('cluster-controller', zone);
    const rows: StatusRow[] = [];
    for (const c of ccAnswers) {
      const s = summaries.find((x) => x.ccId === c.id);
      rows.push({ role: 'CC', zone, name: c.id, state: 'up', host: c.host, version: c.version, capacity: s && { free: s.free, total: s.total }, policy: s?.policy, lastSeen: at });
    }
    // a CC that answered clusters.describe but not status (or the reverse) still gets its row
    for (const s of summaries)
      if (!ccAnswers.some((c) => c.id === s.ccId)) rows.push({ role: 'CC', zone, name: s.ccId, state: 'up', capacity: { free: s.free, total: s.total }, policy: s.policy, lastSeen: at });
    if (!rows.length) rows.push({ role: 'CC', zone, name: '(no cluster controller answered)', state: 'down' });
    rows.sort(byName);
    const scs = of('storage-controller', zone).map((c): StatusRow => ({
      role: 'SC',
      zone,
      name: c.id,
      state: 'up',
      host: c.host,
      version: c.version,
      storage: { backend: typeof c.details?.backend === 'string' ? c.details.backend : undefined, availableBytes: num(c.details?.availableBytes), capacityBytes: num(c.details?.capacityBytes) },
      lastSeen: at,
    }));
    rows.push(...scs.sort(byName));
    const ncAnswers = new Map(of('node-controller', zone).map((c) => [c.id.replace(/^node-controller@/, ''), c]));
    const listed = input.zoneNodes.find((z) => z.zone === zone)?.nodes ?? [];
    const ncs: StatusRow[] = listed.map((n) => {
      const a = ncAnswers.get(n.node);
      return { role: 'NC', zone, name: n.node, state: n.state, host: a?.host, version: n.version, capacity: { free: n.free, total: n.total }, domains: n.domainCount, lastSeen: n.lastSeen };
    });
    for (const [node, a] of ncAnswers) if (!listed.some((n) => n.node === node)) ncs.push({ role: 'NC', zone, name: node, state: 'down', host: a.host, version: a.version });
    rows.push(...ncs.sort(byName));
    const summary = summaries[0];
    return {
      zone,
      state: summary?.state ?? 'unavailable',
      nodes: ncs.length,
      nodesUp: ncs.filter((n) => n.state === 'up').length,
      rows,
    };
  });
  return { clc, zones };
}
