import { Injectable } from '@nestjs/common';
import { checkDryRun, Ec2Error, readFilters, readTagSpecifications } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { tagSet } from '../tags/tags.service.js';
import { AddressesService, type AddressView } from './addresses.service.js';

function addressItem(v: AddressView) {
  const a = v.address;
  return {
    publicIp: a.publicIp,
    allocationId: a.allocationId,
    domain: a.domain,
    instanceId: a.instanceId ?? undefined,
    associationId: a.associationId ?? undefined,
    privateIpAddress: a.privateIpAddress ?? undefined,
    tagSet: tagSet(v.tags),
  };
}

/** AllocateAddress, DescribeAddresses, ReleaseAddress (associations come with instances). */
@Injectable()
export class AddressesHandlers {
  constructor(private readonly addresses: AddressesService) {}

  @Ec2Action('AllocateAddress')
  async allocate(ctx: Ec2Context) {
    const p = ctx.params;
    const domain = p.enum('Domain', ['vpc', 'standard'] as const) ?? 'vpc';
    const tagSpecifications = readTagSpecifications(p);
    checkDryRun(p);
    const v = await this.addresses.allocate(ctx.account, ctx.now, { domain, tagSpecifications });
    return { publicIp: v.address.publicIp, domain: v.address.domain, allocationId: v.address.allocationId };
  }

  @Ec2Action('DescribeAddresses')
  async describe(ctx: Ec2Context) {
    const p = ctx.params;
    const items = await this.addresses.describe(ctx.account, { publicIps: p.list('PublicIp'), allocationIds: p.list('AllocationId'), filters: readFilters(p) });
    return { addressesSet: items.map(addressItem) };
  }

  @Ec2Action('ReleaseAddress')
  async release(ctx: Ec2Context) {
    const p = ctx.params;
    const allocationId = p.str('AllocationId') || undefined;
    const publicIp = p.str('PublicIp') || undefined;
    if (!allocationId && !publicIp) throw Ec2Error.missingParameter('AllocationId');
    checkDryRun(p);
    await this.addresses.release(ctx.account, { allocationId, publicIp });
    return { return: true };
  }
}
