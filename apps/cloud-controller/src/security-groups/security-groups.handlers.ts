import { Inject, Injectable } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { checkDryRun, Ec2Error, FILTER_SHAPES, PAGE_SHAPES, type Params, readFilters, readTagSpecifications, TAG_SPECIFICATION_SHAPES } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { defaultVpcId } from '../network/addressing.js';
import { tagSet } from '../tags/tags.service.js';
import { readRuleInputs, toIpPermissions } from './ip-permissions.js';
import type { GroupRow, RuleRow } from './security-groups.repository.js';
import { SecurityGroupsService, type GroupRef, type GroupView } from './security-groups.service.js';

/** The rules of Authorize/Revoke, new form (`IpPermissions.N.*`) and old form (see `readRuleInputs`). */
const RULE_SHAPES = [
  'IpPermissions.N.IpProtocol',
  'IpPermissions.N.FromPort',
  'IpPermissions.N.ToPort',
  'IpPermissions.N.IpRanges.N.CidrIp',
  'IpPermissions.N.IpRanges.N.Description',
  'IpPermissions.N.Ipv6Ranges.N.CidrIpv6',
  'IpPermissions.N.Ipv6Ranges.N.Description',
  'IpPermissions.N.Groups.N.GroupId',
  'IpPermissions.N.Groups.N.GroupName',
  'IpPermissions.N.Groups.N.UserId',
  'IpPermissions.N.Groups.N.Description',
  'IpPermissions.N.PrefixListIds.N.PrefixListId',
  'IpProtocol',
  'FromPort',
  'ToPort',
  'CidrIp',
  'SourceSecurityGroupName',
  'SourceSecurityGroupOwnerId',
];

function groupRef(p: Params): GroupRef {
  return { id: p.str('GroupId') || undefined, name: p.str('GroupName') || undefined };
}

function groupItem(v: GroupView, names: ReadonlyMap<string, string>, vpcId: string) {
  return {
    ownerId: v.group.accountId,
    groupId: v.group.id,
    groupName: v.group.name,
    groupDescription: v.group.description,
    vpcId,
    ipPermissions: toIpPermissions(v.ingress, names),
    ipPermissionsEgress: toIpPermissions(v.egress, names),
    tagSet: tagSet(v.tags),
  };
}

/** The members a rule has in both SecurityGroupRule (Authorize*) and RevokedSecurityGroupRule shapes. */
function ruleCore(group: GroupRow, r: RuleRow) {
  return {
    securityGroupRuleId: r.id,
    groupId: group.id,
    isEgress: r.isEgress,
    ipProtocol: r.ipProtocol,
    fromPort: r.fromPort ?? -1,
    toPort: r.toPort ?? -1,
    cidrIpv4: r.cidrIpv4 ?? undefined,
    cidrIpv6: r.cidrIpv6 ?? undefined,
  };
}

/** A `SecurityGroupRule` as Authorize* returns it (ports -1 when the protocol has none). */
function ruleItem(group: GroupRow, r: RuleRow) {
  return {
    ...ruleCore(group, r),
    groupOwnerId: group.accountId,
    referencedGroupInfo: r.referencedGroupId ? { groupId: r.referencedGroupId, userId: r.referencedUserId ?? undefined } : undefined,
    description: r.description ?? undefined,
    tagSet: [],
  };
}

/** A `RevokedSecurityGroupRule`. */
function revokedItem(group: GroupRow, r: RuleRow) {
  return { ...ruleCore(group, r), referencedGroupId: r.referencedGroupId ?? undefined, description: r.description ?? undefined };
}

/** Create/Describe/Delete security groups; Authorize/Revoke ingress and egress rules. */
@Injectable()
export class SecurityGroupsHandlers {
  constructor(
    private readonly groups: SecurityGroupsService,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
  ) {}

  /** Every group is in the region's default VPC (the flat zone networks). */
  private get vpcId(): string {
    return defaultVpcId(this.config.region);
  }

