import { Inject, Injectable, Optional } from '@nestjs/common';
import { applyFilters, Ec2Error, isValidId, newId, paginate, type Filter, type FilterSpec, type Tag, type TagSpecification } from '@koala/ec2-query';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import { isUniqueViolation } from '../persistence/pg-errors.js';
import { QuotaService } from '../quotas/quota.service.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { TagsService } from '../tags/tags.service.js';
import { ruleIdentity, ruleLabel, type RuleInput } from './ip-permissions.js';
import { SECURITY_GROUP_CHANGES, SECURITY_GROUP_USAGE, type SecurityGroupChanges, type SecurityGroupUsage } from './security-group-usage.js';
import { SecurityGroupsRepository, type GroupRow, type RuleRow, type SecurityGroupsStore, type Tx } from './security-groups.repository.js';

export const SECURITY_GROUP_RESOURCE_TYPE = 'security-group';
export const DEFAULT_GROUP_NAME = 'default';
export const DEFAULT_GROUP_DESCRIPTION = 'default group';
/** A group named by id (the admin may name any account's) or by name (the caller's own). */
export type GroupRef = { id?: string; name?: string };

export interface GroupView {
  group: GroupRow;
  ingress: RuleRow[];
  egress: RuleRow[];
  tags: Tag[];
}

export interface RevokeResult {
  revoked: RuleRow[];
  /** Requested rules that matched nothing (AWS's `unknownIpPermissionSet`). */
  unknown: RuleRow[];
}

const rulesFilters = (prefix: string, pick: (v: GroupView) => RuleRow[], names: ReadonlyMap<string, string>): FilterSpec<GroupView> => ({
  [`${prefix}protocol`]: (v) => pick(v).map((r) => r.ipProtocol),
  [`${prefix}from-port`]: (v) => pick(v).map((r) => r.fromPort),
  [`${prefix}to-port`]: (v) => pick(v).map((r) => r.toPort),
  [`${prefix}cidr`]: (v) => pick(v).map((r) => r.cidrIpv4),
  [`${prefix}ipv6-cidr`]: (v) => pick(v).map((r) => r.cidrIpv6),
  [`${prefix}group-id`]: (v) => pick(v).map((r) => r.referencedGroupId),
  [`${prefix}group-name`]: (v) => pick(v).map((r) => (r.referencedGroupId ? names.get(r.referencedGroupId) : undefined)),
  [`${prefix}user-id`]: (v) => pick(v).map((r) => r.referencedUserId),
});

function groupFilters(names: ReadonlyMap<string, string>, vpcId: string | undefined): FilterSpec<GroupView> {
  return {
    description: (v) => v.group.description,
    'group-id': (v) => v.group.id,
    'group-name': (v) => v.group.name,
    'owner-id': (v) => v.group.accountId,
    'vpc-id': (v) => vpcId ?? v.group.vpcId,
    ...rulesFilters('ip-permission.', (v) => v.ingress, names),
    ...rulesFilters('egress.ip-permission.', (v) => v.egress, names),
  };
}

function ascii(s: string): boolean {
  return /^[\x20-\x7E]*$/.test(s);
}

/** Group name / description rules (1-255 printable ASCII; names not `sg-*`, not `default`). */
export function validateGroupInput(name: string, description: string): void {
  if (name === '') throw Ec2Error.missingParameter('GroupName');
  if (name.length > 255 || !ascii(name)) throw Ec2Error.invalidParameterValue('GroupName', name, 'Group names must be 1-255 ASCII characters.');
  if (name.startsWith('sg-')) throw Ec2Error.invalidParameterValue('GroupName', name, 'Group names may not be in the format sg-*.');
  if (name === DEFAULT_GROUP_NAME) throw new Ec2Error('InvalidParameterValue', 'Cannot use reserved security group name: default');
  if (description === '') throw Ec2Error.missingParameter('GroupDescription');
  if (description.length > 255 || !ascii(description)) {
    throw Ec2Error.invalidParameterValue('GroupDescription', description, 'Descriptions must be 1-255 ASCII characters.');
  }
}

