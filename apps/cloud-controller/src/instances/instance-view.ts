/** How an instance reads in EC2 responses (the item shape botocore and the SDKs expect). */
import type { Tag, XmlValue, FilterSpec } from '@koala/ec2-query';
import { tagSet } from '../tags/tags.service.js';
import type { InstanceEntity, ReservationEntity } from './instance.entity.js';
import type { InstanceNetworkView } from '../network/network.service.js';

export interface GroupRef {
  groupId: string;
  groupName: string;
}

/** An EBS volume attached (attaching, detaching) to an instance, as `blockDeviceMapping` shows it. */
export interface BlockDeviceView {
  deviceName: string;
  volumeId: string;
  status: string;
  attachTime: Date | null;
  deleteOnTermination: boolean;
}

/** An instance with what its item shows besides its own columns. */
export interface InstanceView {
  instance: InstanceEntity;
  tags: Tag[];
  groups: GroupRef[];
  vcpus?: number;
  blockDevices?: BlockDeviceView[];
  /** Its interface; none once terminated. */
  network?: InstanceNetworkView;
}

export const blockDeviceItem = (b: BlockDeviceView): Record<string, XmlValue> => ({
  deviceName: b.deviceName,
  ebs: { volumeId: b.volumeId, status: b.status, attachTime: b.attachTime, deleteOnTermination: b.deleteOnTermination },
});

export const INSTANCE_FILTERS: FilterSpec<InstanceView> = {
  'instance-id': (v) => v.instance.id,
  'instance-state-name': (v) => v.instance.state,
  'instance-state-code': (v) => v.instance.stateCode,
  'image-id': (v) => v.instance.imageId,
  'instance-type': (v) => v.instance.instanceType,
  'availability-zone': (v) => v.instance.zone,
  'placement.availability-zone': (v) => v.instance.zone,
  'key-name': (v) => v.instance.keyName,
  'reservation-id': (v) => v.instance.reservationId,
  'launch-index': (v) => v.instance.launchIndex,
  'ami-launch-index': (v) => v.instance.launchIndex,
  'owner-id': (v) => v.instance.accountId,
  'group-id': (v) => v.groups.map((g) => g.groupId),
  'group-name': (v) => v.groups.map((g) => g.groupName),
  'instance.group-id': (v) => v.groups.map((g) => g.groupId),
  'instance.group-name': (v) => v.groups.map((g) => g.groupName),
  'private-dns-name': (v) => v.instance.privateDnsName,
  'kernel-id': (v) => v.instance.kernelId,
  'ramdisk-id': (v) => v.instance.ramdiskId,
  architecture: (v) => v.instance.architecture,
  'root-device-type': (v) => v.instance.rootDeviceType,
  'root-device-name': (v) => v.instance.rootDeviceName,
  'virtualization-type': (v) => v.instance.virtualizationType,
  'client-token': (v) => v.instance.clientToken,
  'launch-time': (v) => v.instance.launchTime,
  'state-reason-code': (v) => v.instance.stateReasonCode,
  'state-reason-message': (v) => v.instance.stateReasonMessage,
  reason: (v) => v.instance.stateTransitionReason,
  hypervisor: () => 'kvm',
  'monitoring-state': (v) => v.instance.monitoringState,
  tenancy: () => 'default',
  'placement.tenancy': () => 'default',
  'instance-lifecycle': () => null,
  platform: (v) => v.instance.platform,
  'node-name': (v) => v.instance.node,
  'block-device-mapping.device-name': (v) => (v.blockDevices ?? []).map((b) => b.deviceName),
  'block-device-mapping.volume-id': (v) => (v.blockDevices ?? []).map((b) => b.volumeId),
  'block-device-mapping.status': (v) => (v.blockDevices ?? []).map((b) => b.status),
  'block-device-mapping.delete-on-termination': (v) => (v.blockDevices ?? []).map((b) => b.deleteOnTermination),
  'block-device-mapping.attach-time': (v) => (v.blockDevices ?? []).map((b) => b.attachTime),
  // Guest networking (in memory only; see INSTANCE_FILTER_COLUMNS).
  'private-ip-address': (v) => v.network?.privateIp,
  'ip-address': (v) => v.network?.publicIp,
  'dns-name': (v) => v.network?.publicDnsName,
  'subnet-id': (v) => v.network?.subnetId,
  'vpc-id': (v) => v.network?.vpcId,
  'source-dest-check': (v) => (v.network ? true : undefined),
  'association.public-ip': (v) => v.network?.publicIp,
  'association.ip-owner-id': (v) => v.network?.ipOwnerId,
  'association.allocation-id': (v) => v.network?.allocationId,
  'association.association-id': (v) => v.network?.associationId,
  'network-interface.network-interface-id': (v) => v.network?.interfaceId,
  'network-interface.mac-address': (v) => v.network?.mac,
  'network-interface.private-dns-name': (v) => v.network?.privateDnsName,
  'network-interface.subnet-id': (v) => v.network?.subnetId,
  'network-interface.vpc-id': (v) => v.network?.vpcId,
  'network-interface.status': (v) => (v.network ? 'in-use' : undefined),
  'network-interface.source-dest-check': (v) => (v.network ? true : undefined),
  'network-interface.group-id': (v) => (v.network ? v.groups.map((g) => g.groupId) : []),
  'network-interface.group-name': (v) => (v.network ? v.groups.map((g) => g.groupName) : []),
  'network-interface.attachment.attachment-id': (v) => v.network?.attachmentId,
  'network-interface.attachment.device-index': (v) => (v.network ? 0 : undefined),
  'network-interface.attachment.status': (v) => (v.network ? 'attached' : undefined),
  'network-interface.attachment.delete-on-termination': (v) => (v.network ? true : undefined),
  'network-interface.addresses.private-ip-address': (v) => v.network?.privateIp,
  'network-interface.addresses.primary': (v) => (v.network ? true : undefined),
  'network-interface.addresses.association.public-ip': (v) => v.network?.publicIp,
  'network-interface.addresses.association.ip-owner-id': (v) => v.network?.ipOwnerId,
  'network-interface.association.public-ip': (v) => v.network?.publicIp,
  'network-interface.association.ip-owner-id': (v) => v.network?.ipOwnerId,
  'network-interface.association.allocation-id': (v) => v.network?.allocationId,
  'network-interface.association.association-id': (v) => v.network?.associationId,
  'metadata-options.http-tokens': (v) => v.instance.metadataHttpTokens,
  'metadata-options.http-put-response-hop-limit': (v) => v.instance.metadataHopLimit,
  'metadata-options.http-endpoint': (v) => v.instance.metadataHttpEndpoint,
};

