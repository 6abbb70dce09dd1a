import { Inject, Injectable, Optional } from '@nestjs/common';
import {
  applyFilters,
  Ec2Error,
  isValidId,
  newId,
  paginate,
  type Filter,
  type FilterSpec,
  type Tag,
  type TagSpecification,
} from '@koala/ec2-query';
import { DataSource, In, Not, QueryFailedError, type EntityManager } from 'typeorm';
import { TaggableResources, entityOwners, type Caller } from '../tags/taggable-resources.js';
import { QuotaService } from '../quotas/quota.service.js';
import { TagsService } from '../tags/tags.service.js';
import { ruleIdentity, ruleLabel, type RuleInput } from './ip-permissions.js';
import { SecurityGroupEntity, SecurityGroupRuleEntity } from './security-group.entity.js';
import { SECURITY_GROUP_CHANGES, SECURITY_GROUP_USAGE, type SecurityGroupChanges, type SecurityGroupUsage } from './security-group-usage.js';

export const SECURITY_GROUP_RESOURCE_TYPE = 'security-group';
export const DEFAULT_GROUP_NAME = 'default';
export const DEFAULT_GROUP_DESCRIPTION = 'default group';
/** Rules per group and direction (AWS's default quota). */

/** A group named by id (the admin may name any account's) or by name (the caller's own). */
export type GroupRef = { id?: string; name?: string };

export interface GroupView {
  group: SecurityGroupEntity;
  ingress: SecurityGroupRuleEntity[];
  egress: SecurityGroupRuleEntity[];
  tags: Tag[];
}

export interface RevokeResult {
  revoked: SecurityGroupRuleEntity[];
  /** Requested rules that matched nothing (AWS's `unknownIpPermissionSet`). */
  unknown: SecurityGroupRuleEntity[];
}

