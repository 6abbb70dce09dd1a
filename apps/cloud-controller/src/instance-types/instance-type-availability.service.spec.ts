// InstanceTypeAvailabilityService (DescribeInstanceTypes' Availability=true) on a fake of the
// zones' answers and a small type table: one entry per type and zone, in the zones' order, from
// the zone's up nodes; zeros and a warning for a zone whose CC does not answer its node list.
import type { ClusterSummary } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import { InstanceTypeAvailabilityService } from './instance-type-availability.service.js';
import type { InstanceTypeSpec } from './instance-types.table.js';
import { FakeLogger, FakeZones, fakeNode } from '../clusters/testing/fake-zones.js';

const TYPES: readonly InstanceTypeSpec[] = [
  { name: 'c1.medium', vcpus: 2, memoryMiB: 512, rootDiskGiB: 4, ephemeralGiB: 1 },
  { name: 'm1.small', vcpus: 1, memoryMiB: 256, rootDiskGiB: 2, ephemeralGiB: 0 },
];

const res = (cores: number, memoryMiB: number, diskGiB: number) => ({ cores, memoryMiB, diskGiB });

function cluster(zone: string): ClusterSummary {
  return { zone, ccId: `cc-${zone}`, state: 'available', policy: 'greedy', nodes: 1, nodesUp: 1, total: res(0, 0, 0), free: res(0, 0, 0) };
}

const node = fakeNode;

let zones: FakeZones;
let logger: FakeLogger;
let availability: InstanceTypeAvailabilityService;

beforeEach(() => {
  zones = new FakeZones();
  logger = new FakeLogger();
  availability = new InstanceTypeAvailabilityService(zones, { list: () => TYPES }, logger as unknown as Logger);
});

describe('InstanceTypeAvailabilityService.byType', () => {
  it('no zone answers: every type, with no zone', async () => {
    expect([...(await availability.byType())]).toEqual([
      ['c1.medium', []],
      ['m1.small', []],
    ]);
  });

  it('per type, one entry per zone: instances that still fit (free) and that fit at all (max) on its up nodes', async () => {
    zones.clusters = [cluster('za'), cluster('zb')];
    zones.nodesOf.set('za', [node('n1', 'up', res(4, 2048, 40), res(2, 1024, 20)), node('n2', 'down', res(64, 65536, 1000), res(64, 65536, 1000))]);
    zones.nodesOf.set('zb', [node('n3', 'up', res(2, 512, 10), res(1, 256, 2))]);
    const byType = await availability.byType();
    expect(byType.get('c1.medium')).toEqual([
      { zoneName: 'za', available: 1, max: 2 },
      { zoneName: 'zb', available: 0, max: 1 },
    ]);
    expect(byType.get('m1.small')).toEqual([
      { zoneName: 'za', available: 2, max: 4 },
      { zoneName: 'zb', available: 1, max: 2 },
    ]);
    expect(logger.warnings).toEqual([]);
  });

  it('a zone whose CC does not answer its node list counts zeros, says so, and the other zones still count', async () => {
    zones.clusters = [cluster('gone'), cluster('empty'), cluster('zb')];
    zones.nodesOf.set('empty', []); // answers, with no node yet: listed with zeros, no warning
    zones.nodesOf.set('zb', [node('n3', 'up', res(2, 512, 10), res(2, 512, 10))]);
    const byType = await availability.byType();
    expect(byType.get('m1.small')).toEqual([
      { zoneName: 'gone', available: 0, max: 0 },
      { zoneName: 'empty', available: 0, max: 0 },
      { zoneName: 'zb', available: 2, max: 2 },
    ]);
    expect(byType.get('c1.medium')).toEqual([
      { zoneName: 'gone', available: 0, max: 0 },
      { zoneName: 'empty', available: 0, max: 0 },
      { zoneName: 'zb', available: 1, max: 1 },
    ]);
    expect(logger.warnings).toEqual([[{ err: expect.any(Error), zone: 'gone' }, 'zone capacity unavailable']]);
  });
});