/**
 * The INSTANCE_FILTERS that SQL can decide (instances table aliased `i`): each expression is the
 * text of exactly the value the filter reads above (integers as String() writes them, NULL where
 * it reads null). DescribeInstances pushes these (and the tag filters) into its query as a
 * pre-selection and still applies every filter in memory.
 */
export const INSTANCE_FILTER_COLUMNS: Readonly<Record<string, string>> = {
  'instance-id': 'i.id',
  'instance-state-name': 'i.state',
  'instance-state-code': 'CAST(i.state_code AS text)',
  'image-id': 'i.image_id',
  'instance-type': 'i.instance_type',
  'availability-zone': 'i.zone',
  'placement.availability-zone': 'i.zone',
  'key-name': 'i.key_name',
  'reservation-id': 'i.reservation_id',
  'launch-index': 'CAST(i.launch_index AS text)',
  'ami-launch-index': 'CAST(i.launch_index AS text)',
  'owner-id': 'i.account_id',
  'private-dns-name': 'i.private_dns_name',
  'kernel-id': 'i.kernel_id',
  'ramdisk-id': 'i.ramdisk_id',
  architecture: 'i.architecture',
  'root-device-type': 'i.root_device_type',
  'root-device-name': 'i.root_device_name',
  'virtualization-type': 'i.virtualization_type',
  'client-token': 'i.client_token',
  'state-reason-code': 'i.state_reason_code',
  'state-reason-message': 'i.state_reason_message',
  reason: 'i.state_transition_reason',
  'monitoring-state': 'i.monitoring_state',
  platform: 'i.platform',
  'node-name': 'i.node',
};

export const stateItem = (i: Pick<InstanceEntity, 'state' | 'stateCode'>) => ({ code: i.stateCode, name: i.state });

