/** How an instance reads in EC2 responses (the item shape botocore and the SDKs expect). */
import type { Tag, XmlValue, FilterSpec } from '@koala/ec2-query';
import { tagSet } from '../tags/tags.service.js';
import type { InstanceEntity, ReservationEntity } from './instance.entity.js';

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
  'tenancy': () => 'default',
  'placement.tenancy': () => 'default',
  'instance-lifecycle': () => null,
  platform: (v) => v.instance.platform,
  'node-name': (v) => v.instance.node,
  'block-device-mapping.device-name': (v) => (v.blockDevices ?? []).map((b) => b.deviceName),
  'block-device-mapping.volume-id': (v) => (v.blockDevices ?? []).map((b) => b.volumeId),
  'block-device-mapping.status': (v) => (v.blockDevices ?? []).map((b) => b.status),
  'block-device-mapping.delete-on-termination': (v) => (v.blockDevices ?? []).map((b) => b.deleteOnTermination),
  'block-device-mapping.attach-time': (v) => (v.blockDevices ?? []).map((b) => b.attachTime),
};

export const stateItem = (i: Pick<InstanceEntity, 'state' | 'stateCode'>) => ({ code: i.stateCode, name: i.state });

/** One `instancesSet` item. */
export function instanceItem(v: InstanceView): Record<string, XmlValue> {
  const i = v.instance;
  return {
    instanceId: i.id,
    imageId: i.imageId,
    instanceState: stateItem(i),
    privateDnsName: i.privateDnsName,
    dnsName: '',
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
    networkInterfaceSet: [],
    ebsOptimized: false,
    enaSupport: false,
    cpuOptions: v.vcpus ? { coreCount: v.vcpus, threadsPerCore: 1 } : undefined,
    hibernationOptions: { configured: false },
    metadataOptions: { state: 'applied', httpTokens: 'optional', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled', httpProtocolIpv6: 'disabled', instanceMetadataTags: 'disabled' },
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
