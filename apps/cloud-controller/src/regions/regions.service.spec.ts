// RegionsService on a fake of the zones' answers (ClustersService) and a small type table: the
// region from the configuration, the zones from the CCs that answer, per-type capacity from a
// zone's nodes, zeros (and a warning) for a zone whose CC does not answer. The real CCs on NATS
// are test/api/regions.e2e-spec.ts.
import type { ClusterSummary } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import type { InstanceTypeSpec } from '../instance-types/instance-types.table.js';
import { RegionsService, zoneIdOf } from './regions.service.js';
import { FakeLogger, FakeZones, fakeNode } from '../clusters/testing/fake-zones.js';

const TYPES: readonly InstanceTypeSpec[] = [
  { name: 'c1.medium', vcpus: 2, memoryMiB: 512, rootDiskGiB: 4, ephemeralGiB: 1 },
  { name: 'm1.small', vcpus: 1, memoryMiB: 256, rootDiskGiB: 2, ephemeralGiB: 0 },
];

const res = (cores: number, memoryMiB: number, diskGiB: number) => ({ cores, memoryMiB, diskGiB });

function cluster(zone: string, state: ClusterSummary['state'] = 'available'): ClusterSummary {
  return { zone, ccId: `cc-${zone}`, state, policy: 'greedy', nodes: 1, nodesUp: 1, total: res(4, 4096, 100), free: res(4, 4096, 100) };
}

const node = fakeNode;

let zones: FakeZones;
let logger: FakeLogger;
let regions: RegionsService;

beforeEach(() => {
  zones = new FakeZones();
  logger = new FakeLogger();
  regions = new RegionsService({ region: 'koala-lab', publicEndpoint: 'https://cloud.example.test:8773/' }, zones, { list: () => TYPES }, logger as unknown as Logger);
});

describe('RegionsService', () => {
  it('the one region: its configured name, the public endpoint’s host and port', () => {
    expect(regions.region()).toEqual({ name: 'koala-lab', endpoint: 'cloud.example.test:8773' });
  });

  it('one zone per CC that answers, with its state, the region and a stable zone id', async () => {
    expect(await regions.zones()).toEqual([]);
    zones.clusters = [cluster('za'), cluster('zb', 'impaired')];
    const z = await regions.zones();
    expect(z).toEqual([
      { name: 'za', state: 'available', region: 'koala-lab', zoneId: zoneIdOf('koala-lab', 'za') },
      { name: 'zb', state: 'impaired', region: 'koala-lab', zoneId: zoneIdOf('koala-lab', 'zb') },
    ]);
    expect(z[0]!.zoneId).toMatch(/^koala-lab-az-[0-9a-f]{6}$/);
    expect(new Set(z.map((x) => x.zoneId)).size).toBe(2);
  });

  it('zone ids are stable across releases (clients keep them): pinned values', () => {
    expect(zoneIdOf('koala-lab', 'za')).toBe('koala-lab-az-f85b38');
    expect(zoneIdOf('other', 'za')).toBe('other-az-cfeecb'); // the region is hashed too, not only prefixed
  });

  it('capacity: per type, instances that fit in the free and total resources of the zone’s up nodes', async () => {
    zones.nodesOf.set('za', [node('n1', 'up', res(4, 2048, 40), res(2, 1024, 20)), node('n2', 'up', res(2, 512, 10), res(0, 512, 10)), node('n3', 'down', res(64, 65536, 1000), res(64, 65536, 1000))]);
    const c = await regions.capacity('za');
    expect(c.map((t) => [t.type.name, t.free, t.max])).toEqual([
      ['c1.medium', 1, 3], // n1: free min(2/2, 1024/512, 20/5) = 1; total min(2, 4, 8) = 2 + n2 total 1
      ['m1.small', 2, 6], // n1: free min(2, 4, 10) = 2; total min(4, 8, 20) = 4 + n2 total 2 (n2 has no free core)
    ]);
    expect(logger.warnings).toEqual([]);
  });

  it('a zone whose CC does not answer has every type at zero, and says so in the log', async () => {
    const c = await regions.capacity('gone');
    expect(c.map((t) => [t.type.name, t.free, t.max])).toEqual([
      ['c1.medium', 0, 0],
      ['m1.small', 0, 0],
    ]);
    expect(logger.warnings).toEqual([[{ err: expect.any(Error), zone: 'gone' }, 'zone capacity unavailable']]);
  });
});
