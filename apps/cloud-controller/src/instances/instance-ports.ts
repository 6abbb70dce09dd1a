/**
 * What the instance services use of other folders, each the few methods they call: the Nest
 * module binds the real services, the specs bind fakes (testing/). Changing one of these
 * services' signatures shows up here first.
 */
import type { KoalaConfig } from '@koala/config';
import type { InstanceTypesService } from '../instance-types/instance-types.service.js';
import type { NetworkPublisher } from '../network/network-publisher.js';
import type { NetworkService } from '../network/network.service.js';
import type { QuotaService } from '../quotas/quota.service.js';
import type { SecurityGroupsService } from '../security-groups/security-groups.service.js';
import type { TagsService } from '../tags/tags.service.js';
import type { BlockDevicesService } from '../volumes/block-devices.service.js';

export type InstanceTypesPort = Pick<InstanceTypesService, 'lookup'>;
export type InstanceTagsPort = Pick<TagsService, 'checkTagSpecifications' | 'applyTagSpecifications' | 'tagsOf' | 'deleteAllFor'>;
export type LaunchGroupsPort = Pick<SecurityGroupsService, 'resolveGroup' | 'ensureDefaultGroup'>;
export type BlockDevicesPort = Pick<BlockDevicesService, 'validate' | 'record' | 'step' | 'setDeleteOnTermination'>;
export type InstanceNetworkPort = Pick<
  NetworkService,
  'zoneOfSubnet' | 'checkRequestedIp' | 'wantsPublicIp' | 'launchMetadataOptions' | 'allocateForLaunch' | 'launchSpec' | 'release' | 'instanceNetworks'
>;
export type NetworkChangesPort = Pick<NetworkPublisher, 'changed'>;
export type InstanceQuotasPort = Pick<QuotaService, 'admitInstances'>;

export type InstancesConfig = Pick<KoalaConfig, 'maxInstancesPerRun' | 'terminatedRetentionMs'>;
export type ReconcilerConfig = Pick<KoalaConfig, 'reconcileIntervalMs' | 'reconcileGraceMs' | 'launchTimeoutMs' | 'terminatedRetentionMs'>;
