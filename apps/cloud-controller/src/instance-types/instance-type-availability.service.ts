import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from '@koala/logging';
import { LOGGER } from '@koala/runtime';
import { ClustersService } from '../clusters/clusters.service.js';
import { zoneCapacity } from './zone-capacity.js';
import type { ZoneAvailability } from './instance-type-view.js';
import { InstanceTypesService } from './instance-types.service.js';

/** Eucalyptus' `Availability=true`: free/max instances of each type in each zone, from the CCs' node lists. */
@Injectable()
export class InstanceTypeAvailabilityService {
  constructor(
    @Inject(ClustersService) private readonly clusters: Pick<ClustersService, 'describe' | 'nodes'>,
    @Inject(InstanceTypesService) private readonly types: Pick<InstanceTypesService, 'list'>,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Type name → one entry per zone (zeros for a zone whose CC does not answer). */
  async byType(): Promise<Map<string, ZoneAvailability[]>> {
    const out = new Map<string, ZoneAvailability[]>(this.types.list().map((t) => [t.name, []]));
    for (const { zone } of await this.clusters.describe()) {
      let nodes: Parameters<typeof zoneCapacity>[0] = [];
      try {
        nodes = (await this.clusters.nodes(zone)).nodes;
      } catch (err) {
        this.logger.warn({ err, zone }, 'zone capacity unavailable');
      }
      for (const c of zoneCapacity(nodes, this.types.list())) out.get(c.type.name)!.push({ zoneName: zone, available: c.free, max: c.max });
    }
    return out;
  }
}
