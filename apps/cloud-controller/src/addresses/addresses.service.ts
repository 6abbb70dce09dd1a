import { Inject, Injectable } from '@nestjs/common';
import { KOALA_CONFIG } from '@koala/config';
import { applyFilters, Ec2Error, isValidId, newId, type Filter, type FilterSpec, type Tag, type TagSpecification } from '@koala/ec2-query';
import { NetworkPublisher } from '../network/network-publisher.js';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { QuotaService } from '../quotas/quota.service.js';
import { TagsService } from '../tags/tags.service.js';
import { firstFree, ipToInt, poolRange, type PoolRange } from '../network/address-pool.js';
import { ADDRESSES_STORE, type AddressesStore, type AddressRow, type ListedAddress, type Tx } from './addresses.repository.js';

export const ADDRESS_RESOURCE_TYPE = 'elastic-ip';

/** What the service needs from the configuration. */
export interface AddressesConfig {
  publicIpRange: string;
}

/** What the service needs of the tags module (TagsService; a fake in specs). */
export type AddressTags = Pick<TagsService, 'checkTagSpecifications' | 'applyTagSpecifications' | 'tagsOf' | 'deleteAllFor'>;
/** What the service needs of quotas. */
export type AddressQuotas = Pick<QuotaService, 'enforce'>;
/** Where association changes go: the zones whose network state is republished (NetworkPublisher). */
export type AddressNetworkChanges = Pick<NetworkPublisher, 'changed'>;

export interface AddressView {
  address: AddressRow & Partial<Pick<ListedAddress, 'networkInterfaceId'>>;
  tags: Tag[];
}

const ADDRESS_FILTERS: FilterSpec<AddressView> = {
  'public-ip': (v) => v.address.publicIp,
  'allocation-id': (v) => v.address.allocationId,
  domain: (v) => v.address.domain,
  'instance-id': (v) => v.address.instanceId,
  'association-id': (v) => v.address.associationId,
  'private-ip-address': (v) => v.address.privateIpAddress,
  'network-interface-id': (v) => v.address.networkInterfaceId,
  'network-interface-owner-id': (v) => (v.address.networkInterfaceId ? v.address.accountId : null),
};

/** How an action names an address: by allocation id, association id or (the caller's own) public IP. */
export interface AddressRef {
  allocationId?: string;
  associationId?: string;
  publicIp?: string;
}

/**
 * Elastic IP addresses from the pool KOALA_PUBLIC_IP_RANGE (shared with instances' launch-time
 * addresses). Allocations take the account's quota lock, then the pool's advisory lock (lowest
 * free address decided under it) and `public_ip` is unique, so two concurrent allocations never
 * get the same address.
 *
 * Associations: an address goes to one instance at a time (an instance has at most one public
 * address: associating an elastic one releases its launch-time address, as EC2 does, or replaces
 * another elastic one; when it leaves, an instance launched with a public address gets a new
 * launch-time one). An address already associated elsewhere moves only with
 * AllowReassociation (else `Resource.AlreadyAssociated`). Release: a `vpc` address is refused
 * while associated (`InvalidIPAddress.InUse`); a `standard` one is disassociated first
 * (EC2-Classic). Terminating an instance disassociates its address (guest networking's release).
 * Every association change republishes the zone's network state.
 */
@Injectable()
export class AddressesService {
  private readonly pool: PoolRange;

  constructor(
    @Inject(ADDRESSES_STORE) private readonly repo: AddressesStore,
    @Inject(TagsService) private readonly tags: AddressTags,
    @Inject(KOALA_CONFIG) config: AddressesConfig,
    @Inject(NetworkPublisher) private readonly publisher: AddressNetworkChanges,
    @Inject(TaggableResources) registry: TaggableResources,
    @Inject(QuotaService) private readonly quotas: AddressQuotas,
  ) {
    this.pool = poolRange(config.publicIpRange);
    registry.register({
      prefix: 'eipalloc',
      resourceType: ADDRESS_RESOURCE_TYPE,
      notFoundCode: 'InvalidAllocationID.NotFound',
      owners: (tx, ids) => this.repo.owners(tx, ids),
    });
  }