const rulesFilters = (prefix: string, pick: (v: GroupView) => SecurityGroupRuleEntity[], names: ReadonlyMap<string, string>): FilterSpec<GroupView> => ({
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

function isUniqueViolation(e: unknown): boolean {
  return e instanceof QueryFailedError && (e as unknown as { code?: string }).code === '23505';
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
    @Inject(DataSource) private readonly ds: DataSource,
    private readonly tags: TagsService,
    @Inject(SECURITY_GROUP_USAGE) private readonly usage: SecurityGroupUsage,
    registry: TaggableResources,
    @Inject(QuotaService) private readonly quotas: QuotaService,
    @Optional() @Inject(SECURITY_GROUP_CHANGES) private readonly changes?: SecurityGroupChanges,
  ) {
    registry.register({
      prefix: 'sg',
      resourceType: SECURITY_GROUP_RESOURCE_TYPE,
      notFoundCode: 'InvalidGroup.NotFound',
      owners: entityOwners(SecurityGroupEntity),
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
    return this.ds.transaction(async (em) => {
      const id = newId('sg');
      const inserted: Array<{ id: string }> = await em.query(
        `INSERT INTO security_groups (id, account_id, name, description, vpc_id, created_at)
         VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT (account_id, name) DO NOTHING RETURNING id`,
        [id, accountId, DEFAULT_GROUP_NAME, DEFAULT_GROUP_DESCRIPTION, now],
      );
      if (inserted.length === 0) {
        const row = await em.getRepository(SecurityGroupEntity).findOneOrFail({ where: { accountId, name: DEFAULT_GROUP_NAME } });
        return row.id;
      }
      const rules = em.getRepository(SecurityGroupRuleEntity);
      await rules.insert([
        this.rule(id, false, now, { ipProtocol: '-1', referencedGroupId: id, referencedUserId: accountId }),
        this.rule(id, true, now, { ipProtocol: '-1', cidrIpv4: '0.0.0.0/0' }),
      ]);
      return id;
    });
  }

  /** CreateSecurityGroup: the group with the default egress rule and its tags, in one transaction. */
  async create(
    caller: Caller,
    now: Date,
    input: { name: string; description: string; vpcId?: string; tagSpecifications: readonly TagSpecification[] },
  ): Promise<GroupView> {
    validateGroupInput(input.name, input.description);
    this.tags.checkTagSpecifications(SECURITY_GROUP_RESOURCE_TYPE, input.tagSpecifications);
    await this.ensureDefaultGroup(caller.id, now);
    try {
      return await this.ds.transaction(async (em) => {
        await this.quotas.enforce(em, caller, { kind: 'security-group' });
        const group = em.getRepository(SecurityGroupEntity).create({
          id: newId('sg'),
          accountId: caller.id,
          name: input.name,
          description: input.description,
          vpcId: input.vpcId ?? null,
          createdAt: now,
        });
        await em.getRepository(SecurityGroupEntity).insert(group);
        const egress = this.rule(group.id, true, now, { ipProtocol: '-1', cidrIpv4: '0.0.0.0/0' });
        await em.getRepository(SecurityGroupRuleEntity).insert(egress);
        const tags = await this.tags.applyTagSpecifications(caller, SECURITY_GROUP_RESOURCE_TYPE, group.id, input.tagSpecifications, em);
        return { group, ingress: [], egress: [egress], tags };
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw Ec2Error.duplicate('InvalidGroup.Duplicate', `The security group '${input.name}' already exists`);
      throw e;
    }
  }

  /**
   * DescribeSecurityGroups: the caller's groups (the admin's: every account's), sorted by id,
   * filtered and paginated. Unknown requested names/ids → `InvalidGroup.NotFound`.
   */
  async describe(
    caller: Caller,
    now: Date,
    q: { names: readonly string[]; ids: readonly string[]; filters: readonly Filter[]; maxResults?: number; nextToken?: string; vpcId?: string },
  ): Promise<{ groups: GroupView[]; nextToken?: string; groupNames: Map<string, string> }> {
    for (const id of q.ids) if (!isValidId('sg', id)) throw Ec2Error.malformed('InvalidGroupId.Malformed', id);
    await this.ensureDefaultGroup(caller.id, now);
    const em = this.ds.manager;
    const all = await em.getRepository(SecurityGroupEntity).find({ where: caller.isAdmin ? {} : { accountId: caller.id }, order: { id: 'ASC' } });
    for (const name of q.names) if (!all.some((g) => g.name === name)) throw Ec2Error.notFound('InvalidGroup.NotFound', name);
    for (const id of q.ids) if (!all.some((g) => g.id === id)) throw Ec2Error.notFound('InvalidGroup.NotFound', id);
    const selected = all.filter((g) => (!q.names.length || q.names.includes(g.name)) && (!q.ids.length || q.ids.includes(g.id)));
    const ids = selected.map((g) => g.id);
    // rules and tags in parallel (two pool connections): one round trip less per describe
    const [rules, tags] = await Promise.all([
      ids.length ? em.getRepository(SecurityGroupRuleEntity).find({ where: { groupId: In(ids) }, order: { seq: 'ASC' } }) : [],
      this.tags.tagsOf(ids, em),
    ]);
    const groupNames = new Map(all.map((g) => [g.id, g.name]));
    const missing = [...new Set(rules.map((r) => r.referencedGroupId).filter((x): x is string => !!x && !groupNames.has(x)))];
    if (missing.length) {
      for (const g of await em.getRepository(SecurityGroupEntity).find({ where: { id: In(missing) } })) groupNames.set(g.id, g.name);
    }
    const rulesOf = new Map<string, SecurityGroupRuleEntity[]>();
    for (const r of rules) {
      const list = rulesOf.get(r.groupId);
      if (list) list.push(r);
      else rulesOf.set(r.groupId, [r]);
    }
    const views: GroupView[] = selected.map((group) => ({
      group,
      ingress: (rulesOf.get(group.id) ?? []).filter((r) => !r.isEgress),
      egress: (rulesOf.get(group.id) ?? []).filter((r) => r.isEgress),
      tags: tags.get(group.id) ?? [],
    }));
    const matching = applyFilters(views, q.filters, groupFilters(groupNames, q.vpcId), (v) => v.tags);
    const { page, nextToken } = paginate(matching, {
      maxResults: q.maxResults,
      nextToken: q.nextToken,
      keyOf: (v) => v.group.id,
      scope: 'DescribeSecurityGroups',
    });
    return { groups: page, nextToken, groupNames };
  }

  /** AuthorizeSecurityGroupIngress/Egress: adds every rule or none (`InvalidPermission.Duplicate`). */
  async authorize(caller: Caller, now: Date, ref: GroupRef, isEgress: boolean, inputs: readonly RuleInput[]): Promise<{ group: SecurityGroupEntity; rules: SecurityGroupRuleEntity[] }> {
    await this.ensureDefaultGroup(caller.id, now);
    const done = await this.ds.transaction(async (em) => {
      const group = await this.resolveGroup(em, caller, ref, true);
      const wanted = await this.toRules(em, group, isEgress, now, inputs);
      const existing = await em.getRepository(SecurityGroupRuleEntity).find({ where: { groupId: group.id, isEgress } });
      const seen = new Set(existing.map(ruleIdentity));
      for (const r of wanted) {
        const k = ruleIdentity(r);
        if (seen.has(k)) {
          throw Ec2Error.duplicate('InvalidPermission.Duplicate', `the specified rule "${ruleLabel(r)}" already exists`);
        }
        seen.add(k);
      }
      // The group row is locked: concurrent authorizes on it count one after the other.
      await this.quotas.enforceRules(em, caller, group.accountId, seen.size);
      if (wanted.length) await em.getRepository(SecurityGroupRuleEntity).insert(wanted);
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
  async revoke(caller: Caller, now: Date, ref: GroupRef, isEgress: boolean, inputs: readonly RuleInput[], ruleIds: readonly string[] = []): Promise<RevokeResult & { group: SecurityGroupEntity }> {
    await this.ensureDefaultGroup(caller.id, now);
    const done = await this.ds.transaction(async (em) => {
      const group = await this.resolveGroup(em, caller, ref, true);
      const wanted = await this.toRules(em, group, isEgress, now, inputs);
      const existing = await em.getRepository(SecurityGroupRuleEntity).find({ where: { groupId: group.id, isEgress } });
      const byIdentity = new Map(existing.map((r) => [ruleIdentity(r), r]));
      const revoked = new Map<string, SecurityGroupRuleEntity>();
      const unknown: SecurityGroupRuleEntity[] = [];
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
      await em.getRepository(SecurityGroupRuleEntity).delete({ id: In([...revoked.keys()]) });
      return { group, revoked: [...revoked.values()], unknown };
    });
    this.changes?.rulesChanged(done.group.id);
    return done;
  }

  /** DeleteSecurityGroup: not `default`, not referenced by another group, not used by instances. */
  async delete(caller: Caller, now: Date, ref: GroupRef): Promise<string> {
    await this.ensureDefaultGroup(caller.id, now);
    return this.ds.transaction(async (em) => {
      const group = await this.resolveGroup(em, caller, ref, true);
      if (group.name === DEFAULT_GROUP_NAME) {
        throw new Ec2Error('CannotDelete', `the specified group: "${group.id}" name: "default" cannot be deleted by a user`);
      }
      const dependent = await em
        .getRepository(SecurityGroupRuleEntity)
        .exists({ where: { referencedGroupId: group.id, groupId: Not(group.id) } });
      if (dependent) throw new Ec2Error('DependencyViolation', `resource ${group.id} has a dependent object`);
      const instances = await this.usage.instancesUsing(group.id, em);
      if (instances.length) throw new Ec2Error('InvalidGroup.InUse', `There are active instances using security group '${group.name}'`);
      await em.getRepository(SecurityGroupRuleEntity).delete({ groupId: group.id });
      await em.getRepository(SecurityGroupEntity).delete({ id: group.id });
      await this.tags.deleteAllFor(group.id, em);
      return group.id;
    });
  }

  /** The group named by `ref`, locked for update when `lock`; invisible → `InvalidGroup.NotFound`. */
  async resolveGroup(em: EntityManager, caller: Caller, ref: GroupRef, lock = false): Promise<SecurityGroupEntity> {
    const repo = em.getRepository(SecurityGroupEntity);
    const opts = lock ? { lock: { mode: 'pessimistic_write' as const } } : {};
    if (ref.id !== undefined) {
      if (!isValidId('sg', ref.id)) throw Ec2Error.malformed('InvalidGroupId.Malformed', ref.id);
      const g = await repo.findOne({ where: { id: ref.id }, ...opts });
      if (!g || (g.accountId !== caller.id && !caller.isAdmin)) throw Ec2Error.notFound('InvalidGroup.NotFound', ref.id);
      return g;
    }
    if (!ref.name) throw new Ec2Error('MissingParameter', 'The request must contain the parameter groupName or groupId');
    const g = await repo.findOne({ where: { accountId: caller.id, name: ref.name }, ...opts });
    if (!g) throw Ec2Error.notFound('InvalidGroup.NotFound', ref.name);
    return g;
  }

  /** Rule rows for `inputs`; group peers must be groups of the same account as `group`. */
  private async toRules(em: EntityManager, group: SecurityGroupEntity, isEgress: boolean, now: Date, inputs: readonly RuleInput[]): Promise<SecurityGroupRuleEntity[]> {
    const out: SecurityGroupRuleEntity[] = [];
    for (const i of inputs) {
      const base = { ipProtocol: i.ipProtocol, fromPort: i.fromPort, toPort: i.toPort, description: i.peer.description ?? null };
      if (i.peer.kind === 'ipv4') out.push(this.rule(group.id, isEgress, now, { ...base, cidrIpv4: i.peer.cidr }));
      else if (i.peer.kind === 'ipv6') out.push(this.rule(group.id, isEgress, now, { ...base, cidrIpv6: i.peer.cidr }));
      else {
        const peer = i.peer;
        const label = peer.groupId ?? peer.groupName!;
        if (peer.userId !== undefined && peer.userId !== group.accountId) throw Ec2Error.notFound('InvalidGroup.NotFound', label);
        const repo = em.getRepository(SecurityGroupEntity);
        const ref = peer.groupId
          ? isValidId('sg', peer.groupId)
            ? await repo.findOne({ where: { id: peer.groupId, accountId: group.accountId } })
            : null
          : await repo.findOne({ where: { name: peer.groupName!, accountId: group.accountId } });
        if (!ref) throw Ec2Error.notFound('InvalidGroup.NotFound', label);
        out.push(this.rule(group.id, isEgress, now, { ...base, referencedGroupId: ref.id, referencedUserId: ref.accountId }));
      }
    }
    return out;
  }

  private rule(groupId: string, isEgress: boolean, now: Date, r: Partial<SecurityGroupRuleEntity> & { ipProtocol: string }): SecurityGroupRuleEntity {
    return Object.assign(new SecurityGroupRuleEntity(), {
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
    });
  }
}