/**
 * Security groups and their rules.
 *
 * Decisions (AWS behaviour we follow, and where we differ):
 * - One flat network, shown as the region's default VPC: every group is in it (`vpcId`, filter
 *   `vpc-id`; the handler checks a given `VpcId` and passes the id as `q.vpcId`). Groups otherwise behave as AWS VPC groups:
 *   every new group gets the egress rule "all traffic to 0.0.0.0/0", and egress rules can be
 *   authorized and revoked.
 * - Each account's `default` group ("default group") is created on first use of any security
 *   group action, with ingress "all traffic from the same group" and the allow-all egress. It
 *   cannot be deleted (`CannotDelete`, as VPC) and its name cannot be reused.
 * - Authorize: all rules of a request or none; a rule already present (description ignored) →
 *   `InvalidPermission.Duplicate`. Old form without a protocol but with a source group means
 *   tcp 0-65535, udp 0-65535 and icmp -1 (EC2-Classic); old form without any peer means 0.0.0.0/0.
 *   Group peers must be groups of the same account (UserId, if given, must be that account).
 * - Revoke (AWS's current documented behaviour): rules that exist are removed and the others are
 *   answered in `unknownIpPermissionSet` with `return` true; when nothing matched at all →
 *   `InvalidPermission.NotFound` (as EC2-Classic and moto). `SecurityGroupRuleId.N` also accepted.
 * - Delete: `DependencyViolation` while another group's rule references it; `InvalidGroup.InUse`
 *   while the `SecurityGroupUsage` port reports instances.
 * - Admin (see Ec2Context): Describe lists every account's groups; by id the admin may act on any.
 */
@Injectable()
export class SecurityGroupsService {
  /** account → its default group's id, once known: a default group is never deleted, so every later action skips the upsert transaction. */
  private readonly defaultGroups = new Map<string, string>();

  constructor(
    @Inject(SecurityGroupsRepository) private readonly repo: SecurityGroupsStore,
    @Inject(TagsService) private readonly tags: TagsService,
    @Inject(SECURITY_GROUP_USAGE) private readonly usage: SecurityGroupUsage,
    @Inject(TaggableResources) registry: TaggableResources,
    @Inject(QuotaService) private readonly quotas: Pick<QuotaService, 'enforce' | 'enforceRules'>,
    @Optional() @Inject(SECURITY_GROUP_CHANGES) private readonly changes?: SecurityGroupChanges,
  ) {
    registry.register({
      prefix: 'sg',
      resourceType: SECURITY_GROUP_RESOURCE_TYPE,
      notFoundCode: 'InvalidGroup.NotFound',
      owners: (tx, ids) => this.repo.owners(tx, ids),
    });
  }

  /** The account's `default` group, created (with its two rules) on first use. Returns its id. */
  async ensureDefaultGroup(accountId: string, now: Date): Promise<string> {
    const known = this.defaultGroups.get(accountId);
    if (known) return known;
    const id = await this.createDefaultGroup(accountId, now);
    if (this.defaultGroups.size >= 10_000) this.defaultGroups.clear();
    this.defaultGroups.set(accountId, id);
    return id;
  }

  private createDefaultGroup(accountId: string, now: Date): Promise<string> {
    return this.repo.transaction(async (tx) => {
      const group: GroupRow = { id: newId('sg'), accountId, name: DEFAULT_GROUP_NAME, description: DEFAULT_GROUP_DESCRIPTION, vpcId: null, createdAt: now };
      if (!(await this.repo.insertGroupIfAbsent(tx, group))) {
        // another request created it first (it committed: the insert waited for it)
        return (await this.repo.groupOf(tx, accountId, { name: DEFAULT_GROUP_NAME }))!.id;
      }
      await this.repo.insertRules(tx, [
        this.rule(group.id, false, now, { ipProtocol: '-1', referencedGroupId: group.id, referencedUserId: accountId }),
        this.rule(group.id, true, now, { ipProtocol: '-1', cidrIpv4: '0.0.0.0/0' }),
      ]);
      return group.id;
    });
  }