  /** AllocateAddress: the lowest free address of the pool. */
  async allocate(caller: Caller, now: Date, input: { domain: 'vpc' | 'standard'; tagSpecifications: readonly TagSpecification[] }): Promise<AddressView> {
    this.tags.checkTagSpecifications(ADDRESS_RESOURCE_TYPE, input.tagSpecifications);
    return this.repo.transaction(async (tx) => {
      // The account's quota lock before the pool's, in the order RunInstances takes them.
      await this.quotas.enforce(tx, caller, { kind: 'address' });
      await this.repo.lockPool(tx);
      const ip = firstFree(this.pool, await this.repo.usedPublicIps(tx));
      if (!ip) throw new Ec2Error('InsufficientAddressCapacity', 'There are no free addresses left in the public address pool of this cloud.', 500);
      const address: AddressRow = {
        allocationId: newId('eipalloc'),
        accountId: caller.id,
        publicIp: ip,
        domain: input.domain,
        instanceId: null,
        associationId: null,
        privateIpAddress: null,
        createdAt: now,
      };
      await this.repo.insert(tx, address);
      const tags = await this.tags.applyTagSpecifications(caller, ADDRESS_RESOURCE_TYPE, address.allocationId, input.tagSpecifications, tx);
      return { address, tags };
    });
  }

  /** DescribeAddresses: the caller's addresses (the admin's: every account's), sorted by address. */
  async describe(caller: Caller, q: { publicIps: readonly string[]; allocationIds: readonly string[]; filters: readonly Filter[] }): Promise<AddressView[]> {
    for (const id of q.allocationIds) if (!isValidId('eipalloc', id)) throw Ec2Error.malformed('InvalidAllocationID.Malformed', id);
    const rows = await this.repo.listVisible(caller);
    rows.sort((a, b) => ipToInt(a.publicIp) - ipToInt(b.publicIp));
    for (const ip of q.publicIps) if (!rows.some((r) => r.publicIp === ip)) throw Ec2Error.notFound('InvalidAddress.NotFound', ip);
    for (const id of q.allocationIds) if (!rows.some((r) => r.allocationId === id)) throw Ec2Error.notFound('InvalidAllocationID.NotFound', id);
    const selected = rows.filter((r) => (!q.publicIps.length || q.publicIps.includes(r.publicIp)) && (!q.allocationIds.length || q.allocationIds.includes(r.allocationId)));
    const tags = await this.tags.tagsOf(selected.map((r) => r.allocationId));
    const views = selected.map((address) => ({ address, tags: tags.get(address.allocationId) ?? [] }));
    return applyFilters(views, q.filters, ADDRESS_FILTERS, (v) => v.tags);
  }

  /** The address `ref` names, locked; the caller's own (by allocation id the admin may name any). */
  private async lockAddress(tx: Tx, caller: Caller, ref: AddressRef): Promise<AddressRow> {
    if (ref.allocationId !== undefined) {
      if (!isValidId('eipalloc', ref.allocationId)) throw Ec2Error.malformed('InvalidAllocationID.Malformed', ref.allocationId);
      const row = await this.repo.lockOne(tx, { allocationId: ref.allocationId });
      if (!row || !allows(accessOf(caller, row), 'change')) throw Ec2Error.notFound('InvalidAllocationID.NotFound', ref.allocationId);
      return row;
    }
    if (ref.associationId !== undefined) {
      if (!isValidId('eipassoc', ref.associationId)) throw new Ec2Error('InvalidAssociationID.Malformed', `Invalid id: "${ref.associationId}" (expecting "eipassoc-...")`);
      const row = await this.repo.lockOne(tx, { associationId: ref.associationId });
      if (!row || !allows(accessOf(caller, row), 'change')) throw Ec2Error.notFound('InvalidAssociationID.NotFound', ref.associationId);
      return row;
    }
    const ip = ref.publicIp ?? '';
    // Not an address at all (NUL, huge, unicode): not found, without asking the database.
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw Ec2Error.notFound('InvalidAddress.NotFound', ip.slice(0, 64));
    const row = await this.repo.lockOne(tx, { publicIp: ip });
    // By public IP only the caller's own, for the admin too: an IP names an address within one account.
    if (!row || row.accountId !== caller.id) throw Ec2Error.notFound('InvalidAddress.NotFound', ip);
    return row;
  }

  /**
   * An elastic address has left the instance: one launched with a public address gets a new
   * launch-time one from the pool (as EC2 does; none when the pool is empty). Returns its zone.
   */
  private async leave(tx: Tx, instanceId: string, now: Date): Promise<string | undefined> {
    const i = await this.repo.instance(tx, instanceId);
    if (!i) return undefined;
    if (i.associatePublicIp && i.privateIp && i.state !== 'terminated' && i.state !== 'shutting-down') {
      await this.repo.lockPool(tx);
      const ip = firstFree(this.pool, await this.repo.usedPublicIps(tx));
      if (ip) await this.repo.insertLaunchAddress(tx, newId('eipalloc'), i, ip, now);
    }
    return i.zone;
  }

