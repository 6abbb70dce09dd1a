import { Inject, Injectable } from '@nestjs/common';
import { applyFilters, checkDryRun, Ec2Error, FILTER_SHAPES, type FilterSpec, readFilters, type XmlValue } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { RegionsService, type RegionView, type ZoneView } from './regions.service.js';
import { formatCapacity } from '../instance-types/zone-capacity.js';

const REGION_FILTERS: FilterSpec<RegionView> = {
  'region-name': (r) => r.name,
  endpoint: (r) => r.endpoint,
  'opt-in-status': () => 'opt-in-not-required',
};

const ZONE_FILTERS: FilterSpec<ZoneView> = {
  'zone-name': (z) => z.name,
  state: (z) => z.state,
  'region-name': (z) => z.region,
  'zone-id': (z) => z.zoneId,
  'zone-type': () => 'availability-zone',
  'group-name': (z) => z.region,
  'opt-in-status': () => 'opt-in-not-required',
};

/** Eucalyptus' special zone name: adds per-instance-type free/max capacity lines. */
const VERBOSE = 'verbose';

@Injectable()
export class RegionsHandlers {
  constructor(@Inject(RegionsService) private readonly regions: RegionsService) {}

  @Ec2Action('DescribeRegions', { params: ['RegionName.N', ...FILTER_SHAPES, 'AllRegions', 'DryRun'] })
  async describeRegions(ctx: Ec2Context): Promise<Record<string, XmlValue>> {
    const p = ctx.params;
    const names = p.list('RegionName');
    const filters = readFilters(p);
    p.bool('AllRegions');
    checkDryRun(p);
    const region = this.regions.region();
    const unknown = names.filter((n) => n !== region.name);
    if (unknown.length) throw Ec2Error.invalidParameterValue('RegionName', unknown.join(', '), 'Invalid region name.');
    const matching = applyFilters([region], filters, REGION_FILTERS);
    return { regionInfo: matching.map((r) => ({ regionName: r.name, regionEndpoint: r.endpoint, optInStatus: 'opt-in-not-required' })) };
  }

  @Ec2Action('DescribeAvailabilityZones', { params: ['ZoneName.N', 'ZoneId.N', ...FILTER_SHAPES, 'AllAvailabilityZones', 'DryRun'] })
  async describeAvailabilityZones(ctx: Ec2Context): Promise<Record<string, XmlValue>> {
    const p = ctx.params;
    const requested = p.list('ZoneName');
    const ids = p.list('ZoneId');
    const filters = readFilters(p);
    p.bool('AllAvailabilityZones');
    checkDryRun(p);
    const verbose = requested.includes(VERBOSE);
    const names = requested.filter((n) => n !== VERBOSE);
    const all = await this.regions.zones();
    const unknown = [...names.filter((n) => !all.some((z) => z.name === n)), ...ids.filter((i) => !all.some((z) => z.zoneId === i))];
    if (unknown.length) throw new Ec2Error('InvalidParameterValue', `Invalid availability zone: [${unknown.join(', ')}]`);
    const chosen = all.filter((z) => (names.length === 0 || names.includes(z.name)) && (ids.length === 0 || ids.includes(z.zoneId)));
    const zones = applyFilters(chosen, filters, ZONE_FILTERS);
    const items: XmlValue[] = [];
    for (const z of zones) {
      items.push({
        zoneName: z.name,
        zoneState: z.state,
        regionName: z.region,
        zoneId: z.zoneId,
        zoneType: 'availability-zone',
        groupName: z.region,
        networkBorderGroup: z.region,
        optInStatus: 'opt-in-not-required',
        messageSet: [],
      });
      if (!verbose) continue;
      items.push({ zoneName: '|- vm types', zoneState: 'free / max   cpu    ram  disk', regionName: z.region, messageSet: [] });
      for (const c of await this.regions.capacity(z.name)) {
        items.push({ zoneName: `|- ${c.type.name}`, zoneState: formatCapacity(c), regionName: z.region, messageSet: [] });
      }
    }
    return { availabilityZoneInfo: items };
  }
}
