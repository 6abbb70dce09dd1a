import { defaultSubnetId, defaultVpcId, InstanceMetadataOptions, type NetworkInterfaceState, type ZoneNetworkState } from '@koala/contracts';
import type { ImdsInstance } from './imds-tree.js';
import type { LaunchRecord } from './launch-spec-store.js';

/**
 * The interface of this node whose private IP is `sourceIp`, or undefined. Only interfaces the
 * state places on `node` count: a caller is never answered about another node's instance.
 */
export function interfaceOfCaller(state: ZoneNetworkState | undefined, node: string, sourceIp: string): NetworkInterfaceState | undefined {
  return state?.interfaces.find((i) => i.node === node && i.privateIp === sourceIp);
}

/** Live options (network state) win over the launch's, then EC2's defaults. */
export function metadataOptionsOf(iface: NetworkInterfaceState, record: LaunchRecord | undefined): InstanceMetadataOptions {
  return InstanceMetadataOptions.parse(iface.metadataOptions ?? record?.metadataOptions ?? {});
}

// The ids DescribeInstances shows: the default VPC's and subnet's derived from the names (the
// same functions as the CLC's), the interface's from the state (an older CLC sends none: then
// one derived from the instance id, stable at least).
export const derivedIds = (region: string, zone: string, iface: Pick<NetworkInterfaceState, 'instanceId' | 'interfaceId'>) => ({
  vpcId: defaultVpcId(region),
  subnetId: defaultSubnetId(region, zone),
  interfaceId: iface.interfaceId ?? `eni-${iface.instanceId.slice(2)}`,
});

/** What the tree is rendered from: the network state's current facts, the rest from the launch. */
export function imdsInstanceOf(record: LaunchRecord, iface: NetworkInterfaceState, state: ZoneNetworkState, region: string): ImdsInstance {
  const names = new Map(state.groups.map((g) => [g.groupId, g.name]));
  for (const g of record.network?.groups ?? []) if (!names.has(g.groupId)) names.set(g.groupId, g.name);
  const localHostname = record.network?.privateDnsName || (state.dnsSuffix ? `ip-${iface.privateIp.replaceAll('.', '-')}.${state.dnsSuffix}` : record.hostname);
  const ids = derivedIds(region, state.zone, iface);
  return {
    instanceId: record.instanceId,
    imageId: record.imageId,
    ...(record.kernelId ? { kernelId: record.kernelId } : {}),
    ...(record.ramdiskId ? { ramdiskId: record.ramdiskId } : {}),
    instanceType: record.instanceType,
    accountId: record.accountId,
    reservationId: record.reservationId,
    launchIndex: record.launchIndex,
    availabilityZone: record.availabilityZone,
    region,
    virtualizationType: record.virtualizationType,
    localHostname,
    localIpv4: iface.privateIp,
    ...(iface.publicIp ? { publicIpv4: iface.publicIp } : {}),
    mac: iface.mac,
    ...ids,
    subnetCidr: state.subnet,
    vpcCidr: state.subnet,
    securityGroups: iface.groupIds.map((groupId) => ({ groupId, name: names.get(groupId) ?? groupId })),
    ephemeral: record.ephemeral,
    ...(record.keyName !== undefined ? { keyName: record.keyName } : {}),
    ...(record.publicKey !== undefined ? { publicKey: record.publicKey } : {}),
    ...(record.userData !== undefined ? { userData: Buffer.from(record.userData, 'base64') } : {}),
    pendingTime: record.pendingTime,
  };
}
