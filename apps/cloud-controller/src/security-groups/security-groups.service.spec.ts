// SecurityGroupsService's own rules on in-memory fakes of its repository, the tags store and its
// ports (usage, quotas, changes): validation, the default group, all-or-nothing writes, access,
// rule identity on authorize/revoke, and what blocks a delete. The SQL (and the concurrent
// creation of the default group) is covered by test/resources/security-groups.e2e-spec.ts.
import { Ec2Error, type Tag } from '@koala/ec2-query';
import { TaggableResources } from '../tags/taggable-resources.js';
import { TagsService } from '../tags/tags.service.js';
import { FakeTagsStore } from '../tags/testing/fake-tags-store.js';
import type { Tx } from '../tags/tags.repository.js';
import type { RuleInput } from './ip-permissions.js';
import type { SecurityGroupChanges, SecurityGroupUsage } from './security-group-usage.js';
import { SecurityGroupsService } from './security-groups.service.js';
import { FakeSecurityGroupsStore } from './testing/fake-security-groups-store.js';
import { codeOf } from '../testing/ec2-code.js';

const now = new Date('2026-11-26T03:00:00Z');
const ALICE = { id: '111111111111', isAdmin: false };
const BOB = { id: '222222222222', isAdmin: false };
const ADMIN = { id: '999999999999', isAdmin: true };

/** Strict fake: answers the instances configured per group id and records the questions. */
class FakeUsage implements SecurityGroupUsage {
  readonly using = new Map<string, string[]>();
  readonly asked: string[] = [];
  async instancesUsing(groupId: string) {
    this.asked.push(groupId);
    return this.using.get(groupId) ?? [];
  }
}

/** Quotas: records the checks; `refuse` makes the next one fail as a quota would. */
class FakeQuotas {
  readonly checks: string[] = [];
  refuse?: Ec2Error;
  async enforce(_tx: Tx, caller: { id: string }, request: { kind: string }) {
    this.checks.push(`${request.kind}:${caller.id}`);
    if (this.refuse) throw this.refuse;
  }
  async enforceRules(_tx: Tx, _caller: unknown, owner: string, rulesAfter: number) {
    this.checks.push(`rules:${owner}:${rulesAfter}`);
    if (this.refuse) throw this.refuse;
  }
}

class FakeChanges implements SecurityGroupChanges {
  readonly changed: string[] = [];
  rulesChanged(groupId: string) {
    this.changed.push(groupId);
  }
}

let store: FakeSecurityGroupsStore;
let tagStore: FakeTagsStore;
let tags: TagsService;
let usage: FakeUsage;
let quotas: FakeQuotas;
let changes: FakeChanges;
let service: SecurityGroupsService;
beforeEach(() => {
  store = new FakeSecurityGroupsStore();
  tagStore = new FakeTagsStore();
  const registry = new TaggableResources();
  tags = new TagsService(tagStore, registry);
  usage = new FakeUsage();
  quotas = new FakeQuotas();
  changes = new FakeChanges();
  service = new SecurityGroupsService(store, tags, usage, registry, quotas, changes);
});

const create = (caller: typeof ALICE, name: string, tagSpecs: Tag[] = []) =>
  service.create(caller, now, { name, description: `${name} group`, tagSpecifications: tagSpecs.length ? [{ resourceType: 'security-group', tags: tagSpecs }] : [] });
const tcp = (port: number, cidr = '10.0.0.0/8'): RuleInput => ({ ipProtocol: 'tcp', fromPort: port, toPort: port, peer: { kind: 'ipv4', cidr } });
const fromGroup = (peer: { groupId?: string; groupName?: string; userId?: string }): RuleInput => ({ ipProtocol: '-1', fromPort: null, toPort: null, peer: { kind: 'group', ...peer } });

