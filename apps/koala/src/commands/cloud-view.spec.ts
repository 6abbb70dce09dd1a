import type { ClusterSummary, ComponentStatus, ListNodesResponse } from '@koala/contracts';
import { buildCloudView } from './cloud-view.js';

const at = new Date('2026-12-07T02:00:00.000Z');
const cap = (cores: number) => ({ cores, memoryMiB: cores * 1024, diskGiB: cores * 10 });
const comp = (component: ComponentStatus['component'], id: string, zone?: string, details?: Record<string, unknown>): ComponentStatus => ({
  component,
  id,
  version: '0.1.0',
  zone,
  host: `host-of-${id}`,
  pid: 1,
  startedAt: at.toISOString(),
  details,
});
const cluster = (zone: string, ccId: string, state: ClusterSummary['state'] = 'available'): ClusterSummary => ({
  zone,
  ccId,
  state,
  policy: 'GREEDY',
  nodes: 2,
  nodesUp: 1,
  total: cap(12),
  free: cap(5),
});
const node = (name: string, state: 'up' | 'down', cores: number) => ({
  node: name,
  zone: 'z',
  version: '0.1.0',
  hypervisorUri: 'test:///x',
  total: cap(cores),
  free: cap(cores - 1),
  domainCount: 1,
  state,
  lastSeen: '2026-12-07T01:59:59.000Z',
});

describe('buildCloudView', () => {
  it('lists every zone with its CC, SCs and NCs, one row each, in order', () => {
    const view = buildCloudView({
      at,
      components: [
        comp('cloud-controller', 'cloud-controller@clc'),
        comp('cluster-controller', 'cluster-controller@h1/b', 'b'),
        comp('cluster-controller', 'cluster-controller@h1/a', 'a'),
        comp('storage-controller', 'storage-controller@h2/a', 'a', { backend: 'dir', capacityBytes: 2 * 1024 ** 3, availableBytes: 1024 ** 3 }),
        comp('node-controller', 'node-controller@a-n2', 'a'),
        comp('node-controller', 'node-controller@a-n1', 'a'),
        comp('node-controller', 'node-controller@b-n1', 'b'),
        comp('node-controller', 'node-controller@a-stray', 'a'),
      ],
      clusters: [cluster('b', 'cluster-controller@h1/b'), cluster('a', 'cluster-controller@h1/a')],
      zoneNodes: [
        { zone: 'a', nodes: [node('a-n2', 'up', 8), node('a-n1', 'down', 4)] },
        { zone: 'b', nodes: [node('b-n1', 'up', 2)] },
      ] as ListNodesResponse[],
    });
    expect(view.clc.map((r) => [r.role, r.name, r.host])).toEqual([['CLC', 'cloud-controller@clc', 'host-of-cloud-controller@clc']]);
    expect(view.zones.map((z) => [z.zone, z.state, z.nodesUp, z.nodes])).toEqual([
      ['a', 'available', 1, 3],
      ['b', 'available', 1, 1],
    ]);
    const a = view.zones[0]!.rows;
    expect(a.map((r) => [r.role, r.name, r.state, r.host])).toEqual([
      ['CC', 'cluster-controller@h1/a', 'up', 'host-of-cluster-controller@h1/a'],
      ['SC', 'storage-controller@h2/a', 'up', 'host-of-storage-controller@h2/a'],
      ['NC', 'a-n1', 'down', 'host-of-node-controller@a-n1'],
      ['NC', 'a-n2', 'up', 'host-of-node-controller@a-n2'],
      // answered the status gather, but its CC has never heard a heartbeat from it
      ['NC', 'a-stray', 'down', 'host-of-node-controller@a-stray'],
    ]);
    expect(a[0]!.capacity).toEqual({ free: cap(5), total: cap(12) });
    expect(a[1]!.storage).toEqual({ backend: 'dir', capacityBytes: 2 * 1024 ** 3, availableBytes: 1024 ** 3 });
    expect(a[3]).toMatchObject({ capacity: { total: cap(8), free: cap(7) }, domains: 1, lastSeen: '2026-12-07T01:59:59.000Z', version: '0.1.0' });
    expect(a[0]!.lastSeen).toBe(at.toISOString());
  });

  it('shows a zone whose CC does not answer as unavailable, with its nodes unknown', () => {
    const view = buildCloudView({ at, components: [comp('storage-controller', 'storage-controller@h/c', 'c', { backend: 7 })], clusters: [], zoneNodes: [] });
    expect(view.zones).toHaveLength(1);
    expect(view.zones[0]).toMatchObject({ zone: 'c', state: 'unavailable', nodes: 0, nodesUp: 0 });
    expect(view.zones[0]!.rows.map((r) => [r.role, r.state])).toEqual([
      ['CC', 'down'],
      ['SC', 'up'],
    ]);
    // details are another process's words: only well-typed values are shown
    expect(view.zones[0]!.rows[1]!.storage).toEqual({ backend: undefined, capacityBytes: undefined, availableBytes: undefined });
  });

  it('is empty when nothing answers', () => {
    expect(buildCloudView({ at, components: [], clusters: [], zoneNodes: [] })).toEqual({ clc: [], zones: [] });
  });
});