  @Ec2Action('CreateSecurityGroup', { params: ['GroupName', 'GroupDescription', 'VpcId', ...TAG_SPECIFICATION_SHAPES, 'DryRun'] })
  async create(ctx: Ec2Context) {
    const p = ctx.params;
    const name = p.str('GroupName', { required: true });
    const description = p.str('GroupDescription', { required: true });
    const vpcId = p.str('VpcId') || undefined;
    if (vpcId !== undefined && vpcId !== this.vpcId) throw new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${vpcId.slice(0, 64)}' does not exist`);
    const tagSpecifications = readTagSpecifications(p);
    checkDryRun(p);
    const v = await this.groups.create(ctx.account, ctx.now, { name, description, vpcId: this.vpcId, tagSpecifications });
    return { return: true, groupId: v.group.id, tagSet: v.tags.length ? tagSet(v.tags) : undefined };
  }

  @Ec2Action('DescribeSecurityGroups', { params: ['GroupName.N', 'GroupId.N', ...FILTER_SHAPES, ...PAGE_SHAPES, 'DryRun'] })
  async describe(ctx: Ec2Context) {
    const p = ctx.params;
    const q = { names: p.list('GroupName'), ids: p.list('GroupId'), filters: readFilters(p), maxResults: p.int('MaxResults'), nextToken: p.str('NextToken'), vpcId: this.vpcId };
    checkDryRun(p);
    const { groups, nextToken, groupNames } = await this.groups.describe(ctx.account, ctx.now, q);
    return { securityGroupInfo: groups.map((g) => groupItem(g, groupNames, this.vpcId)), nextToken };
  }

  @Ec2Action('DeleteSecurityGroup', { params: ['GroupId', 'GroupName', 'DryRun'] })
  async delete(ctx: Ec2Context) {
    const ref = groupRef(ctx.params);
    checkDryRun(ctx.params);
    const groupId = await this.groups.delete(ctx.account, ctx.now, ref);
    return { return: true, groupId };
  }

  @Ec2Action('AuthorizeSecurityGroupIngress', { params: ['GroupId', 'GroupName', ...RULE_SHAPES, 'DryRun'] })
  authorizeIngress(ctx: Ec2Context) {
    return this.authorize(ctx, false);
  }

  @Ec2Action('AuthorizeSecurityGroupEgress', { params: ['GroupId', 'GroupName', ...RULE_SHAPES, 'DryRun'] })
  authorizeEgress(ctx: Ec2Context) {
    return this.authorize(ctx, true);
  }

  @Ec2Action('RevokeSecurityGroupIngress', { params: ['GroupId', 'GroupName', ...RULE_SHAPES, 'SecurityGroupRuleId.N', 'DryRun'] })
  revokeIngress(ctx: Ec2Context) {
    return this.revoke(ctx, false);
  }

  @Ec2Action('RevokeSecurityGroupEgress', { params: ['GroupId', 'GroupName', ...RULE_SHAPES, 'SecurityGroupRuleId.N', 'DryRun'] })
  revokeEgress(ctx: Ec2Context) {
    return this.revoke(ctx, true);
  }

  private async authorize(ctx: Ec2Context, isEgress: boolean) {
    const p = ctx.params;
    const ref = groupRef(p);
    const inputs = readRuleInputs(p);
    checkDryRun(p);
    const { group, rules } = await this.groups.authorize(ctx.account, ctx.now, ref, isEgress, inputs);
    return { return: true, securityGroupRuleSet: rules.map((r) => ruleItem(group, r)) };
  }

  private async revoke(ctx: Ec2Context, isEgress: boolean) {
    const p = ctx.params;
    const ref = groupRef(p);
    const ruleIds = p.list('SecurityGroupRuleId');
    const inputs = ruleIds.length && !p.hasAny('IpPermissions') && !p.has('IpProtocol') ? [] : readRuleInputs(p);
    checkDryRun(p);
    const { group, revoked, unknown } = await this.groups.revoke(ctx.account, ctx.now, ref, isEgress, inputs, ruleIds);
    return {
      return: true,
      unknownIpPermissionSet: unknown.length ? toIpPermissions(unknown) : undefined,
      revokedSecurityGroupRuleSet: revoked.map((r) => revokedItem(group, r)),
    };
  }
}
