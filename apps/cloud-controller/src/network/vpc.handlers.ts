import { Inject, Injectable } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { applyFilters, checkDryRun, Ec2Error, FILTER_SHAPES, PAGE_SHAPES, paginate, readFilters, TAG_SPECIFICATION_SHAPES, type Params, type XmlValue } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { SUBNET_FILTERS, subnetItem, VPC_FILTERS, vpcItem } from './default-vpc.js';
import { VpcService } from './vpc.service.js';

const noTags = () => [];

/** An action that would make the network other than one flat network per zone. */
function flatNetwork(action: string): never {
  throw new Ec2Error(
    'UnsupportedOperation',
    `${action} is not supported: this cloud has one flat network per availability zone, shown as the region's default VPC with one default subnet per zone (DescribeVpcs, DescribeSubnets).`,
  );
}

const described = (p: Params, ids: string) => ({ ids: p.list(ids), filters: readFilters(p), maxResults: p.int('MaxResults'), nextToken: p.str('NextToken') });

/**
 * The default-VPC face: DescribeAccountAttributes, DescribeVpcs, DescribeSubnets answer the
 * region's one VPC and each zone's default subnet; actions that would create or change VPCs and
 * subnets answer UnsupportedOperation.
 */
@Injectable()
export class VpcHandlers {
  constructor(
    @Inject(VpcService) private readonly vpcs: VpcService,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
  ) {}

  @Ec2Action('DescribeAccountAttributes', { params: ['AttributeName.N', 'DryRun'] })
  async describeAccountAttributes(ctx: Ec2Context): Promise<Record<string, XmlValue>> {
    const p = ctx.params;
    const names = p.list('AttributeName');
    checkDryRun(p);
    const all = await this.vpcs.accountAttributes(ctx.account.id);
    const unknown = names.filter((n) => !Object.prototype.hasOwnProperty.call(all, n));
    if (unknown.length) throw Ec2Error.invalidParameterValue('AttributeName', unknown[0]!.slice(0, 64), `Valid names: ${Object.keys(all).join(', ')}.`);
    const chosen = names.length ? [...new Set(names)] : Object.keys(all);
    return { accountAttributeSet: chosen.map((n) => ({ attributeName: n, attributeValueSet: all[n]!.map((v) => ({ attributeValue: v })) })) };
  }

  @Ec2Action('DescribeVpcs', { params: ['VpcId.N', ...FILTER_SHAPES, ...PAGE_SHAPES, 'DryRun'] })
  async describeVpcs(ctx: Ec2Context): Promise<Record<string, XmlValue>> {
    const q = described(ctx.params, 'VpcId');
    checkDryRun(ctx.params);
    const vpc = this.vpcs.vpc(ctx.account.id);
    const missing = q.ids.filter((id) => id !== vpc.vpcId);
    if (missing.length) throw new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${missing[0]!.slice(0, 64)}' does not exist`);
    const { page, nextToken } = paginate(applyFilters([vpc], q.filters, VPC_FILTERS, noTags), { ...q, keyOf: (v) => v.vpcId, scope: ctx.action });
    return { vpcSet: page.map(vpcItem), nextToken };
  }

  @Ec2Action('DescribeSubnets', { params: ['SubnetId.N', ...FILTER_SHAPES, ...PAGE_SHAPES, 'DryRun'] })
  async describeSubnets(ctx: Ec2Context): Promise<Record<string, XmlValue>> {
    const q = described(ctx.params, 'SubnetId');
    checkDryRun(ctx.params);
    const all = await this.vpcs.subnets(ctx.account.id);
    const missing = q.ids.filter((id) => !all.some((s) => s.subnetId === id));
    if (missing.length) throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${missing[0]!.slice(0, 64)}' does not exist`);
    const chosen = q.ids.length ? all.filter((s) => q.ids.includes(s.subnetId)) : all;
    const { page, nextToken } = paginate(applyFilters(chosen, q.filters, SUBNET_FILTERS, noTags), { ...q, keyOf: (s) => s.subnetId, scope: ctx.action });
    return { subnetSet: page.map((s) => subnetItem(s, this.config.region)), nextToken };
  }

  // What a flat zone network cannot be asked: EC2's parameters are accepted only to answer UnsupportedOperation.
  @Ec2Action('CreateVpc', { params: [], ignored: ['CidrBlock', 'AmazonProvidedIpv6CidrBlock', 'InstanceTenancy', 'Ipv4IpamPoolId', 'Ipv4NetmaskLength', ...TAG_SPECIFICATION_SHAPES, 'DryRun'] })
  async createVpc(): Promise<never> {
    flatNetwork('CreateVpc');
  }

  @Ec2Action('CreateDefaultVpc', { params: [], ignored: ['DryRun'] })
  async createDefaultVpc(): Promise<never> {
    flatNetwork('CreateDefaultVpc (the default VPC always exists)');
  }

  @Ec2Action('DeleteVpc', { params: [], ignored: ['VpcId', 'DryRun'] })
  async deleteVpc(): Promise<never> {
    flatNetwork('DeleteVpc');
  }

  @Ec2Action('ModifyVpcAttribute', { params: [], ignored: ['VpcId', 'EnableDnsHostnames.Value', 'EnableDnsSupport.Value', 'EnableNetworkAddressUsageMetrics.Value'] })
  async modifyVpcAttribute(): Promise<never> {
    flatNetwork('ModifyVpcAttribute');
  }

  @Ec2Action('AssociateVpcCidrBlock', { params: [], ignored: ['VpcId', 'CidrBlock', 'AmazonProvidedIpv6CidrBlock'] })
  async associateVpcCidrBlock(): Promise<never> {
    flatNetwork('AssociateVpcCidrBlock');
  }

  @Ec2Action('CreateSubnet', { params: [], ignored: ['VpcId', 'CidrBlock', 'Ipv6CidrBlock', 'AvailabilityZone', 'AvailabilityZoneId', 'Ipv6Native', ...TAG_SPECIFICATION_SHAPES, 'DryRun'] })
  async createSubnet(): Promise<never> {
    flatNetwork('CreateSubnet');
  }

  @Ec2Action('CreateDefaultSubnet', { params: [], ignored: ['AvailabilityZone', 'Ipv6Native', 'DryRun'] })
  async createDefaultSubnet(): Promise<never> {
    flatNetwork('CreateDefaultSubnet (every zone has its default subnet)');
  }

  @Ec2Action('DeleteSubnet', { params: [], ignored: ['SubnetId', 'DryRun'] })
  async deleteSubnet(): Promise<never> {
    flatNetwork('DeleteSubnet');
  }

  @Ec2Action('ModifySubnetAttribute', { params: [], ignored: ['SubnetId', 'MapPublicIpOnLaunch.Value', 'AssignIpv6AddressOnCreation.Value', 'EnableDns64.Value'] })
  async modifySubnetAttribute(): Promise<never> {
    flatNetwork('ModifySubnetAttribute (KOALA_ASSOCIATE_PUBLIC_IP sets the public-address default)');
  }
}