/** The `networkInterfaceSet` item of an instance's interface (EC2's default-VPC shape). */
function interfaceItem(v: InstanceView, n: InstanceNetworkView): Record<string, XmlValue> {
  const association = n.publicIp ? { publicIp: n.publicIp, publicDnsName: n.publicDnsName, ipOwnerId: n.ipOwnerId } : undefined;
  return {
    networkInterfaceId: n.interfaceId,
    subnetId: n.subnetId,
    vpcId: n.vpcId,
    description: '',
    ownerId: v.instance.accountId,
    status: 'in-use',
    macAddress: n.mac,
    privateIpAddress: n.privateIp,
    privateDnsName: n.privateDnsName,
    sourceDestCheck: true,
    groupSet: v.groups.map((g) => ({ groupId: g.groupId, groupName: g.groupName })),
    attachment: { attachmentId: n.attachmentId, deviceIndex: 0, status: 'attached', attachTime: n.attachTime, deleteOnTermination: true, networkCardIndex: 0 },
    association,
    privateIpAddressesSet: [{ privateIpAddress: n.privateIp, privateDnsName: n.privateDnsName, primary: true, association }],
    ipv6AddressesSet: [],
    interfaceType: 'interface',
  };
}

/** One `instancesSet` item. */
export function instanceItem(v: InstanceView): Record<string, XmlValue> {
  const i = v.instance;
  const n = v.network;
  return {
    instanceId: i.id,
    imageId: i.imageId,
    instanceState: stateItem(i),
    privateDnsName: i.privateDnsName,
    dnsName: n?.publicDnsName ?? '',
    privateIpAddress: n?.privateIp,
    ipAddress: n?.publicIp,
    subnetId: n?.subnetId,
    vpcId: n?.vpcId,
    sourceDestCheck: n ? true : undefined,
    reason: i.stateTransitionReason,
    keyName: i.keyName ?? undefined,
    amiLaunchIndex: i.launchIndex,
    productCodes: [],
    instanceType: i.instanceType,
    launchTime: i.launchTime,
    placement: { availabilityZone: i.zone, groupName: '', tenancy: 'default' },
    kernelId: i.kernelId ?? undefined,
    ramdiskId: i.ramdiskId ?? undefined,
    platform: i.platform ?? undefined,
    monitoring: { state: i.monitoringState },
    groupSet: v.groups.map((g) => ({ groupId: g.groupId, groupName: g.groupName })),
    stateReason: i.stateReasonCode ? { code: i.stateReasonCode, message: i.stateReasonMessage ?? i.stateReasonCode } : undefined,
    architecture: i.architecture,
    rootDeviceType: i.rootDeviceType,
    rootDeviceName: i.rootDeviceName,
    blockDeviceMapping: (v.blockDevices ?? []).map(blockDeviceItem),
    virtualizationType: i.virtualizationType,
    clientToken: i.clientToken ?? '',
    tagSet: v.tags.length ? tagSet(v.tags) : undefined,
    hypervisor: 'kvm',
    networkInterfaceSet: n ? [interfaceItem(v, n)] : [],
    ebsOptimized: false,
    enaSupport: false,
    cpuOptions: v.vcpus ? { coreCount: v.vcpus, threadsPerCore: 1 } : undefined,
    hibernationOptions: { configured: false },
    metadataOptions: {
      state: 'applied',
      httpTokens: i.metadataHttpTokens,
      httpPutResponseHopLimit: i.metadataHopLimit,
      httpEndpoint: i.metadataHttpEndpoint,
      httpProtocolIpv6: 'disabled',
      instanceMetadataTags: 'disabled',
    },
    enclaveOptions: { enabled: false },
    bootMode: 'legacy-bios',
    currentInstanceBootMode: 'legacy-bios',
  };
}

/** A `reservationSet` item: the reservation and the given instances of it. */
export function reservationItem(r: Pick<ReservationEntity, 'id' | 'accountId' | 'requesterId'>, views: readonly InstanceView[]): Record<string, XmlValue> {
  const groups = new Map<string, GroupRef>();
  for (const v of views) for (const g of v.groups) groups.set(g.groupId, g);
  return {
    reservationId: r.id,
    ownerId: r.accountId,
    requesterId: r.requesterId !== r.accountId ? r.requesterId : undefined,
    groupSet: [...groups.values()].map((g) => ({ groupId: g.groupId, groupName: g.groupName })),
    instancesSet: views.map((v) => instanceItem(v)),
  };
}