  /** AssociateAddress: returns the association id. */
  async associate(
    caller: Caller,
    now: Date,
    input: { address: AddressRef; instanceId?: string; networkInterfaceId?: string; privateIpAddress?: string; allowReassociation: boolean; dryRun: boolean },
  ): Promise<string> {
    const { id, zones } = await this.repo.transaction(async (tx) => {
      let instanceId = input.instanceId;
      if (instanceId === undefined && input.networkInterfaceId !== undefined) {
        if (!isValidId('eni', input.networkInterfaceId)) throw new Ec2Error('InvalidNetworkInterfaceID.Malformed', `Invalid id: "${input.networkInterfaceId}" (expecting "eni-...")`);
        instanceId = await this.repo.instanceOfInterface(tx, input.networkInterfaceId);
        if (!instanceId) throw new Ec2Error('InvalidNetworkInterfaceID.NotFound', `The networkInterface ID '${input.networkInterfaceId}' does not exist`);
      }
      if (instanceId === undefined) throw Ec2Error.missingParameter('InstanceId');
      if (!isValidId('i', instanceId)) throw Ec2Error.malformed('InvalidInstanceID.Malformed', instanceId);
      // The instance first, then the address: every association takes its locks in that order.
      const instance = await this.repo.lockInstance(tx, instanceId);
      if (!instance || !allows(accessOf(caller, instance), 'change')) throw Ec2Error.notFound('InvalidInstanceID.NotFound', instanceId);
      const address = await this.lockAddress(tx, caller, input.address);
      if (instance.accountId !== address.accountId) throw Ec2Error.notFound('InvalidInstanceID.NotFound', instanceId);
      if (!instance.privateIp || instance.state === 'terminated' || instance.state === 'shutting-down')
        throw Ec2Error.incorrectInstanceState(instance.id, instance.state, 'associated with an address');
      if (input.privateIpAddress !== undefined && input.privateIpAddress !== instance.privateIp) {
        throw Ec2Error.invalidParameterValue('PrivateIpAddress', input.privateIpAddress, `The instance's private address is ${instance.privateIp}.`);
      }
      if (address.instanceId === instance.id) {
        if (input.dryRun) throw Ec2Error.dryRun();
        return { id: address.associationId!, zones: [] as string[] };
      }
      if (address.instanceId && !input.allowReassociation) {
        throw new Ec2Error('Resource.AlreadyAssociated', `resource ${address.allocationId} is already associated with associate-id ${address.associationId}`);
      }
      if (input.dryRun) throw Ec2Error.dryRun();
      const zones = [instance.zone];
      if (address.instanceId) {
        await this.repo.disassociate(tx, address.allocationId);
        const previous = await this.leave(tx, address.instanceId, now);
        if (previous) zones.push(previous);
      }
      await this.repo.dropPublicAddressOf(tx, instance.id);
      const associationId = newId('eipassoc');
      await this.repo.associate(tx, address.allocationId, instance.id, instance.privateIp, associationId);
      return { id: associationId, zones };
    });
    this.publisher.changed(zones);
    return id;
  }

  /** DisassociateAddress: an address that is not associated is left as it is. */
  async disassociate(caller: Caller, now: Date, ref: AddressRef, dryRun: boolean): Promise<void> {
    const zone = await this.repo.transaction(async (tx) => {
      const address = await this.lockAddress(tx, caller, ref);
      if (dryRun) throw Ec2Error.dryRun();
      if (!address.instanceId) return undefined;
      await this.repo.disassociate(tx, address.allocationId);
      return this.leave(tx, address.instanceId, now);
    });
    if (zone) this.publisher.changed([zone]);
  }

  /** ReleaseAddress by allocation id (the admin: any account's) or public IP (the caller's own). */
  async release(caller: Caller, now: Date, ref: AddressRef, dryRun = false): Promise<void> {
    const zone = await this.repo.transaction(async (tx) => {
      const row = await this.lockAddress(tx, caller, ref);
      let z: string | undefined;
      if (row.instanceId) {
        if (row.domain === 'vpc') throw new Ec2Error('InvalidIPAddress.InUse', `Address ${row.allocationId} is in use.`);
      }
      if (dryRun) throw Ec2Error.dryRun();
      if (row.instanceId) {
        await this.repo.disassociate(tx, row.allocationId);
        // Before the delete: the instance's new address is never the one being released.
        z = await this.leave(tx, row.instanceId, now);
      }
      await this.repo.delete(tx, row.allocationId);
      await this.tags.deleteAllFor(row.allocationId, tx);
      return z;
    });
    if (zone) this.publisher.changed([zone]);
  }
}
