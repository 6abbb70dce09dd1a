import { jest } from '@jest/globals';
import type { ClusterSummary } from '@koala/contracts';
import type { NatsBus } from '@koala/messaging';
import { ClustersService } from './clusters.service.js';

const summary = (zone: string): ClusterSummary => ({
  zone,
  ccId: `cc-${zone}`,
  state: 'available',
  policy: 'greedy',
  nodes: 1,
  nodesUp: 1,
  total: { cores: 2, memoryMiB: 1024, diskGiB: 10 },
  free: { cores: 2, memoryMiB: 1024, diskGiB: 10 },
});

/** A bus whose gathers resolve when the test says so, counting the questions asked. */
function fakeBus() {
  const pending: Array<(v: ClusterSummary[]) => void> = [];
  const bus = { gather: jest.fn(() => new Promise<ClusterSummary[]>((r) => pending.push(r))) };
  return { bus: bus as unknown as NatsBus, gathers: bus.gather, answer: (v: ClusterSummary[]) => pending.shift()!(v) };
}

describe('ClustersService.describe', () => {
  it('asks the bus once for concurrent callers, and again for a caller after the answer', async () => {
    const { bus, gathers, answer } = fakeBus();
    const clusters = new ClustersService(bus);
    const calls = Array.from({ length: 50 }, () => clusters.describe());
    expect(gathers).toHaveBeenCalledTimes(1);
    answer([summary('b'), summary('a'), summary('a')]);
    for (const r of await Promise.all(calls)) expect(r.map((z) => z.zone)).toEqual(['a', 'b']);
    const later = clusters.describe();
    expect(gathers).toHaveBeenCalledTimes(2); // nothing kept after the answer
    answer([]);
    expect(await later).toEqual([]);
  });

  it('gives each caller its own copies', async () => {
    const { bus, answer } = fakeBus();
    const clusters = new ClustersService(bus);
    const [a, b] = [clusters.describe(), clusters.describe()];
    answer([summary('a')]);
    const [ra, rb] = await Promise.all([a, b]);
    ra[0]!.state = 'unavailable';
    expect(rb[0]!.state).toBe('available');
  });

  it('a failed question fails its callers and is not reused', async () => {
    const bus = {
      gather: jest
        .fn<() => Promise<ClusterSummary[]>>()
        .mockRejectedValueOnce(new Error('bus down'))
        .mockResolvedValueOnce([summary('a')]),
    } as unknown as NatsBus;
    const clusters = new ClustersService(bus);
    await expect(clusters.describe()).rejects.toThrow('bus down');
    expect((await clusters.describe()).map((z) => z.zone)).toEqual(['a']);
  });
});