describe('default group', () => {
  it('is created once per account with ingress from itself and egress to all; later calls skip the store', async () => {
    const id = await service.ensureDefaultGroup(ALICE.id, now);
    expect(await service.ensureDefaultGroup(ALICE.id, now)).toBe(id);
    expect(store.transactions).toBe(1);
    expect(store.groups).toEqual([{ id, accountId: ALICE.id, name: 'default', description: 'default group', vpcId: null, createdAt: now }]);
    expect(store.rules.map((r) => [r.isEgress, r.ipProtocol, r.cidrIpv4, r.referencedGroupId, r.referencedUserId])).toEqual([
      [false, '-1', null, id, ALICE.id],
      [true, '-1', '0.0.0.0/0', null, null],
    ]);
  });

  it('another instance of the service finds the existing one', async () => {
    const id = await service.ensureDefaultGroup(ALICE.id, now);
    const other = new SecurityGroupsService(store, tags, usage, new TaggableResources(), quotas);
    expect(await other.ensureDefaultGroup(ALICE.id, now)).toBe(id);
    expect(store.groups).toHaveLength(1);
    expect(store.rules).toHaveLength(2);
  });
});

describe('CreateSecurityGroup', () => {
  it('creates the group with the allow-all egress rule and its tags, under the quota check', async () => {
    const v = await create(ALICE, 'web', [{ key: 'env', value: 'prod' }]);
    expect(v.group).toMatchObject({ accountId: ALICE.id, name: 'web', description: 'web group' });
    expect(v.egress.map((r) => r.cidrIpv4)).toEqual(['0.0.0.0/0']);
    expect(v.tags).toEqual([{ key: 'env', value: 'prod' }]);
    expect(tagStore.rows[0]).toMatchObject({ resourceId: v.group.id, accountId: ALICE.id, resourceType: 'security-group' });
    expect(quotas.checks).toEqual([`security-group:${ALICE.id}`]);
  });

  it('validates name and description', async () => {
    for (const [name, description, code] of [
      ['', 'd', 'MissingParameter'],
      ['default', 'd', 'InvalidParameterValue'],
      ['sg-web', 'd', 'InvalidParameterValue'],
      ['é', 'd', 'InvalidParameterValue'],
      ['web', '', 'MissingParameter'],
      ['web', 'x'.repeat(256), 'InvalidParameterValue'],
    ]) {
      expect(await codeOf(service.create(ALICE, now, { name: name!, description: description!, tagSpecifications: [] }))).toBe(code);
    }
    expect(store.groups).toEqual([]);
  });

  it('a name the account already has → InvalidGroup.Duplicate; another account may use it', async () => {
    await create(ALICE, 'web');
    expect(await codeOf(create(ALICE, 'web'))).toBe('InvalidGroup.Duplicate');
    await create(BOB, 'web');
  });

  it('all or nothing: a refused quota or a failing tag write leaves no group and no rule', async () => {
    await service.ensureDefaultGroup(ALICE.id, now);
    quotas.refuse = new Ec2Error('SecurityGroupLimitExceeded', 'too many');
    expect(await codeOf(create(ALICE, 'web'))).toBe('SecurityGroupLimitExceeded');
    quotas.refuse = undefined;
    tagStore.upsert = async () => {
      throw new Error('tag write failed');
    };
    expect(await codeOf(create(ALICE, 'web', [{ key: 'k', value: 'v' }]))).toBe('Error: tag write failed');
    expect(store.groups.map((g) => g.name)).toEqual(['default']);
    expect(store.rules).toHaveLength(2);
  });
});

