import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { KOALA_CONFIG } from '@koala/config';
import type { InstanceSpec, InstanceState } from '@koala/contracts';
import { applyFilters, Ec2Error, isValidId, newId, validateFilters, type Filter, type FilterSpec, type TagSpecification } from '@koala/ec2-query';
import type { Logger } from '@koala/logging';
import { BusRemoteError } from '@koala/messaging';
import { LOGGER } from '@koala/runtime';
import { InstanceTypesService } from '../instance-types/instance-types.service.js';
import { SecurityGroupsService, DEFAULT_GROUP_NAME } from '../security-groups/security-groups.service.js';
import { TaggableResources, entityOwners } from '../tags/taggable-resources.js';
import { TagsService } from '../tags/tags.service.js';
import { IMAGE_LAUNCH, type ImageLaunchPort } from '../images/image-launch.port.js';
import { planBlockDevices, type BlockDeviceMappingInput, type EbsMapping } from '../volumes/block-device-mapping.js';
import { BlockDevicesService } from '../volumes/block-devices.service.js';
import { QuotaService } from '../quotas/quota.service.js';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import type { DescribeQuery } from '../persistence/describe-page.js';
import type { FilterColumns } from '../persistence/find-visible.js';
import { CLUSTER_GATEWAY, type ClusterGateway } from './cluster-gateway.js';
import { InstanceEntity, type ReservationEntity, type ShutdownBehavior } from './instance.entity.js';
import { InstanceLifecycleService } from './instance-lifecycle.service.js';
import type { BlockDevicesPort, InstanceNetworkPort, InstanceQuotasPort, InstancesConfig, InstanceTagsPort, InstanceTypesPort, LaunchGroupsPort, NetworkChangesPort } from './instance-ports.js';
import { ClientTokenTaken, InstancesRepository, type InstancePaging, type InstancesStore, type Tx } from './instances.repository.js';
import { moveTo, REASONS, userInitiated } from './instance-states.js';
import { INSTANCE_FILTER_COLUMNS, INSTANCE_FILTERS, type BlockDeviceView, type GroupRef, type InstanceView } from './instance-view.js';
import { launchesInFlight } from './instance-metrics.js';
import { zoneError } from '../clusters/zone-error.js';
import { NetworkService, type LaunchNetwork } from '../network/network.service.js';
import { MAX_GROUPS_PER_INTERFACE } from '../network/default-vpc.js';
import { NetworkPublisher } from '../network/network-publisher.js';
import type { MetadataOptionsInput } from '../network/network-params.js';

export const INSTANCE_RESOURCE_TYPE = 'instance';
export const DEFAULT_INSTANCE_TYPE = 'm1.small';
export const MAX_USER_DATA_BYTES = 16 * 1024;

export interface RunInstancesInput {
  imageId: string;
  instanceType?: string;
  minCount: number;
  maxCount: number;
  keyName?: string;
  /** Decoded UserData. */
  userData?: Buffer;
  groupNames: string[];
  groupIds: string[];
  zone?: string;
  tagSpecifications: TagSpecification[];
  clientToken?: string;
  disableApiTermination: boolean;
  shutdownBehavior: ShutdownBehavior;
  /** `BlockDeviceMapping.N` (EBS volumes created and attached per instance; see BlockDevicesService). */
  blockDeviceMappings?: BlockDeviceMappingInput[];
  /** `AssociatePublicIpAddress` (undefined: KOALA_ASSOCIATE_PUBLIC_IP). */
  associatePublicIp?: boolean;
  /** `SubnetId` (or `NetworkInterface.1.SubnetId`): a zone's default subnet. */
  subnetId?: string;
  /** `PrivateIpAddress` (or `NetworkInterface.1.PrivateIpAddress`): one instance only. */
  privateIp?: string;
  metadataOptions?: MetadataOptionsInput;
  dryRun: boolean;
}

export interface ReservationView {
  reservation: ReservationEntity;
  instances: InstanceView[];
}

export interface StateChange {
  instanceId: string;
  previous: { code: number; name: InstanceState };
  current: { code: number; name: InstanceState };
}

export type InstanceAttributeName =
  | 'instanceType'
  | 'kernel'
  | 'ramdisk'
  | 'userData'
  | 'disableApiTermination'
  | 'instanceInitiatedShutdownBehavior'
  | 'rootDeviceName'
  | 'blockDeviceMapping'
  | 'productCodes'
  | 'sourceDestCheck'
  | 'groupSet'
  | 'ebsOptimized'
  | 'enaSupport'
  | 'sriovNetSupport'
  | 'disableApiStop';
export const INSTANCE_ATTRIBUTES: readonly InstanceAttributeName[] = [
  'instanceType',
  'kernel',
  'ramdisk',
  'userData',
  'disableApiTermination',
  'instanceInitiatedShutdownBehavior',
  'rootDeviceName',
  'blockDeviceMapping',
  'productCodes',
  'sourceDestCheck',
  'groupSet',
  'ebsOptimized',
  'enaSupport',
  'sriovNetSupport',
  'disableApiStop',
];

export type AttributeChange =
  | { attribute: 'instanceType'; value: string }
  | { attribute: 'userData'; value: Buffer }
  | { attribute: 'disableApiTermination'; value: boolean }
  | { attribute: 'instanceInitiatedShutdownBehavior'; value: ShutdownBehavior }
  | { attribute: 'blockDeviceMapping'; value: Array<{ deviceName: string; deleteOnTermination: boolean }> };

