// VpcService (the default-VPC face) on fakes of the zones' controllers, the network store's
// address counts and the quotas: no NATS, no database. test/instances/vpc.e2e-spec.ts runs the
// same answers through the API.
import { loadConfig } from '@koala/config';
import type { ClusterSummary } from '@koala/contracts';
import { defaultLimits, type QuotaLimits } from '../quotas/quota-rules.js';
import { zoneIdOf } from '../regions/regions.service.js';
import { defaultSubnetId, defaultVpcId } from './addressing.js';
import type { NetworkStore } from './network.repository.js';
import { VpcService } from './vpc.service.js';

const ALICE = '111111111111';
const BOB = '222222222222';
// zone-a and zone-b have their own subnets; zone-c none (it answers, but hosts no instances).
const config = loadConfig({ KOALA_REGION: 'koala-1', KOALA_ZONE_SUBNETS: 'zone-a=10.0.0.0/24,zone-b=10.0.4.0/22', KOALA_ASSOCIATE_PUBLIC_IP: 'true' });

/** The cluster controllers that answer. */
class FakeClusters {
  zones: string[] = [];
  async describe(): Promise<ClusterSummary[]> {
    const none = { cores: 0, memoryMiB: 0, diskGiB: 0 };
    return this.zones.map((zone) => ({ zone, ccId: `cc-${zone}`, state: 'available', policy: 'GREEDY', nodes: 1, nodesUp: 1, total: none, free: none }));
  }
}

/** Private addresses taken per zone (interfaces and node addresses). */
class FakeCounts implements Pick<NetworkStore, 'usedPrivateIpCounts'> {
  used: Record<string, number> = {};
  asked: string[][] = [];
  async usedPrivateIpCounts(zones: readonly string[]) {
    this.asked.push([...zones]);
    return new Map(zones.filter((z) => z in this.used).map((z) => [z, this.used[z]!]));
  }
}

/** The account's limits: the defaults, Bob's overridden. */
class FakeQuotas {
  async limitsOf(accountId: string): Promise<QuotaLimits> {
    const d = defaultLimits(config);
    return accountId === BOB ? { ...d, instances: 3, addresses: 1 } : d;
  }
}

let clusters: FakeClusters;
let counts: FakeCounts;
let vpcs: VpcService;

beforeEach(() => {
  clusters = new FakeClusters();
  counts = new FakeCounts();
  vpcs = new VpcService(config, clusters, counts, new FakeQuotas());
});

describe('the default VPC', () => {
  it('is the region’s one VPC, covering every zone subnet, owned by whoever asks', () => {
    expect(vpcs.vpc(ALICE)).toEqual({ vpcId: defaultVpcId('koala-1'), cidrBlock: '10.0.0.0/21', ownerId: ALICE, region: 'koala-1' });
    expect(vpcs.vpc(BOB).vpcId).toBe(vpcs.vpc(ALICE).vpcId);
  });
});

describe('the default subnets', () => {
  it('one per answering zone that has a subnet, with its free address count and the public-address default', async () => {
    clusters.zones = ['zone-a', 'zone-b', 'zone-c'];
    counts.used = { 'zone-a': 10 };
    const subnets = await vpcs.subnets(ALICE);
    expect(subnets).toEqual([
      {
        subnetId: defaultSubnetId('koala-1', 'zone-a'),
        vpcId: defaultVpcId('koala-1'),
        zone: 'zone-a',
        zoneId: zoneIdOf('koala-1', 'zone-a'),
        cidrBlock: '10.0.0.0/24',
        ownerId: ALICE,
        // 256 less the network, the broadcast, the router and the 10 taken.
        availableIpAddressCount: 243,
        mapPublicIpOnLaunch: true,
      },
      expect.objectContaining({ zone: 'zone-b', cidrBlock: '10.0.4.0/22', availableIpAddressCount: 1021 }),
    ]);
    expect(counts.asked).toEqual([['zone-a', 'zone-b', 'zone-c']]);
  });

  it('a zone whose controller does not answer has no subnet; none answering, none', async () => {
    clusters.zones = ['zone-b'];
    expect((await vpcs.subnets(ALICE)).map((s) => s.zone)).toEqual(['zone-b']);
    clusters.zones = [];
    expect(await vpcs.subnets(ALICE)).toEqual([]);
  });

  it('MapPublicIpOnLaunch follows KOALA_ASSOCIATE_PUBLIC_IP', async () => {
    clusters.zones = ['zone-a'];
    const off = new VpcService({ ...config, associatePublicIp: false }, clusters, counts, new FakeQuotas());
    expect((await off.subnets(ALICE))[0]!.mapPublicIpOnLaunch).toBe(false);
  });
});

describe('DescribeAccountAttributes', () => {
  it('answers the account’s own quotas (defaults or its overrides) and the VPC platform', async () => {
    const d = defaultLimits(config);
    expect(await vpcs.accountAttributes(ALICE)).toEqual({
      'supported-platforms': ['VPC'],
      'default-vpc': [defaultVpcId('koala-1')],
      'max-instances': [String(d.instances)],
      'vpc-max-security-groups-per-interface': ['5'],
      'max-elastic-ips': [String(d.addresses)],
      'vpc-max-elastic-ips': [String(d.addresses)],
    });
    expect(await vpcs.accountAttributes(BOB)).toMatchObject({ 'max-instances': ['3'], 'max-elastic-ips': ['1'], 'vpc-max-elastic-ips': ['1'] });
  });
});
