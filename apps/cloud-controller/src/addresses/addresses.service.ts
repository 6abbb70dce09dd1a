import { Inject, Injectable } from '@nestjs/common';
import { KOALA_CONFIG } from '@koala/config';
import { applyFilters, Ec2Error, isValidId, newId, type Filter, type FilterSpec, type Tag, type TagSpecification } from '@koala/ec2-query';
import { DataSource } from 'typeorm';
import { TaggableResources, entityOwners, type Caller } from '../tags/taggable-resources.js';
import { TagsService } from '../tags/tags.service.js';
import { AddressEntity } from './address.entity.js';
import { firstFree, ipToInt, poolRange, type PoolRange } from './address-pool.js';

export const ADDRESS_RESOURCE_TYPE = 'elastic-ip';

/** What the service needs from the configuration. */
export interface AddressesConfig {
  publicIpRange: string;
  addressesPerAccount: number;
}

export interface AddressView {
  address: AddressEntity;
  tags: Tag[];
}

const ADDRESS_FILTERS: FilterSpec<AddressView> = {
  'public-ip': (v) => v.address.publicIp,
  'allocation-id': (v) => v.address.allocationId,
  domain: (v) => v.address.domain,
  'instance-id': (v) => v.address.instanceId,
  'association-id': (v) => v.address.associationId,
  'private-ip-address': (v) => v.address.privateIpAddress,
};

/** Serialises allocations cluster-wide (pg_advisory_xact_lock key). */
const ALLOCATION_LOCK = 0x6b6f616c; // "koal"

/**
 * Elastic IP addresses from the pool KOALA_PUBLIC_IP_RANGE. Allocations take a transaction-level
 * advisory lock (per-account limit and lowest free address decided under it) and `public_ip`
 * is unique, so two concurrent allocations never get the same address.
 */
@Injectable()
export class AddressesService {
  private readonly pool: PoolRange;
  private readonly limit: number;

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    private readonly tags: TagsService,
    @Inject(KOALA_CONFIG) config: AddressesConfig,
    registry: TaggableResources,
  ) {
    this.pool = poolRange(config.publicIpRange);
    this.limit = config.addressesPerAccount;
    registry.register({
      prefix: 'eipalloc',
      resourceType: ADDRESS_RESOURCE_TYPE,
      notFoundCode: 'InvalidAllocationID.NotFound',
      owners: entityOwners(AddressEntity, { idColumn: 'allocationId' }),
    });
  }

  /** AllocateAddress: the lowest free address of the pool. */
  async allocate(caller: Caller, now: Date, input: { domain: 'vpc' | 'standard'; tagSpecifications: readonly TagSpecification[] }): Promise<AddressView> {
    this.tags.checkTagSpecifications(ADDRESS_RESOURCE_TYPE, input.tagSpecifications);
    return this.ds.transaction(async (em) => {
      await em.query('SELECT pg_advisory_xact_lock($1)', [ALLOCATION_LOCK]);
      const repo = em.getRepository(AddressEntity);
      const mine = await repo.count({ where: { accountId: caller.id } });
      if (mine >= this.limit) throw new Ec2Error('AddressLimitExceeded', 'The maximum number of addresses has been reached.');
      const used: Array<{ public_ip: string }> = await em.query('SELECT public_ip FROM addresses');
      const ip = firstFree(this.pool, used.map((u) => u.public_ip));
      if (!ip) {
        throw new Ec2Error('InsufficientAddressCapacity', 'There are no free addresses left in the public address pool of this cloud.', 500);
      }
      const address = repo.create({
        allocationId: newId('eipalloc'),
        accountId: caller.id,
        publicIp: ip,
        domain: input.domain,
        instanceId: null,
        associationId: null,
        privateIpAddress: null,
        createdAt: now,
      });
      await repo.insert(address);
      const tags = await this.tags.applyTagSpecifications(caller, ADDRESS_RESOURCE_TYPE, address.allocationId, input.tagSpecifications, em);
      return { address, tags };
    });
  }

  /** DescribeAddresses: the caller's addresses (the admin's: every account's), sorted by address. */
  async describe(caller: Caller, q: { publicIps: readonly string[]; allocationIds: readonly string[]; filters: readonly Filter[] }): Promise<AddressView[]> {
    for (const id of q.allocationIds) if (!isValidId('eipalloc', id)) throw Ec2Error.malformed('InvalidAllocationID.Malformed', id);
    const rows = await this.ds.getRepository(AddressEntity).find({ where: caller.isAdmin ? {} : { accountId: caller.id } });
    rows.sort((a, b) => ipToInt(a.publicIp) - ipToInt(b.publicIp));
    for (const ip of q.publicIps) if (!rows.some((r) => r.publicIp === ip)) throw Ec2Error.notFound('InvalidAddress.NotFound', ip);
    for (const id of q.allocationIds) if (!rows.some((r) => r.allocationId === id)) throw Ec2Error.notFound('InvalidAllocationID.NotFound', id);
    const selected = rows.filter(
      (r) => (!q.publicIps.length || q.publicIps.includes(r.publicIp)) && (!q.allocationIds.length || q.allocationIds.includes(r.allocationId)),
    );
    const tags = await this.tags.tagsOf(selected.map((r) => r.allocationId));
    const views = selected.map((address) => ({ address, tags: tags.get(address.allocationId) ?? [] }));
    return applyFilters(views, q.filters, ADDRESS_FILTERS, (v) => v.tags);
  }

  /** ReleaseAddress by allocation id (the admin: any account's) or public IP (the caller's own); refused while associated. */
  async release(caller: Caller, by: { publicIp?: string; allocationId?: string }): Promise<void> {
    await this.ds.transaction(async (em) => {
      const repo = em.getRepository(AddressEntity);
      let row: AddressEntity | null;
      if (by.allocationId !== undefined) {
        if (!isValidId('eipalloc', by.allocationId)) throw Ec2Error.malformed('InvalidAllocationID.Malformed', by.allocationId);
        row = await repo.findOne({ where: { allocationId: by.allocationId }, lock: { mode: 'pessimistic_write' } });
        if (!row || (row.accountId !== caller.id && !caller.isAdmin)) throw Ec2Error.notFound('InvalidAllocationID.NotFound', by.allocationId);
      } else {
        const ip = by.publicIp ?? '';
        row = await repo.findOne({ where: { publicIp: ip, accountId: caller.id }, lock: { mode: 'pessimistic_write' } });
        if (!row) throw Ec2Error.notFound('InvalidAddress.NotFound', ip);
      }
      if (row.associationId || row.instanceId) {
        throw new Ec2Error('InvalidIPAddress.InUse', `Address ${row.allocationId} is in use.`);
      }
      await repo.delete({ allocationId: row.allocationId });
      await this.tags.deleteAllFor(row.allocationId, em);
    });
  }
}