  /** CreateSecurityGroup: the group with the default egress rule and its tags, in one transaction. */
  async create(caller: Caller, now: Date, input: { name: string; description: string; vpcId?: string; tagSpecifications: readonly TagSpecification[] }): Promise<GroupView> {
    validateGroupInput(input.name, input.description);
    this.tags.checkTagSpecifications(SECURITY_GROUP_RESOURCE_TYPE, input.tagSpecifications);
    await this.ensureDefaultGroup(caller.id, now);
    try {
      return await this.repo.transaction(async (tx) => {
        await this.quotas.enforce(tx, caller, { kind: 'security-group' });
        const group: GroupRow = { id: newId('sg'), accountId: caller.id, name: input.name, description: input.description, vpcId: input.vpcId ?? null, createdAt: now };
        await this.repo.insertGroup(tx, group);
        const egress = this.rule(group.id, true, now, { ipProtocol: '-1', cidrIpv4: '0.0.0.0/0' });
        await this.repo.insertRules(tx, [egress]);
        const tags = await this.tags.applyTagSpecifications(caller, SECURITY_GROUP_RESOURCE_TYPE, group.id, input.tagSpecifications, tx);
        return { group, ingress: [], egress: [egress], tags };
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw Ec2Error.duplicate('InvalidGroup.Duplicate', `The security group '${input.name}' already exists`);
      throw e;
    }
  }

  /**
   * DescribeSecurityGroups: the groups the caller may see (the admin: every account's), sorted by
   * id, filtered and paginated. Unknown requested names/ids → `InvalidGroup.NotFound`.
   */
  async describe(
    caller: Caller,
    now: Date,
    q: { names: readonly string[]; ids: readonly string[]; filters: readonly Filter[]; maxResults?: number; nextToken?: string; vpcId?: string },
  ): Promise<{ groups: GroupView[]; nextToken?: string; groupNames: Map<string, string> }> {
    for (const id of q.ids) if (!isValidId('sg', id)) throw Ec2Error.malformed('InvalidGroupId.Malformed', id);
    await this.ensureDefaultGroup(caller.id, now);
    const all = await this.repo.visibleGroups(caller);
    for (const name of q.names) if (!all.some((g) => g.name === name)) throw Ec2Error.notFound('InvalidGroup.NotFound', name);
    for (const id of q.ids) if (!all.some((g) => g.id === id)) throw Ec2Error.notFound('InvalidGroup.NotFound', id);
    const selected = all.filter((g) => (!q.names.length || q.names.includes(g.name)) && (!q.ids.length || q.ids.includes(g.id)));
    const { views, groupNames } = await this.views(selected, all);
    const matching = applyFilters(views, q.filters, groupFilters(groupNames, q.vpcId), (v) => v.tags);
    const { page, nextToken } = paginate(matching, {
      maxResults: q.maxResults,
      nextToken: q.nextToken,
      keyOf: (v) => v.group.id,
      scope: 'DescribeSecurityGroups',
    });
    return { groups: page, nextToken, groupNames };
  }

  /** The groups with their rules and tags, and the names of every group they or their rules name. */
  private async views(groups: readonly GroupRow[], known: readonly GroupRow[]): Promise<{ views: GroupView[]; groupNames: Map<string, string> }> {
    const ids = groups.map((g) => g.id);
    // rules and tags in parallel (two pool connections): one round trip less per describe
    const [rules, tags] = await Promise.all([ids.length ? this.repo.rulesOf(undefined, ids) : [], this.tags.tagsOf(ids)]);
    const groupNames = new Map(known.map((g) => [g.id, g.name]));
    const missing = [...new Set(rules.map((r) => r.referencedGroupId).filter((x): x is string => !!x && !groupNames.has(x)))];
    if (missing.length) for (const g of await this.repo.groupsByIds(missing)) groupNames.set(g.id, g.name);
    const rulesOf = new Map<string, RuleRow[]>();
    for (const r of rules) {
      const list = rulesOf.get(r.groupId);
      if (list) list.push(r);
      else rulesOf.set(r.groupId, [r]);
    }
    const views = groups.map((group) => ({
      group,
      ingress: (rulesOf.get(group.id) ?? []).filter((r) => !r.isEgress),
      egress: (rulesOf.get(group.id) ?? []).filter((r) => r.isEgress),
      tags: tags.get(group.id) ?? [],
    }));
    return { views, groupNames };
  }

  /** AuthorizeSecurityGroupIngress/Egress: adds every rule or none (`InvalidPermission.Duplicate`). */
  async authorize(caller: Caller, now: Date, ref: GroupRef, isEgress: boolean, inputs: readonly RuleInput[]): Promise<{ group: GroupRow; rules: RuleRow[] }> {
    await this.ensureDefaultGroup(caller.id, now);
    const done = await this.repo.transaction(async (tx) => {
      const group = await this.resolveGroup(tx, caller, ref, true);
      const wanted = await this.toRules(tx, group, isEgress, now, inputs);
      const existing = await this.repo.rulesOf(tx, [group.id], isEgress);
      const seen = new Set(existing.map(ruleIdentity));
      for (const r of wanted) {
        const k = ruleIdentity(r);
        if (seen.has(k)) {
          throw Ec2Error.duplicate('InvalidPermission.Duplicate', `the specified rule "${ruleLabel(r)}" already exists`);
        }
        seen.add(k);
      }
      // The group row is locked: concurrent authorizes on it count one after the other.
      await this.quotas.enforceRules(tx, caller, group.accountId, seen.size);
      await this.repo.insertRules(tx, wanted);
      return { group, rules: wanted };
    });
    this.changes?.rulesChanged(done.group.id);
    return done;
  }

  /**
   * RevokeSecurityGroupIngress/Egress. Removes the rules that exist; the others are reported
   * as unknown (AWS's current behaviour). When nothing matches at all → `InvalidPermission.NotFound`.
   * `ruleIds` (SecurityGroupRuleId.N) must all exist in the group and direction.
   */
  async revoke(caller: Caller, now: Date, ref: GroupRef, isEgress: boolean, inputs: readonly RuleInput[], ruleIds: readonly string[] = []): Promise<RevokeResult & { group: GroupRow }> {
    await this.ensureDefaultGroup(caller.id, now);
    const done = await this.repo.transaction(async (tx) => {
      const group = await this.resolveGroup(tx, caller, ref, true);
      const wanted = await this.toRules(tx, group, isEgress, now, inputs);
      const existing = await this.repo.rulesOf(tx, [group.id], isEgress);
      const byIdentity = new Map(existing.map((r) => [ruleIdentity(r), r]));
      const revoked = new Map<string, RuleRow>();
      const unknown: RuleRow[] = [];
      for (const w of wanted) {
        const hit = byIdentity.get(ruleIdentity(w));
        if (hit) revoked.set(hit.id, hit);
        else unknown.push(w);
      }
      for (const id of ruleIds) {
        const hit = existing.find((r) => r.id === id);
        if (!hit) throw new Ec2Error('InvalidSecurityGroupRuleId.NotFound', `The security group rule ID '${id}' does not exist`);
        revoked.set(hit.id, hit);
      }
      if (revoked.size === 0) throw Ec2Error.notFound('InvalidPermission.NotFound', '');
      await this.repo.deleteRules(tx, [...revoked.keys()]);
      return { group, revoked: [...revoked.values()], unknown };
    });
    this.changes?.rulesChanged(done.group.id);
    return done;
  }

  /** DeleteSecurityGroup: not `default`, not referenced by another group, not used by instances. */
  async delete(caller: Caller, now: Date, ref: GroupRef): Promise<string> {
    await this.ensureDefaultGroup(caller.id, now);
    return this.repo.transaction(async (tx) => {
      const group = await this.resolveGroup(tx, caller, ref, true);
      if (group.name === DEFAULT_GROUP_NAME) {
        throw new Ec2Error('CannotDelete', `the specified group: "${group.id}" name: "default" cannot be deleted by a user`);
      }
      if (await this.repo.referencedByOtherGroups(tx, group.id)) throw new Ec2Error('DependencyViolation', `resource ${group.id} has a dependent object`);
      const instances = await this.usage.instancesUsing(group.id, tx);
      if (instances.length) throw new Ec2Error('InvalidGroup.InUse', `There are active instances using security group '${group.name}'`);
      await this.repo.deleteGroup(tx, group.id);
      await this.tags.deleteAllFor(group.id, tx);
      return group.id;
    });
  }

  /**
   * The group named by `ref`, locked for update when `lock`: by id, any group the caller may
   * change (the one access rule; else `InvalidGroup.NotFound`); by name, the caller's own.
   */
  async resolveGroup(tx: Tx, caller: Caller, ref: GroupRef, lock = false): Promise<GroupRow> {
    if (ref.id !== undefined) {
      if (!isValidId('sg', ref.id)) throw Ec2Error.malformed('InvalidGroupId.Malformed', ref.id);
      const g = await this.repo.groupById(tx, ref.id, lock);
      if (!g || !allows(accessOf(caller, g), 'change')) throw Ec2Error.notFound('InvalidGroup.NotFound', ref.id);
      return g;
    }
    if (!ref.name) throw new Ec2Error('MissingParameter', 'The request must contain the parameter groupName or groupId');
    const g = await this.repo.groupOf(tx, caller.id, { name: ref.name }, lock);
    if (!g) throw Ec2Error.notFound('InvalidGroup.NotFound', ref.name);
    return g;
  }

  /** Rule rows for `inputs`; group peers must be groups of the same account as `group`. */
  private async toRules(tx: Tx, group: GroupRow, isEgress: boolean, now: Date, inputs: readonly RuleInput[]): Promise<RuleRow[]> {
    const out: RuleRow[] = [];
    for (const i of inputs) {
      const base = { ipProtocol: i.ipProtocol, fromPort: i.fromPort, toPort: i.toPort, description: i.peer.description ?? null };
      if (i.peer.kind === 'ipv4') out.push(this.rule(group.id, isEgress, now, { ...base, cidrIpv4: i.peer.cidr }));
      else if (i.peer.kind === 'ipv6') out.push(this.rule(group.id, isEgress, now, { ...base, cidrIpv6: i.peer.cidr }));
      else {
        const peer = i.peer;
        const label = peer.groupId ?? peer.groupName!;
        if (peer.userId !== undefined && peer.userId !== group.accountId) throw Ec2Error.notFound('InvalidGroup.NotFound', label);
        const ref = peer.groupId
          ? isValidId('sg', peer.groupId)
            ? await this.repo.groupOf(tx, group.accountId, { id: peer.groupId })
            : undefined
          : await this.repo.groupOf(tx, group.accountId, { name: peer.groupName! });
        if (!ref) throw Ec2Error.notFound('InvalidGroup.NotFound', label);
        out.push(this.rule(group.id, isEgress, now, { ...base, referencedGroupId: ref.id, referencedUserId: ref.accountId }));
      }
    }
    return out;
  }

  private rule(groupId: string, isEgress: boolean, now: Date, r: Partial<RuleRow> & { ipProtocol: string }): RuleRow {
    return {
      id: newId('sgr'),
      groupId,
      isEgress,
      fromPort: null,
      toPort: null,
      cidrIpv4: null,
      cidrIpv6: null,
      referencedGroupId: null,
      referencedUserId: null,
      description: null,
      createdAt: now,
      ...r,
    };
  }
}
