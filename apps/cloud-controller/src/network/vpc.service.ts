import { Inject, Injectable } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { ClustersService } from '../clusters/clusters.service.js';
import { zoneIdOf } from '../regions/regions.service.js';
import { defaultSubnet, defaultVpc, MAX_GROUPS_PER_INTERFACE, type SubnetView, type VpcView } from './default-vpc.js';
import { QuotaService } from '../quotas/quota.service.js';
import { NETWORK_STORE, type NetworkStore } from './network.repository.js';

/** The default-VPC face: the region's one VPC, each answering zone's default subnet, account attributes. */
@Injectable()
export class VpcService {
  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(ClustersService) private readonly clusters: Pick<ClustersService, 'describe'>,
    @Inject(NETWORK_STORE) private readonly repo: Pick<NetworkStore, 'usedPrivateIpCounts'>,
    @Inject(QuotaService) private readonly quotas: Pick<QuotaService, 'limitsOf'>,
  ) {}

  vpc(accountId: string): VpcView {
    return defaultVpc(this.config.region, this.config.zoneSubnets, accountId);
  }

  /** One default subnet per answering zone that KOALA_ZONE_SUBNETS covers, with its free address count. */
  async subnets(accountId: string): Promise<SubnetView[]> {
    const region = this.config.region;
    const zones = (await this.clusters.describe()).map((c) => ({ name: c.zone, zoneId: zoneIdOf(region, c.zone) }));
    const used = await this.repo.usedPrivateIpCounts(zones.map((z) => z.name));
    return zones.flatMap((z) => defaultSubnet(region, this.config.zoneSubnets, z, accountId, used.get(z.name) ?? 0, this.config.associatePublicIp) ?? []);
  }

  /** DescribeAccountAttributes' values, by attribute name: the account's quotas (defaults or its overrides). */
  async accountAttributes(accountId: string): Promise<Record<string, string[]>> {
    const limits = await this.quotas.limitsOf(accountId);
    return {
      'supported-platforms': ['VPC'],
      'default-vpc': [defaultVpc(this.config.region, this.config.zoneSubnets, '').vpcId],
      'max-instances': [String(limits.instances)],
      'vpc-max-security-groups-per-interface': [String(MAX_GROUPS_PER_INTERFACE)],
      'max-elastic-ips': [String(limits.addresses)],
      'vpc-max-elastic-ips': [String(limits.addresses)],
    };
  }
}
