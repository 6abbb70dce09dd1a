import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { ClusterSummary } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { LOGGER } from '@koala/runtime';
import { ClustersService } from '../clusters/clusters.service.js';
import { InstanceTypesService } from '../instance-types/instance-types.service.js';
import { zoneCapacity, type TypeCapacity } from '../instance-types/zone-capacity.js';

export interface RegionView {
  name: string;
  endpoint: string;
}

export interface ZoneView {
  name: string;
  state: ClusterSummary['state'];
  region: string;
  zoneId: string;
}

/** What the zones' cluster controllers answer (ClustersService; specs: a fake). */
export type ZoneAnswers = Pick<ClustersService, 'describe' | 'nodes'>;

/** The one region this cloud answers as, and its zones (= the cluster controllers answering on NATS). */
@Injectable()
export class RegionsService {
  constructor(
    @Inject(KOALA_CONFIG) private readonly config: Pick<KoalaConfig, 'region' | 'publicEndpoint'>,
    @Inject(ClustersService) private readonly clusters: ZoneAnswers,
    @Inject(InstanceTypesService) private readonly types: Pick<InstanceTypesService, 'list'>,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  region(): RegionView {
    return { name: this.config.region, endpoint: new URL(this.config.publicEndpoint).host };
  }

  async zones(): Promise<ZoneView[]> {
    const region = this.config.region;
    return (await this.clusters.describe()).map((c) => ({ name: c.zone, state: c.state, region, zoneId: zoneIdOf(region, c.zone) }));
  }

  /** Free/max instances per type in a zone; empty capacity (zeros) when the CC does not answer. */
  async capacity(zone: string): Promise<TypeCapacity[]> {
    try {
      const { nodes } = await this.clusters.nodes(zone);
      return zoneCapacity(nodes, this.types.list());
    } catch (err) {
      this.logger.warn({ err, zone }, 'zone capacity unavailable');
      return zoneCapacity([], this.types.list());
    }
  }
}

/** Stable zone id (AWS style `use1-az1` has no meaning here): `<region>-az-` + 6 hex of the zone name's hash. */
export function zoneIdOf(region: string, zone: string): string {
  return `${region}-az-${createHash('sha256').update(`${region}/${zone}`).digest('hex').slice(0, 6)}`;
}