describe('DescribeSecurityGroups', () => {
  it('each account sees its own groups, the admin every account’s; others’ are NotFound', async () => {
    const web = await create(ALICE, 'web');
    const db = await create(BOB, 'db');
    const names = async (c: typeof ALICE) => (await service.describe(c, now, { names: [], ids: [], filters: [] })).groups.map((v) => `${v.group.accountId}/${v.group.name}`);
    expect(await names(ALICE)).toEqual(expect.arrayContaining([`${ALICE.id}/default`, `${ALICE.id}/web`]));
    expect(await names(ALICE)).toHaveLength(2);
    expect(await names(ADMIN)).toHaveLength(5); // alice's two, bob's two, the admin's default
    expect(await codeOf(service.describe(ALICE, now, { names: [], ids: [db.group.id], filters: [] }))).toBe('InvalidGroup.NotFound');
    expect(await codeOf(service.describe(ALICE, now, { names: ['db'], ids: [], filters: [] }))).toBe('InvalidGroup.NotFound');
    expect(await codeOf(service.describe(ALICE, now, { names: [], ids: ['sg-nope'], filters: [] }))).toBe('InvalidGroupId.Malformed');
    const one = await service.describe(ALICE, now, { names: [], ids: [web.group.id], filters: [] });
    expect(one.groups.map((v) => v.group.name)).toEqual(['web']);
  });

  it('answers rules by direction, tags, peer names, and filters', async () => {
    const web = await create(ALICE, 'web', [{ key: 'tier', value: 'front' }]);
    const app = await create(ALICE, 'app');
    await service.authorize(ALICE, now, { id: app.group.id }, false, [tcp(22), fromGroup({ groupName: 'web' })]);
    const r = await service.describe(ALICE, now, { names: [], ids: [], filters: [{ name: 'ip-permission.group-name', values: ['web'] }] });
    expect(r.groups.map((v) => v.group.name)).toEqual(['app']);
    expect(r.groups[0]!.ingress.map((x) => x.referencedGroupId ?? x.cidrIpv4)).toEqual(['10.0.0.0/8', web.group.id]);
    expect(r.groups[0]!.egress).toHaveLength(1);
    expect(r.groupNames.get(web.group.id)).toBe('web');
    const tagged = await service.describe(ALICE, now, { names: [], ids: [], filters: [{ name: 'tag:tier', values: ['front'] }] });
    expect(tagged.groups.map((v) => [v.group.name, v.tags])).toEqual([['web', [{ key: 'tier', value: 'front' }]]]);
  });
});

describe('AuthorizeSecurityGroupIngress/Egress', () => {
  it('adds the rules, checks the rule quota of the group’s owner, and reports the change', async () => {
    const web = await create(ALICE, 'web');
    const r = await service.authorize(ALICE, now, { name: 'web' }, false, [tcp(80), tcp(443)]);
    expect(r.rules.map((x) => x.fromPort)).toEqual([80, 443]);
    expect(quotas.checks).toContain(`rules:${ALICE.id}:2`);
    expect(changes.changed).toEqual([web.group.id]);
  });

  it('a rule already there, or twice in the request → InvalidPermission.Duplicate, nothing written', async () => {
    await create(ALICE, 'web');
    await service.authorize(ALICE, now, { name: 'web' }, false, [tcp(22)]);
    const before = store.rules.length;
    expect(await codeOf(service.authorize(ALICE, now, { name: 'web' }, false, [tcp(80), tcp(22)]))).toBe('InvalidPermission.Duplicate');
    expect(await codeOf(service.authorize(ALICE, now, { name: 'web' }, false, [tcp(81), tcp(81)]))).toBe('InvalidPermission.Duplicate');
    expect(store.rules).toHaveLength(before);
  });

  it('group peers must belong to the group’s account', async () => {
    await create(ALICE, 'web');
    const db = await create(BOB, 'db');
    expect(await codeOf(service.authorize(ALICE, now, { name: 'web' }, false, [fromGroup({ groupId: db.group.id })]))).toBe('InvalidGroup.NotFound');
    expect(await codeOf(service.authorize(ALICE, now, { name: 'web' }, false, [fromGroup({ groupName: 'db' })]))).toBe('InvalidGroup.NotFound');
    expect(await codeOf(service.authorize(ALICE, now, { name: 'web' }, false, [fromGroup({ groupName: 'default', userId: BOB.id })]))).toBe('InvalidGroup.NotFound');
    await service.authorize(ALICE, now, { name: 'web' }, false, [fromGroup({ groupName: 'default', userId: ALICE.id })]);
  });

  it('by id: another account’s group is NotFound, except for the admin; by name: only the caller’s own', async () => {
    const web = await create(ALICE, 'web');
    expect(await codeOf(service.authorize(BOB, now, { id: web.group.id }, false, [tcp(22)]))).toBe('InvalidGroup.NotFound');
    expect(await codeOf(service.authorize(ADMIN, now, { name: 'web' }, false, [tcp(22)]))).toBe('InvalidGroup.NotFound');
    const r = await service.authorize(ADMIN, now, { id: web.group.id }, true, [tcp(22)]);
    expect(r.group.accountId).toBe(ALICE.id);
    expect(await codeOf(service.authorize(ALICE, now, {}, false, [tcp(22)]))).toBe('MissingParameter');
    expect(await codeOf(service.authorize(ALICE, now, { id: 'sg-1' }, false, [tcp(22)]))).toBe('InvalidGroupId.Malformed');
  });
});

