import { Inject, Injectable } from '@nestjs/common';
import { applyFilters, checkDryRun, Ec2Error, FILTER_SHAPES, type FilterSpec, PAGE_SHAPES, paginate, readFilters, type XmlValue } from '@koala/ec2-query';
import { describeInstanceTypesXml } from './instance-type-view.js';
import { InstanceTypeAvailabilityService } from './instance-type-availability.service.js';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import type { InstanceTypeSpec } from './instance-types.table.js';
import { InstanceTypesService } from './instance-types.service.js';

const FILTERS: FilterSpec<InstanceTypeSpec> = {
  'instance-type': (t) => t.name,
  'vcpu-info.default-vcpus': (t) => t.vcpus,
  'vcpu-info.default-cores': (t) => t.vcpus,
  'memory-info.size-in-mib': (t) => t.memoryMiB,
  'instance-storage-info.total-size-in-gb': (t) => t.rootDiskGiB + t.ephemeralGiB,
  'instance-storage-supported': () => true,
  'current-generation': () => false,
  'free-tier-eligible': () => false,
  'bare-metal': () => false,
  'processor-info.supported-architecture': () => 'x86_64',
  'supported-virtualization-type': () => ['hvm', 'paravirtual'],
  'supported-root-device-type': () => ['instance-store', 'ebs'],
};

@Injectable()
export class InstanceTypesHandlers {
  constructor(
    @Inject(InstanceTypesService) private readonly types: InstanceTypesService,
    @Inject(InstanceTypeAvailabilityService) private readonly availability: InstanceTypeAvailabilityService,
  ) {}

  @Ec2Action('DescribeInstanceTypes', { params: ['InstanceType.N', ...FILTER_SHAPES, ...PAGE_SHAPES, 'Availability', 'DryRun'] })
  async describeInstanceTypes(ctx: Ec2Context): Promise<Record<string, XmlValue>> {
    const p = ctx.params;
    const names = p.list('InstanceType');
    const filters = readFilters(p);
    const maxResults = p.int('MaxResults');
    const nextToken = p.str('NextToken');
    // Eucalyptus: per-zone free/max of each type (euca-describe-instance-types --show-capacity)
    const withAvailability = p.bool('Availability') ?? false;
    checkDryRun(p);
    const unknown = names.filter((n) => !this.types.lookup(n));
    if (unknown.length) {
      throw new Ec2Error('InvalidInstanceType', `The following supplied instance types do not exist: [${unknown.join(', ')}]`);
    }
    const wanted = names.length ? this.types.list().filter((t) => names.includes(t.name)) : this.types.list();
    const matching = applyFilters(wanted, filters, FILTERS);
    const { page, nextToken: next } = paginate(matching, { maxResults, nextToken, min: 5, max: 100, keyOf: (t) => t.name, scope: ctx.action });
    const availability = withAvailability ? await this.availability.byType() : undefined;
    return { ...describeInstanceTypesXml(page, ctx.version, availability), nextToken: next };
  }
}