export interface StatusView {
  instance: InstanceEntity;
  status: 'ok' | 'impaired' | 'initializing' | 'not-applicable';
}

const STATUS_FILTERS: FilterSpec<StatusView> = {
  'availability-zone': (v) => v.instance.zone,
  'instance-state-name': (v) => v.instance.state,
  'instance-state-code': (v) => v.instance.stateCode,
  'instance-status.status': (v) => v.status,
  'system-status.status': (v) => v.status,
  'instance-status.reachability': (v) => reachability(v.status),
  'system-status.reachability': (v) => reachability(v.status),
};
/** The STATUS_FILTERS SQL can decide (instances aliased `i`; see INSTANCE_FILTER_COLUMNS). */
const STATUS_FILTER_COLUMNS: FilterColumns = {
  'availability-zone': 'i.zone',
  'instance-state-name': 'i.state',
  'instance-state-code': 'CAST(i.state_code AS text)',
};
/** Most MaxResults of DescribeInstances / DescribeInstanceStatus, and their token families. */
const PAGE = { min: 5, max: 1000 } as const;
const DESCRIBE_SCOPE = 'DescribeInstances';
const STATUS_SCOPE = 'DescribeInstanceStatus';

export function reachability(s: StatusView['status']): string | undefined {
  return s === 'ok' ? 'passed' : s === 'impaired' ? 'failed' : s === 'initializing' ? 'initializing' : undefined;
}

/** An error from the zone's CC (or an NC behind it) as the EC2 error to answer (see zoneError); `unavailable` when nobody answered. */
export function fromBus(e: unknown, unavailable: () => Ec2Error, what: string): Ec2Error {
  if (e instanceof BusRemoteError || e instanceof Ec2Error) return zoneError(e, what).error;
  return unavailable();
}

/** What RunInstances resolved and checked before anything is written. */
interface LaunchPlan {
  input: RunInstancesInput;
  /** MaxCount, capped at the instances one request may launch. */
  maxCount: number;
  paramsHash: string;
  type: NonNullable<ReturnType<InstanceTypesPort['lookup']>>;
  image: Awaited<ReturnType<ImageLaunchPort['launchSpec']>>;
  zone: string;
  publicKey?: string;
  groups: GroupRef[];
  instanceTags: TagSpecification[];
  volumeTags: TagSpecification[];
  ebsMappings: EbsMapping[];
  wantsPublicIp: boolean;
  metadata: ReturnType<InstanceNetworkPort['launchMetadataOptions']>;
  /** Base64, null when empty. */
  userData: string | null;
}

/** The zones a launch may go to, as the zones answered. */
type ZoneChoice = Array<{ zone: string; state: string }>;

/**
 * Instances: RunInstances (validation, reservation + pending instances in one transaction,
 * placement by the zone's CC), describe, state changes requested by users, console output,
 * attributes. State changes reported by the zones go through InstanceLifecycleService.
 * Queries go through InstancesStore; an instance is seen and changed by its owner and the
 * admin only (the one access rule), terminated ones for KOALA_TERMINATED_RETENTION_MS.
 */
