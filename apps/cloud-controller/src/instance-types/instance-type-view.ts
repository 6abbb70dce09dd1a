import { XmlNamespaced, type XmlValue } from '@koala/ec2-query';
import type { InstanceTypeSpec } from './instance-types.table.js';

/** Eucalyptus' own message namespace when the caller's `Version` is not a Eucalyptus version. */
export const EUCALYPTUS_DEFAULT_NS = 'http://msgs.eucalyptus.com/4.4.5';

/** Free and total instances of a type in one zone (Eucalyptus `availability` item). */
export interface ZoneAvailability {
  zoneName: string;
  available: number;
  max: number;
}

/**
 * `http://msgs.eucalyptus.com/<version>`: Eucalyptus clients that send a Eucalyptus version
 * (libcloud sends `3.3.0`) look for that very namespace; others get Eucalyptus' last one.
 */
export function eucalyptusNamespace(version: string): string {
  return /^\d{1,3}(\.\d{1,3}){1,3}$/.test(version) ? `http://msgs.eucalyptus.com/${version}` : EUCALYPTUS_DEFAULT_NS;
}

/**
 * AWS's `instanceTypeSet` exists from API version 2016-11-15 on; older versions (boto 2 sends
 * 2014-10-01, euca2ools and libcloud older ones) are Eucalyptus clients. boto 2 takes every
 * `<item>` of the answer for an instance type, so AWS's nested lists must not reach it.
 */
export function wantsAwsShape(version: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= '2016-11-15';
}

/** Eucalyptus' VmTypeDetails: name, cpu, memory (MiB), disk (GiB), and per-zone availability when asked. */
export function eucalyptusItem(t: InstanceTypeSpec, availability?: readonly ZoneAvailability[]): Record<string, XmlValue> {
  return {
    name: t.name,
    cpu: t.vcpus,
    memory: t.memoryMiB,
    disk: t.rootDiskGiB + t.ephemeralGiB,
    availability: availability?.map((a) => ({ zoneName: a.zoneName, available: a.available, max: a.max })),
  };
}

/** AWS's InstanceTypeInfo, with Eucalyptus' name/cpu/memory/disk beside it in their own namespace. */
export function awsItem(t: InstanceTypeSpec, eucaNs: string): Record<string, XmlValue> {
  const disks: XmlValue[] = [{ sizeInGB: t.rootDiskGiB, count: 1, type: 'ssd' }];
  if (t.ephemeralGiB > 0) disks.push({ sizeInGB: t.ephemeralGiB, count: 1, type: 'ssd' });
  const euca = eucalyptusItem(t);
  return {
    name: new XmlNamespaced(eucaNs, euca.name),
    cpu: new XmlNamespaced(eucaNs, euca.cpu),
    memory: new XmlNamespaced(eucaNs, euca.memory),
    disk: new XmlNamespaced(eucaNs, euca.disk),
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
    networkInfo: {
      networkPerformance: 'Low',
      maximumNetworkInterfaces: 1,
      maximumNetworkCards: 1,
      defaultNetworkCardIndex: 0,
      ipv4AddressesPerInterface: 1,
      ipv6AddressesPerInterface: 0,
      ipv6Supported: false,
      enaSupport: 'unsupported',
      efaSupported: false,
    },
    placementGroupInfo: { supportedStrategies: [] },
    hibernationSupported: false,
    burstablePerformanceSupported: false,
    dedicatedHostsSupported: false,
    autoRecoverySupported: false,
    supportedBootModes: ['legacy-bios'],
  };
}

/**
 * The whole answer: AWS's `instanceTypeSet` (for AWS API versions) and Eucalyptus'
 * `instanceTypeDetails` in the Eucalyptus namespace, same types, same order.
 */
export function describeInstanceTypesXml(types: readonly InstanceTypeSpec[], version: string, availability?: ReadonlyMap<string, readonly ZoneAvailability[]>): Record<string, XmlValue> {
  const ns = eucalyptusNamespace(version);
  return {
    instanceTypeSet: wantsAwsShape(version) ? types.map((t) => awsItem(t, ns)) : undefined,
    instanceTypeDetails: new XmlNamespaced(
      ns,
      types.map((t) => eucalyptusItem(t, availability?.get(t.name) ?? (availability ? [] : undefined))),
    ),
  };
}
