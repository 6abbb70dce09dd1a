// SecurityGroupsService on a real PostgreSQL (own database) with a fake SecurityGroupUsage port.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { isEc2Error } from '@koala/ec2-query';
import { ensureDatabase } from '../persistence/ensure-database.js';
import { createDataSource, migrateUp } from '../persistence/data-source.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { createTagsService } from '../tags/tags.service.js';
import { createQuotaService } from '../quotas/quota.service.js';
import { loadConfig } from '@koala/config';
import type { SecurityGroupUsage } from './security-group-usage.js';
import { SecurityGroupsService } from './security-groups.service.js';

const ADMIN_URL = process.env.KOALA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const name = `koala_test_sg_${randomBytes(5).toString('hex')}`;
const url = Object.assign(new URL(ADMIN_URL), { pathname: `/${name}` }).toString();
const now = new Date('2026-11-26T03:00:00Z');
const caller = { id: '123456789012', isAdmin: false };

/** Strict fake: answers the instances configured per group id and records the questions. */
class FakeUsage implements SecurityGroupUsage {
  readonly using = new Map<string, string[]>();
  readonly asked: string[] = [];
  async instancesUsing(groupId: string) {
    this.asked.push(groupId);
    return this.using.get(groupId) ?? [];
  }
}

let ds: DataSource;
let usage: FakeUsage;
let service: SecurityGroupsService;

beforeAll(async () => {
  await ensureDatabase(url);
  ds = await createDataSource(url).initialize();
  await migrateUp(ds);
  await ds.query(`INSERT INTO accounts (id, name) VALUES ($1, 'sg-spec')`, [caller.id]);
  const registry = new TaggableResources();
  usage = new FakeUsage();
  service = new SecurityGroupsService(ds, createTagsService(ds, registry), usage, registry, createQuotaService(ds, loadConfig({})));
}, 30_000);
afterAll(async () => {
  await ds?.destroy();
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await c.end();
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return isEc2Error(e) ? e.code : String(e);
  }
  return undefined;
}

it('creates exactly one default group under concurrent first use', async () => {
  const ids = await Promise.all(Array.from({ length: 8 }, () => service.ensureDefaultGroup(caller.id, now)));
  expect(new Set(ids).size).toBe(1);
  const rows = await ds.query(`SELECT count(*)::int AS n FROM security_groups WHERE account_id = $1 AND name = 'default'`, [caller.id]);
  expect(rows[0].n).toBe(1);
  const rules = await ds.query(`SELECT is_egress, ip_protocol, cidr_ipv4, referenced_group_id FROM security_group_rules WHERE group_id = $1 ORDER BY is_egress`, [ids[0]]);
  expect(rules).toEqual([
    { is_egress: false, ip_protocol: '-1', cidr_ipv4: null, referenced_group_id: ids[0] },
    { is_egress: true, ip_protocol: '-1', cidr_ipv4: '0.0.0.0/0', referenced_group_id: null },
  ]);
});

it('refuses to delete a group the SecurityGroupUsage port reports in use (InvalidGroup.InUse)', async () => {
  const v = await service.create(caller, now, { name: 'busy', description: 'busy', tagSpecifications: [] });
  usage.using.set(v.group.id, ['i-0123456789abcdef0']);
  expect(await codeOf(service.delete(caller, now, { id: v.group.id }))).toBe('InvalidGroup.InUse');
  expect(usage.asked).toContain(v.group.id);
  usage.using.delete(v.group.id);
  expect(await service.delete(caller, now, { name: 'busy' })).toBe(v.group.id);
});

it('a failing TagSpecification leaves no group behind', async () => {
  const specs = [{ resourceType: 'security-group', tags: [{ key: 'aws:reserved', value: '' }] }];
  expect(await codeOf(service.create(caller, now, { name: 'half', description: 'x', tagSpecifications: specs }))).toBe('InvalidParameterValue');
  const rows = await ds.query(`SELECT count(*)::int AS n FROM security_groups WHERE name = 'half'`);
  expect(rows[0].n).toBe(0);
});
