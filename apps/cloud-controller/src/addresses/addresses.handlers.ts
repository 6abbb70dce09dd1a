import { Injectable } from '@nestjs/common';
import { Ec2Error, FILTER_SHAPES, type Params, readFilters, readTagSpecifications, TAG_SPECIFICATION_SHAPES } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { tagSet } from '../tags/tags.service.js';
import { AddressesService, type AddressRef, type AddressView } from './addresses.service.js';

function addressItem(v: AddressView) {
  const a = v.address;
  return {
    publicIp: a.publicIp,
    allocationId: a.allocationId,
    domain: a.domain,
    instanceId: a.instanceId ?? undefined,
    associationId: a.associationId ?? undefined,
    privateIpAddress: a.privateIpAddress ?? undefined,
    networkInterfaceId: a.networkInterfaceId ?? undefined,
    networkInterfaceOwnerId: a.networkInterfaceId ? a.accountId : undefined,
    tagSet: tagSet(v.tags),
  };
}

const dryRun = (p: Params) => p.bool('DryRun') === true;

/** `AllocationId` or `PublicIp` (and for disassociation `AssociationId`); one is required. */
function readRef(p: Params, names: ReadonlyArray<'AllocationId' | 'AssociationId' | 'PublicIp'>): AddressRef {
  const ref: AddressRef = {};
  for (const n of names) {
    const v = p.str(n) || undefined;
    if (v === undefined) continue;
    if (n === 'AllocationId') ref.allocationId = v;
    else if (n === 'AssociationId') ref.associationId = v;
    else ref.publicIp = v;
  }
  if (!ref.allocationId && !ref.associationId && !ref.publicIp) throw Ec2Error.missingParameter(names[0]!);
  return ref;
}

/** AllocateAddress, AssociateAddress, DisassociateAddress, DescribeAddresses, ReleaseAddress. */
@Injectable()
export class AddressesHandlers {
  constructor(private readonly addresses: AddressesService) {}

  @Ec2Action('AllocateAddress', { params: ['Domain', ...TAG_SPECIFICATION_SHAPES, 'DryRun'] })
  async allocate(ctx: Ec2Context) {
    const p = ctx.params;
    // EC2-Classic's answer unless the default-VPC face is asked for.
    const domain = p.enum('Domain', ['vpc', 'standard'] as const) ?? 'standard';
    const tagSpecifications = readTagSpecifications(p);
    if (dryRun(p)) throw Ec2Error.dryRun();
    const v = await this.addresses.allocate(ctx.account, ctx.now, { domain, tagSpecifications });
    return { publicIp: v.address.publicIp, domain: v.address.domain, allocationId: v.address.allocationId };
  }

  @Ec2Action('AssociateAddress', { params: ['AllocationId', 'PublicIp', 'InstanceId', 'NetworkInterfaceId', 'PrivateIpAddress', 'AllowReassociation', 'DryRun'] })
  async associate(ctx: Ec2Context) {
    const p = ctx.params;
    const associationId = await this.addresses.associate(ctx.account, ctx.now, {
      address: readRef(p, ['AllocationId', 'PublicIp']),
      instanceId: p.str('InstanceId') || undefined,
      networkInterfaceId: p.str('NetworkInterfaceId') || undefined,
      privateIpAddress: p.str('PrivateIpAddress') || undefined,
      allowReassociation: p.bool('AllowReassociation') ?? false,
      dryRun: dryRun(p),
    });
    return { return: true, associationId };
  }

  @Ec2Action('DisassociateAddress', { params: ['AssociationId', 'PublicIp', 'DryRun'] })
  async disassociate(ctx: Ec2Context) {
    const p = ctx.params;
    await this.addresses.disassociate(ctx.account, ctx.now, readRef(p, ['AssociationId', 'PublicIp']), dryRun(p));
    return { return: true };
  }

  @Ec2Action('DescribeAddresses', { params: ['PublicIp.N', 'AllocationId.N', ...FILTER_SHAPES, 'DryRun'] })
  async describe(ctx: Ec2Context) {
    const p = ctx.params;
    const items = await this.addresses.describe(ctx.account, { publicIps: p.list('PublicIp'), allocationIds: p.list('AllocationId'), filters: readFilters(p) });
    if (dryRun(p)) throw Ec2Error.dryRun();
    return { addressesSet: items.map(addressItem) };
  }

  @Ec2Action('ReleaseAddress', { params: ['AllocationId', 'PublicIp', 'DryRun'] })
  async release(ctx: Ec2Context) {
    const p = ctx.params;
    await this.addresses.release(ctx.account, ctx.now, readRef(p, ['AllocationId', 'PublicIp']), dryRun(p));
    return { return: true };
  }
}