@Injectable()
export class InstancesService {
  constructor(
    @Inject(InstancesRepository) private readonly repo: InstancesStore,
    @Inject(KOALA_CONFIG) private readonly config: InstancesConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLUSTER_GATEWAY) private readonly cluster: ClusterGateway,
    @Inject(IMAGE_LAUNCH) private readonly images: ImageLaunchPort,
    @Inject(InstanceTypesService) private readonly types: InstanceTypesPort,
    @Inject(SecurityGroupsService) private readonly groups: LaunchGroupsPort,
    @Inject(TagsService) private readonly tags: InstanceTagsPort,
    @Inject(InstanceLifecycleService) private readonly lifecycle: Pick<InstanceLifecycleService, 'send'>,
    @Inject(BlockDevicesService) private readonly blockDevices: BlockDevicesPort,
    @Inject(NetworkService) private readonly network: InstanceNetworkPort,
    @Inject(NetworkPublisher) private readonly publisher: NetworkChangesPort,
    @Inject(TaggableResources) registry: Pick<TaggableResources, 'register'>,
    @Inject(QuotaService) private readonly quotas: InstanceQuotasPort,
  ) {
    registry.register({
      prefix: 'i',
      resourceType: INSTANCE_RESOURCE_TYPE,
      notFoundCode: 'InvalidInstanceID.NotFound',
      owners: entityOwners(InstanceEntity),
    });
  }

  /** Terminated instances are still shown when terminated after this. */
  private cutoff(now: Date): Date {
    return new Date(now.getTime() - this.config.terminatedRetentionMs);
  }

  // ---- RunInstances ---------------------------------------------------------------------

  async run(caller: Caller, now: Date, input: RunInstancesInput): Promise<ReservationView> {
    launchesInFlight.inc();
    try {
      return await this.launch(caller, now, input);
    } finally {
      launchesInFlight.dec();
    }
  }

  /**
   * Checks and resolves everything (plan), then: 1. the reservation and its pending instances in
   * one transaction (record), 2. placement by the zone's CC (place), 3. keep what was placed.
   */
  private async launch(caller: Caller, now: Date, input: RunInstancesInput): Promise<ReservationView> {
    const maxCount = this.checkCounts(input);
    const paramsHash = runDigest(input);
    if (input.clientToken) {
      const earlier = await this.byClientToken(caller.id, input.clientToken, paramsHash);
      if (earlier) return earlier;
    }
    const plan = await this.plan(caller, now, input, maxCount, paramsHash);
    if (input.dryRun) throw Ec2Error.dryRun();

    const reservationId = newId('r');
    const instances = this.pendingInstances(caller, now, plan, reservationId);
    const recorded = await this.record(caller, now, plan, reservationId, instances);
    if (recorded.earlier) return recorded.earlier;
    const placed = await this.place(caller, plan, reservationId, instances, recorded.networks);
    await this.keepPlaced(plan, reservationId, instances, placed);
    this.logger.info({ reservationId, zone: plan.zone, placed: Object.fromEntries(placed) }, 'instances placed');
    this.publisher.changed([plan.zone]);
    // The volumes of the block-device mappings: created now, attached once each instance runs.
    if (plan.ebsMappings.length)
      await this.blockDevices.step([...placed.keys()]).catch((err) => this.logger.warn({ err, reservationId }, 'block-device volumes not created yet; the volume sweep retries'));
    return (await this.reservationViews([reservationId]))[0]!;
  }

  /** MinCount/MaxCount, PrivateIpAddress and ClientToken as EC2 takes them; the MaxCount to launch. */
  private checkCounts(input: RunInstancesInput): number {
    const maxPerRun = this.config.maxInstancesPerRun;
    if (input.minCount < 1) throw Ec2Error.invalidParameterValue('MinCount', String(input.minCount), 'MinCount must be at least 1.');
    if (input.maxCount < 1) throw Ec2Error.invalidParameterValue('MaxCount', String(input.maxCount), 'MaxCount must be at least 1.');
    if (input.minCount > input.maxCount) throw new Ec2Error('InvalidParameterValue', `MinCount (${input.minCount}) must be less than or equal to MaxCount (${input.maxCount}).`);
    if (input.minCount > maxPerRun) throw new Ec2Error('InvalidParameterValue', `MinCount (${input.minCount}) exceeds the ${maxPerRun} instances one request may launch.`);
    const maxCount = Math.min(input.maxCount, maxPerRun);
    if (input.privateIp !== undefined && maxCount > 1) {
      throw Ec2Error.invalidParameterCombination('A private IP address can be given for one instance only (MaxCount=1).');
    }
    if (input.clientToken !== undefined && (input.clientToken.length === 0 || input.clientToken.length > 64)) {
      throw Ec2Error.invalidParameterValue('ClientToken', input.clientToken, 'It must be 1 to 64 ASCII characters.');
    }
    return maxCount;
  }

  /** Everything a launch needs, each part checked (in the order EC2 reports errors), nothing written. */
  private async plan(caller: Caller, now: Date, input: RunInstancesInput, maxCount: number, paramsHash: string): Promise<LaunchPlan> {
    const typeName = input.instanceType ?? DEFAULT_INSTANCE_TYPE;
    const type = this.types.lookup(typeName);
    if (!type) throw new Ec2Error('InvalidParameterValue', `Invalid value '${typeName}' for InstanceType.`);
    if (input.userData && input.userData.length > MAX_USER_DATA_BYTES) {
      throw new Ec2Error('InvalidParameterValue', `User data is limited to ${MAX_USER_DATA_BYTES} bytes`);
    }
    const instanceTags = input.tagSpecifications.filter((s) => s.resourceType !== 'volume' && s.resourceType !== 'network-interface');
    this.tags.checkTagSpecifications(INSTANCE_RESOURCE_TYPE, instanceTags);

    const [image, zones] = await Promise.all([this.images.launchSpec({ accountId: caller.id, isAdmin: caller.isAdmin }, input.imageId), this.zonesFor(input.zone)]);
    let publicKey: string | undefined;
    if (input.keyName !== undefined) {
      publicKey = await this.repo.publicKeyOf(caller.id, input.keyName);
      if (publicKey === undefined) throw Ec2Error.notFound('InvalidKeyPair.NotFound', input.keyName);
    }
    const groups = await this.resolveGroups(caller, now, input.groupNames, input.groupIds);
    const zone = this.pickZone(input, zones, typeName);
    const ebsMappings = planBlockDevices(input.blockDeviceMappings ?? [], { rootDeviceName: image.rootDeviceName });
    const volumeTags = input.tagSpecifications.filter((s) => s.resourceType === 'volume');
    await this.blockDevices.validate(caller, now, zone, ebsMappings, volumeTags);
    this.network.checkRequestedIp(zone, input.privateIp);
    const wantsPublicIp = this.network.wantsPublicIp(input.associatePublicIp);
    const metadata = this.network.launchMetadataOptions(input.metadataOptions ?? {});
    const userData = input.userData && input.userData.length ? input.userData.toString('base64') : null;
    return { input, maxCount, paramsHash, type, image, zone, publicKey, groups, instanceTags, volumeTags, ebsMappings, wantsPublicIp, metadata, userData };
  }

  /**
   * The zones a launch may go to. A named zone is checked by asking its CC directly
   * (milliseconds); only without one do we gather every zone's answer, which waits for the
   * answers to pause.
   */
  private zonesFor(zone: string | undefined): Promise<ZoneChoice> {
    if (zone !== undefined) {
      return this.cluster.nodes(zone).then(
        () => [{ zone, state: 'available' }],
        () => [],
      );
    }
    return this.cluster.zones().catch(() => []);
  }

  /** The placement's zone (or the subnet's), else the first available zone answering. */
  private pickZone(input: RunInstancesInput, zones: ZoneChoice, typeName: string): string {
    let zone = input.zone;
    if (zone !== undefined && !zones.some((z) => z.zone === zone)) throw new Ec2Error('InvalidParameterValue', `Invalid availability zone: [${zone}]`);
    if (input.subnetId !== undefined) {
      // A zone's default subnet names the zone (SubnetId instead of, or with, the placement).
      const of = this.network.zoneOfSubnet(
        input.subnetId,
        zones.map((z) => z.zone),
      );
      if (zone !== undefined && zone !== of) throw new Ec2Error('InvalidParameterValue', `Subnet '${input.subnetId}' is in the availability zone ${of}, not ${zone}.`);
      zone = of;
    }
    if (zone === undefined) {
      zone = (zones.find((z) => z.state === 'available') ?? zones[0])?.zone;
      if (!zone) throw new Ec2Error('InsufficientInstanceCapacity', `We currently do not have sufficient ${typeName} capacity: no availability zone is answering.`);
    }
    return zone;
  }

  /** MaxCount pending instances of a new reservation (not written yet). */
  private pendingInstances(caller: Caller, now: Date, plan: LaunchPlan, reservationId: string): InstanceEntity[] {
    const { input, image } = plan;
    const paravirtual = image.spec.virtualizationType === 'paravirtual' ? image.spec : undefined;
    const instances: InstanceEntity[] = [];
    for (let n = 0; n < plan.maxCount; n++) {
      instances.push(
        Object.assign(new InstanceEntity(), {
          id: newId('i'),
          reservationId,
          accountId: caller.id,
          imageId: input.imageId,
          kernelId: paravirtual ? paravirtual.kernel.imageId : null,
          ramdiskId: paravirtual ? (paravirtual.ramdisk?.imageId ?? null) : null,
          instanceType: plan.type.name,
          ...(moveTo('pending', now, { reason: null, transitionReason: '' }) as { state: InstanceState; stateCode: number }),
          zone: plan.zone,
          node: null,
          keyName: input.keyName ?? null,
          userData: plan.userData,
          launchIndex: n,
          launchTime: now,
          clientToken: input.clientToken ?? null,
          disableApiTermination: input.disableApiTermination,
          shutdownBehavior: input.shutdownBehavior,
          architecture: image.architecture,
          rootDeviceName: image.rootDeviceName,
          rootDeviceType: 'instance-store',
          virtualizationType: image.spec.virtualizationType,
          platform: image.platform ?? null,
          privateDnsName: '', // from the private IP, set in the launch transaction
          metadataHttpTokens: plan.metadata.httpTokens,
          metadataHopLimit: plan.metadata.httpPutResponseHopLimit,
          metadataHttpEndpoint: plan.metadata.httpEndpoint,
          associatePublicIp: plan.wantsPublicIp,
          monitoringState: 'disabled',
          terminatedAt: null,
          lastSeenAt: null,
          impaired: false,
          impairedSince: null,
        }),
      );
    }
    return instances;
  }

  /**
   * The reservation and its instances in one transaction, as many as the quotas admit (at least
   * MinCount; `instances` is cut to them), with their addresses, groups, tags and block-device
   * mappings. A concurrent RunInstances with the same ClientToken that won: its reservation.
   */
  private async record(
    caller: Caller,
    now: Date,
    plan: LaunchPlan,
    reservationId: string,
    instances: InstanceEntity[],
  ): Promise<{ networks: Map<string, LaunchNetwork>; earlier?: undefined } | { earlier: ReservationView }> {
    const { input } = plan;
    try {
      const networks = await this.repo.transaction(async (tx) => {
        // Under the account's quota lock: as many as the quotas allow, at least MinCount.
        instances.splice(await this.quotas.admitInstances(tx, caller, { min: input.minCount, max: instances.length, instanceType: plan.type.name }));
        await this.repo.insertReservation(tx, { id: reservationId, accountId: caller.id, requesterId: caller.id, clientToken: input.clientToken ?? null, paramsHash: plan.paramsHash, createdAt: now });
        await this.repo.insertInstances(tx, instances);
        await this.repo.insertGroupLinks(
          tx,
          instances.flatMap((i) => plan.groups.map((g, position) => ({ instanceId: i.id, groupId: g.groupId, position }))),
        );
        for (const i of instances) await this.tags.applyTagSpecifications(caller, INSTANCE_RESOURCE_TYPE, i.id, plan.instanceTags, tx);
        if (plan.ebsMappings.length)
          await this.blockDevices.record(
            tx,
            caller,
            now,
            instances.map((i) => i.id),
            plan.zone,
            plan.ebsMappings,
            plan.volumeTags,
          );
        // Last: the zone's address lock is held from here to the commit and serialises the
        // zone's launches, so nothing else runs under it.
        const networks = await this.network.allocateForLaunch(
          tx,
          plan.zone,
          instances.map((i) => ({ id: i.id, accountId: caller.id })),
          plan.wantsPublicIp,
          now,
          input.privateIp,
        );
        for (const i of instances) i.privateDnsName = networks.get(i.id)!.privateDnsName;
        return networks;
      });
      return { networks };
    } catch (e) {
      if (input.clientToken && e instanceof ClientTokenTaken) {
        const earlier = await this.byClientToken(caller.id, input.clientToken, plan.paramsHash);
        if (earlier) return { earlier };
      }
      throw e;
    }
  }

  /** Placement by the zone's CC: instance id → node. Nothing placed at all: the reservation is gone and the EC2 error thrown. */
  private async place(caller: Caller, plan: LaunchPlan, reservationId: string, instances: readonly InstanceEntity[], networks: Map<string, LaunchNetwork>): Promise<Map<string, string>> {
    const { type, zone, input } = plan;
    const specs: InstanceSpec[] = instances.map((i) => ({
      instanceId: i.id,
      reservationId,
      accountId: caller.id,
      instanceType: type.name,
      resources: { vcpus: type.vcpus, memoryMiB: type.memoryMiB, rootDiskGiB: type.rootDiskGiB, ephemeralGiB: type.ephemeralGiB },
      image: plan.image.spec,
      userData: plan.userData ?? undefined,
      keyName: input.keyName,
      publicKey: plan.publicKey,
      hostname: i.id,
      availabilityZone: zone,
      launchIndex: i.launchIndex,
      network: this.network.launchSpec(zone, networks.get(i.id)!, plan.groups),
      metadataOptions: plan.metadata,
    }));
    let placements: Array<{ instanceId: string; node: string }>;
    try {
      placements = (await this.cluster.place(zone, { reservationId, minCount: input.minCount, instances: specs })).placements;
    } catch (e) {
      await this.deleteReservation(
        reservationId,
        instances.map((i) => i.id),
      );
      this.logger.warn({ err: e, reservationId, zone }, 'placement failed');
      throw fromBus(e, () => Ec2Error.insufficientCapacity(type.name, zone), 'RunInstances');
    }
    return new Map(placements.filter((p) => instances.some((i) => i.id === p.instanceId)).map((p) => [p.instanceId, p.node]));
  }

  /** The placed instances get their node; the others are gone again (and the reservation with them when none was placed). */
  private async keepPlaced(plan: LaunchPlan, reservationId: string, instances: readonly InstanceEntity[], placed: ReadonlyMap<string, string>): Promise<void> {
    const unplaced = instances.filter((i) => !placed.has(i.id)).map((i) => i.id);
    if (!unplaced.length) {
      // All placed (the usual case): one statement, no transaction's BEGIN and COMMIT round trips.
      await this.repo.setNodes(this.repo.pool, placed);
    } else {
      await this.repo.transaction(async (tx) => {
        await this.repo.setNodes(tx, placed);
        await this.network.release(tx, unplaced);
        await this.repo.deleteInstances(tx, unplaced);
        for (const id of unplaced) await this.tags.deleteAllFor(id, tx);
      });
    }
    if (placed.size === 0) {
      await this.deleteReservation(reservationId, []);
      throw Ec2Error.insufficientCapacity(plan.type.name, plan.zone);
    }
  }

  private async byClientToken(accountId: string, clientToken: string, paramsHash: string): Promise<ReservationView | undefined> {
    const r = await this.repo.reservationByClientToken(accountId, clientToken);
    if (!r) return undefined;
    if (r.paramsHash !== paramsHash) {
      throw new Ec2Error('IdempotentParameterMismatch', `Client token '${clientToken}' was already used in a request with different parameters.`);
    }
    return (await this.reservationViews([r.id]))[0];
  }

  private async deleteReservation(reservationId: string, instanceIds: string[]) {
    await this.repo.transaction(async (tx) => {
      await this.network.release(tx, instanceIds);
      for (const id of instanceIds) await this.tags.deleteAllFor(id, tx);
      await this.repo.deleteReservation(tx, reservationId);
    });
  }

  private async resolveGroups(caller: Caller, now: Date, names: readonly string[], ids: readonly string[]): Promise<GroupRef[]> {
    const out = new Map<string, GroupRef>();
    // The caller's own groups only, even for the admin.
    const own = { id: caller.id, isAdmin: false };
    for (const id of ids) {
      const g = await this.groups.resolveGroup(this.repo.pool, own, { id });
      out.set(g.id, { groupId: g.id, groupName: g.name });
    }
    for (const name of names) {
      if (name === DEFAULT_GROUP_NAME) await this.groups.ensureDefaultGroup(caller.id, now);
      const g = await this.groups.resolveGroup(this.repo.pool, own, { name });
      out.set(g.id, { groupId: g.id, groupName: g.name });
    }
    if (out.size > MAX_GROUPS_PER_INTERFACE) {
      throw new Ec2Error('SecurityGroupsPerInterfaceLimitExceeded', `An instance may have at most ${MAX_GROUPS_PER_INTERFACE} security groups.`);
    }
    if (out.size === 0) {
      const id = await this.groups.ensureDefaultGroup(caller.id, now);
      out.set(id, { groupId: id, groupName: DEFAULT_GROUP_NAME });
    }
    return [...out.values()];
  }

  // ---- Describe -------------------------------------------------------------------------

  /** Instances with their tags and groups (in the order given). */
  async views(instances: readonly InstanceEntity[], tx: Tx = this.repo.pool): Promise<InstanceView[]> {
    const ids = instances.map((i) => i.id);
    const reads = [() => this.tags.tagsOf(ids, tx), () => this.repo.groupLinks(ids, tx), () => this.network.instanceNetworks(ids, tx), () => this.repo.attachedVolumes(ids, tx)] as const;
    // On the pool the four reads go out at once (four round trips became one wait); a
    // transaction has one connection, so there they run one after another.
    const [tags, links, networks, attached] =
      tx === this.repo.pool ? await Promise.all([reads[0](), reads[1](), reads[2](), reads[3]()]) : [await reads[0](), await reads[1](), await reads[2](), await reads[3]()];
    // Grouped once (order kept), so building N views stays linear in N.
    const groupsOf = groupBy(links, (l) => l.instanceId);
    const volumesOf = groupBy(attached, (v) => v.instanceId);
    return instances.map((instance) => ({
      instance,
      tags: tags.get(instance.id) ?? [],
      groups: (groupsOf.get(instance.id) ?? []).map((l) => ({ groupId: l.groupId, groupName: l.groupName })),
      vcpus: this.types.lookup(instance.instanceType)?.vcpus,
      network: networks.get(instance.id),
      blockDevices: (volumesOf.get(instance.id) ?? []).map((v): BlockDeviceView => ({
        deviceName: v.device,
        volumeId: v.id,
        status: v.state,
        attachTime: v.attachTime,
        deleteOnTermination: v.deleteOnTermination,
      })),
    }));
  }

  private async reservationViews(reservationIds: readonly string[], only?: readonly InstanceView[]): Promise<ReservationView[]> {
    if (!reservationIds.length) return [];
    const [reservations, views] = await Promise.all([this.repo.reservations(reservationIds), only ?? this.repo.instancesOf(reservationIds).then((rows) => this.views(rows))]);
    const byId = new Map(reservations.map((r) => [r.id, r]));
    const viewsOf = groupBy(views, (v) => v.instance.reservationId);
    return reservationIds.filter((id) => byId.has(id)).map((id) => ({ reservation: byId.get(id)!, instances: viewsOf.get(id) ?? [] }));
  }

  /**
   * A page of the caller's instances matching `filters`, in id order (describePage in the
   * repository): named ids must all be visible; otherwise a keyset walk over the caller's
   * retained instances, every filter applied in memory to each chunk (`keep`).
   */
  private page<V extends { instance: InstanceEntity }>(
    caller: Caller,
    now: Date,
    q: DescribeQuery,
    how: Pick<InstancePaging<V>, 'scope' | 'validate' | 'columns' | 'tagsOf' | 'runningOnly' | 'keep'>,
  ): Promise<{ page: V[]; nextToken?: string }> {
    return this.repo.page(caller, this.cutoff(now), q, { ...PAGE, idsParameter: 'instancesSet', keyOf: (v) => v.instance.id, ...how });
  }

  /** DescribeInstances: reservations of the page of matching instances (pagination is over instances). */
  async describe(
    caller: Caller,
    now: Date,
    q: { ids: readonly string[]; filters: readonly Filter[]; maxResults?: number; nextToken?: string },
  ): Promise<{ reservations: ReservationView[]; nextToken?: string }> {
    const tagsOf = (v: InstanceView) => v.tags;
    const { page, nextToken } = await this.page(caller, now, q, {
      scope: DESCRIBE_SCOPE,
      validate: () => validateFilters(q.filters, INSTANCE_FILTERS, tagsOf),
      columns: INSTANCE_FILTER_COLUMNS,
      tagsOf: 'i.id',
      keep: async (rows) => applyFilters(await this.views(rows), q.filters, INSTANCE_FILTERS, tagsOf),
    });
    const order = [...new Set(page.map((v) => v.instance.reservationId))];
    return { reservations: await this.reservationViews(order, page), nextToken };
  }

  /** DescribeInstanceStatus: running instances (all visible ones with `includeAll`). */
  async describeStatus(
    caller: Caller,
    now: Date,
    q: { ids: readonly string[]; filters: readonly Filter[]; includeAll: boolean; maxResults?: number; nextToken?: string },
  ): Promise<{ statuses: StatusView[]; nextToken?: string }> {
    const { page, nextToken } = await this.page(caller, now, q, {
      scope: STATUS_SCOPE,
      validate: () => validateFilters(q.filters, STATUS_FILTERS),
      columns: STATUS_FILTER_COLUMNS,
      runningOnly: !q.includeAll,
      keep: (rows) =>
        applyFilters(
          rows.filter((i) => q.includeAll || i.state === 'running').map((instance): StatusView => ({ instance, status: statusOf(instance) })),
          q.filters,
          STATUS_FILTERS,
        ),
    });
    return { statuses: page, nextToken };
  }

  // ---- State changes requested by users ---------------------------------------------------

  /** Locks the named instances the caller may change (the access rule) for a state change; any other id: NotFound. */
  private async targets(tx: Tx, caller: Caller, now: Date, ids: readonly string[]): Promise<InstanceEntity[]> {
    if (!ids.length) throw Ec2Error.missingParameter('InstanceId');
    for (const id of ids) if (!isValidId('i', id)) throw Ec2Error.malformed('InvalidInstanceID.Malformed', id);
    const unique = [...new Set(ids)];
    const rows = await this.repo.lockByIds(tx, unique);
    const cutoff = this.cutoff(now).getTime();
    const visible = rows.filter((r) => allows(accessOf(caller, r), 'change') && !(r.state === 'terminated' && (r.terminatedAt?.getTime() ?? 0) <= cutoff));
    const missing = unique.filter((id) => !visible.some((r) => r.id === id));
    if (missing.length) throw Ec2Error.notFound('InvalidInstanceID.NotFound', missing);
    return unique.map((id) => visible.find((r) => r.id === id)!);
  }

  private async change(
    caller: Caller,
    now: Date,
    ids: readonly string[],
    dryRun: boolean,
    decide: (i: InstanceEntity) => { patch?: Partial<InstanceEntity>; send?: boolean },
    check?: (rows: InstanceEntity[]) => void,
    /** Runs in the transaction once the rows carry their new state. */
    then?: (tx: Tx, rows: InstanceEntity[]) => Promise<void>,
  ): Promise<{ changes: StateChange[]; sends: InstanceEntity[] }> {
    return this.repo.transaction(async (tx) => {
      const rows = await this.targets(tx, caller, now, ids);
      check?.(rows);
      const plans = rows.map((i) => ({ i, ...decide(i) }));
      if (dryRun) throw Ec2Error.dryRun();
      // The rows are locked: the instances taking the same patch (same move, time and reason)
      // share one UPDATE instead of one statement per instance.
      const batches = new Map<string, { patch: Partial<InstanceEntity>; ids: string[] }>();
      for (const p of plans) {
        if (!p.patch) continue;
        const key = JSON.stringify(p.patch);
        const batch = batches.get(key);
        if (batch) batch.ids.push(p.i.id);
        else batches.set(key, { patch: p.patch, ids: [p.i.id] });
      }
      for (const b of batches.values()) await this.repo.update(tx, b.ids, b.patch);
      const changes: StateChange[] = [];
      const sends: InstanceEntity[] = [];
      for (const p of plans) {
        const previous = { code: p.i.stateCode, name: p.i.state };
        if (p.patch) Object.assign(p.i, p.patch);
        if (p.send && p.i.node) sends.push(p.i);
        changes.push({ instanceId: p.i.id, previous, current: { code: p.i.stateCode, name: p.i.state } });
      }
      await then?.(tx, rows);
      return { changes, sends };
    });
  }

  /** TerminateInstances: refused for all when any has DisableApiTermination. */
  async terminate(caller: Caller, now: Date, ids: readonly string[], dryRun: boolean): Promise<StateChange[]> {
    let released: string[] = [];
    const { changes, sends } = await this.change(
      caller,
      now,
      ids,
      dryRun,
      (i) => {
        if (i.state === 'terminated') return {};
        if (i.state === 'shutting-down') return { send: true };
        const reason = { reason: REASONS.userShutdown, transitionReason: userInitiated(now) };
        if (i.node === null) return { patch: moveTo('terminated', now, { ...reason, now }) };
        return { patch: moveTo('shutting-down', now, reason), send: true };
      },
      (rows) => {
        const locked = rows.find((r) => r.disableApiTermination && r.state !== 'terminated');
        if (locked) throw new Ec2Error('OperationNotPermitted', `The instance '${locked.id}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.`);
      },
      // Never placed: terminated at once, its addresses free again (the others' at their terminated event).
      async (tx, rows) =>
        void (released = await this.network.release(
          tx,
          rows.filter((r) => r.state === 'terminated').map((r) => r.id),
        )),
    );
    this.publisher.changed(released);
    await Promise.all(sends.map((i) => this.lifecycle.send(i.zone, i.id, i.node!, 'terminate')));
    return changes;
  }

  /** StopInstances: running/pending → stopping (Force: also re-sends to a stopping instance). */
  async stop(caller: Caller, now: Date, ids: readonly string[], force: boolean, dryRun: boolean): Promise<StateChange[]> {
    const { changes, sends } = await this.change(caller, now, ids, dryRun, (i) => {
      if (i.state === 'running' || i.state === 'pending') return { patch: moveTo('stopping', now, { reason: REASONS.userShutdown, transitionReason: userInitiated(now) }), send: true };
      if (i.state === 'stopping' && force) return { send: true };
      throw Ec2Error.incorrectInstanceState(i.id, i.state, 'stopped');
    });
    await Promise.all(sends.map((i) => this.lifecycle.send(i.zone, i.id, i.node!, 'stop', force || undefined)));
    return changes;
  }

  /** StartInstances: stopped → pending. */
  async start(caller: Caller, now: Date, ids: readonly string[], dryRun: boolean): Promise<StateChange[]> {
    const { changes, sends } = await this.change(caller, now, ids, dryRun, (i) => {
      if (i.state === 'stopped') return { patch: moveTo('pending', now, { reason: null, transitionReason: '' }), send: true };
      throw Ec2Error.incorrectInstanceState(i.id, i.state, 'started');
    });
    await Promise.all(sends.map((i) => this.lifecycle.send(i.zone, i.id, i.node!, 'start')));
    return changes;
  }

  /** RebootInstances: running instances only; the state does not change. */
  async reboot(caller: Caller, now: Date, ids: readonly string[], dryRun: boolean): Promise<void> {
    const { sends } = await this.change(caller, now, ids, dryRun, (i) => {
      if (i.state === 'running') return { send: true };
      throw Ec2Error.incorrectInstanceState(i.id, i.state, 'rebooted');
    });
    const results = await Promise.allSettled(sends.map((i) => this.cluster.action(i.zone, { instanceId: i.id, node: i.node!, action: 'reboot' })));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw fromBus(failed.reason, () => new Ec2Error('Unavailable', 'The instance cannot be reached right now; try again later.'), 'RebootInstances');
  }

  // ---- Console output, attributes --------------------------------------------------------

  private async one(caller: Caller, now: Date, id: string): Promise<InstanceEntity> {
    return (await this.repo.transaction((tx) => this.targets(tx, caller, now, [id])))[0]!;
  }

  /** GetConsoleOutput: base64 serial console from the instance's node; empty while pending or once terminated. */
  async consoleOutput(caller: Caller, now: Date, id: string, latest: boolean, dryRun: boolean): Promise<{ instance: InstanceEntity; output: string; timestamp: Date }> {
    const instance = await this.one(caller, now, id);
    if (dryRun) throw Ec2Error.dryRun();
    if (instance.state === 'pending' || instance.state === 'terminated' || !instance.node) return { instance, output: '', timestamp: now };
    try {
      const r = await this.cluster.consoleOutput(instance.zone, { instanceId: instance.id, node: instance.node, latest: latest || undefined });
      const ts = new Date(r.timestamp);
      return { instance, output: r.output, timestamp: Number.isNaN(ts.getTime()) ? now : ts };
    } catch (e) {
      throw fromBus(e, () => new Ec2Error('Unavailable', `The console output of '${id}' cannot be read right now; try again later.`), 'GetConsoleOutput');
    }
  }

  async describeAttribute(
    caller: Caller,
    now: Date,
    id: string,
    attribute: InstanceAttributeName,
    dryRun: boolean,
  ): Promise<{ instance: InstanceEntity; groups: GroupRef[]; blockDevices: BlockDeviceView[] }> {
    const instance = await this.one(caller, now, id);
    if (dryRun) throw Ec2Error.dryRun();
    const [view] = await this.views([instance]);
    void attribute;
    return { instance, groups: view!.groups, blockDevices: view!.blockDevices ?? [] };
  }

  /** ModifyInstanceAttribute: instanceType and userData only while stopped (as AWS). */
  async modifyAttribute(caller: Caller, now: Date, id: string, change: AttributeChange, dryRun: boolean): Promise<void> {
    await this.repo.transaction(async (tx) => {
      const [i] = await this.targets(tx, caller, now, [id]);
      const inst = i!;
      if (inst.state === 'terminated' || inst.state === 'shutting-down') throw Ec2Error.incorrectInstanceState(inst.id, inst.state, 'modified');
      let patch: Partial<InstanceEntity> | undefined;
      switch (change.attribute) {
        case 'instanceType': {
          if (!this.types.lookup(change.value)) throw new Ec2Error('InvalidParameterValue', `Invalid value '${change.value}' for InstanceType.`);
          if (inst.state !== 'stopped') throw Ec2Error.incorrectInstanceState(inst.id, inst.state, 'modified');
          patch = { instanceType: change.value };
          break;
        }
        case 'userData':
          if (change.value.length > MAX_USER_DATA_BYTES) throw new Ec2Error('InvalidParameterValue', `User data is limited to ${MAX_USER_DATA_BYTES} bytes`);
          if (inst.state !== 'stopped') throw Ec2Error.incorrectInstanceState(inst.id, inst.state, 'modified');
          patch = { userData: change.value.length ? change.value.toString('base64') : null };
          break;
        case 'disableApiTermination':
          patch = { disableApiTermination: change.value };
          break;
        case 'instanceInitiatedShutdownBehavior':
          patch = { shutdownBehavior: change.value };
          break;
        case 'blockDeviceMapping':
          if (dryRun) throw Ec2Error.dryRun();
          for (const m of change.value) await this.blockDevices.setDeleteOnTermination(tx, inst.id, m.deviceName, m.deleteOnTermination);
          return;
      }
      if (dryRun) throw Ec2Error.dryRun();
      await this.repo.update(tx, [inst.id], patch!);
    });
  }
}

