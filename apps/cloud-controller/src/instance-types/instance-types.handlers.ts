import { Inject, Injectable } from '@nestjs/common';
import { applyFilters, checkDryRun, Ec2Error, paginate, readFilters, type FilterSpec, type XmlValue } from '@koala/ec2-query';
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

function toXml(t: InstanceTypeSpec): Record<string, XmlValue> {
  const disks: XmlValue[] = [{ sizeInGB: t.rootDiskGiB, count: 1, type: 'ssd' }];
  if (t.ephemeralGiB > 0) disks.push({ sizeInGB: t.ephemeralGiB, count: 1, type: 'ssd' });
  return {
    instanceType: t.name,
    currentGeneration: false,
    freeTierEligible: false,
    supportedUsageClasses: ['on-demand'],
    supportedRootDeviceTypes: ['instance-store', 'ebs'],
    supportedVirtualizationTypes: ['hvm', 'paravirtual'],
    bareMetal: false,
    hypervisor: 'kvm',
    processorInfo: { supportedArchitectures: ['x86_64'] },
    vCpuInfo: { defaultVCpus: t.vcpus, defaultCores: t.vcpus, defaultThreadsPerCore: 1 },
    memoryInfo: { sizeInMiB: t.memoryMiB },
    instanceStorageSupported: true,
    // In Koala both the root overlay and the ephemeral disk are local to the node (instance storage).
    instanceStorageInfo: { totalSizeInGB: t.rootDiskGiB + t.ephemeralGiB, disks, nvmeSupport: 'unsupported', encryptionSupport: 'unsupported' },
    ebsInfo: { ebsOptimizedSupport: 'unsupported', encryptionSupport: 'unsupported', nvmeSupport: 'unsupported' },
    networkInfo: { networkPerformance: 'Low', maximumNetworkInterfaces: 1, maximumNetworkCards: 1, defaultNetworkCardIndex: 0, ipv4AddressesPerInterface: 1, ipv6AddressesPerInterface: 0, ipv6Supported: false, enaSupport: 'unsupported', efaSupported: false },
    placementGroupInfo: { supportedStrategies: [] },
    hibernationSupported: false,
    burstablePerformanceSupported: false,
    dedicatedHostsSupported: false,
    autoRecoverySupported: false,
    supportedBootModes: ['legacy-bios'],
  };
}

@Injectable()
export class InstanceTypesHandlers {
  constructor(@Inject(InstanceTypesService) private readonly types: InstanceTypesService) {}

  @Ec2Action('DescribeInstanceTypes')
  async describeInstanceTypes(ctx: Ec2Context): Promise<Record<string, XmlValue>> {
    const p = ctx.params;
    const names = p.list('InstanceType');
    const filters = readFilters(p);
    const maxResults = p.int('MaxResults');
    checkDryRun(p);
    const unknown = names.filter((n) => !this.types.lookup(n));
    if (unknown.length) {
      throw new Ec2Error('InvalidInstanceType', `The following supplied instance types do not exist: [${unknown.join(', ')}]`);
    }
    const wanted = names.length ? this.types.list().filter((t) => names.includes(t.name)) : this.types.list();
    const matching = applyFilters(wanted, filters, FILTERS);
    const { page, nextToken } = paginate(matching, { maxResults, nextToken: p.str('NextToken'), min: 5, max: 100, keyOf: (t) => t.name, scope: ctx.action });
    return { instanceTypeSet: page.map(toXml), nextToken };
  }
}