describe('RevokeSecurityGroupIngress/Egress', () => {
  it('removes what matches, reports the rest as unknown; nothing at all → InvalidPermission.NotFound', async () => {
    await create(ALICE, 'web');
    await service.authorize(ALICE, now, { name: 'web' }, false, [tcp(22), tcp(80)]);
    const r = await service.revoke(ALICE, now, { name: 'web' }, false, [tcp(22), tcp(23)]);
    expect([r.revoked.map((x) => x.fromPort), r.unknown.map((x) => x.fromPort)]).toEqual([[22], [23]]);
    expect(await codeOf(service.revoke(ALICE, now, { name: 'web' }, false, [tcp(22)]))).toBe('InvalidPermission.NotFound');
    expect(await codeOf(service.revoke(ALICE, now, { name: 'web' }, true, [tcp(80)]))).toBe('InvalidPermission.NotFound');
  });

  it('by rule id, in the group and direction only (else nothing is revoked)', async () => {
    const web = await create(ALICE, 'web');
    const [rule] = (await service.authorize(ALICE, now, { name: 'web' }, false, [tcp(22)])).rules;
    expect(await codeOf(service.revoke(ALICE, now, { name: 'web' }, true, [], [rule!.id]))).toBe('InvalidSecurityGroupRuleId.NotFound');
    expect(await codeOf(service.revoke(ALICE, now, { name: 'web' }, false, [tcp(80)], [rule!.id, 'sgr-00000000000000000']))).toBe('InvalidSecurityGroupRuleId.NotFound');
    expect(store.rules.some((r) => r.id === rule!.id)).toBe(true);
    expect((await service.revoke(ALICE, now, { id: web.group.id }, false, [], [rule!.id])).revoked.map((r) => r.id)).toEqual([rule!.id]);
  });
});

describe('DeleteSecurityGroup', () => {
  it('refuses the default group, a group another group references, and a group in use', async () => {
    const defaultId = await service.ensureDefaultGroup(ALICE.id, now);
    expect(await codeOf(service.delete(ALICE, now, { id: defaultId }))).toBe('CannotDelete');
    await create(ALICE, 'web');
    const app = await create(ALICE, 'app');
    await service.authorize(ALICE, now, { name: 'app' }, false, [fromGroup({ groupName: 'web' })]);
    expect(await codeOf(service.delete(ALICE, now, { name: 'web' }))).toBe('DependencyViolation');
    usage.using.set(app.group.id, ['i-0123456789abcdef0']);
    expect(await codeOf(service.delete(ALICE, now, { id: app.group.id }))).toBe('InvalidGroup.InUse');
    expect(usage.asked).toEqual([app.group.id]);
    expect(store.groups).toHaveLength(3);
  });

  it('removes the group, its rules and its tags; a group referencing only itself may go', async () => {
    const web = await create(ALICE, 'web', [{ key: 'k', value: 'v' }]);
    await service.authorize(ALICE, now, { name: 'web' }, false, [fromGroup({ groupName: 'web' })]);
    expect(await service.delete(ALICE, now, { name: 'web' })).toBe(web.group.id);
    expect(store.groups.map((g) => g.name)).toEqual(['default']);
    expect(store.rules.every((r) => r.groupId !== web.group.id)).toBe(true);
    expect(tagStore.rows).toEqual([]);
  });

  it('another account’s group by id → NotFound; the admin may delete it', async () => {
    const web = await create(ALICE, 'web');
    expect(await codeOf(service.delete(BOB, now, { id: web.group.id }))).toBe('InvalidGroup.NotFound');
    expect(await service.delete(ADMIN, now, { id: web.group.id })).toBe(web.group.id);
  });
});

it('registers security groups as taggable: CreateTags resolves their owners through the store', async () => {
  const web = await create(ALICE, 'web');
  await tags.createTags(ADMIN, [web.group.id], [{ key: 'by', value: 'admin' }]);
  expect(tagStore.rows[0]).toMatchObject({ resourceId: web.group.id, accountId: ALICE.id, resourceType: 'security-group' });
  expect(await codeOf(tags.createTags(BOB, [web.group.id], [{ key: 'x', value: '' }]))).toBe('InvalidGroup.NotFound');
});