/** DescribeInstanceStatus' instance/system status of an instance. */
export function statusOf(i: InstanceEntity): StatusView['status'] {
  if (i.state !== 'running') return 'not-applicable';
  if (i.impaired) return 'impaired';
  if (!i.lastSeenAt || i.lastSeenAt.getTime() < i.stateChangedAt.getTime()) return 'initializing';
  return 'ok';
}

/** Digest of what a RunInstances asked for: the same ClientToken with another digest is a mismatch. */
export function runDigest(input: RunInstancesInput): string {
  const canonical = {
    imageId: input.imageId,
    instanceType: input.instanceType ?? DEFAULT_INSTANCE_TYPE,
    minCount: input.minCount,
    maxCount: input.maxCount,
    keyName: input.keyName ?? null,
    userData: input.userData?.toString('base64') ?? null,
    groupNames: [...input.groupNames].sort(),
    groupIds: [...input.groupIds].sort(),
    zone: input.zone ?? null,
    tags: input.tagSpecifications.map((s) => [s.resourceType, s.tags.map((t) => [t.key, t.value])]),
    disableApiTermination: input.disableApiTermination,
    shutdownBehavior: input.shutdownBehavior,
    ...(input.associatePublicIp !== undefined ? { associatePublicIp: input.associatePublicIp } : {}),
    ...(input.subnetId !== undefined ? { subnetId: input.subnetId } : {}),
    ...(input.privateIp !== undefined ? { privateIp: input.privateIp } : {}),
    ...(input.metadataOptions && Object.values(input.metadataOptions).some((v) => v !== undefined) ? { metadataOptions: input.metadataOptions } : {}),
    ...(input.blockDeviceMappings?.length ? { blockDeviceMappings: input.blockDeviceMappings.map((m) => [m.deviceName, m.ebs ?? null, m.virtualName ?? null, m.noDevice ?? false]) } : {}),
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** Items grouped by key, each group in the items' order. */
function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
