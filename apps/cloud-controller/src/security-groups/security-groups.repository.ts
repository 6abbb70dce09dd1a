/**
 * Every query of security groups, in plain SQL: `security_groups` (unique per account and name)
 * and `security_group_rules` (listed in insertion order, `seq`).
 */
import type { DataSource, EntityManager } from 'typeorm';
import { scopeSqlPositional, type Caller } from '../persistence/access-scope.js';
import type { RuleLike } from './ip-permissions.js';

/** A transaction (or the pool's manager). Services only pass it through to repositories. */
export type Tx = EntityManager;

export interface GroupRow {
  id: string;
  accountId: string;
  name: string;
  description: string;
  vpcId: string | null;
  createdAt: Date;
}

export interface RuleRow extends RuleLike {
  id: string;
  groupId: string;
  isEgress: boolean;
  createdAt: Date;
}

/** How a group is named within one account. */
export type GroupKey = { id: string } | { name: string };

/** What SecurityGroupsService needs from storage (the real one: SecurityGroupsRepository; tests: a fake). `tx` omitted: the pool. */
export interface SecurityGroupsStore {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Inserts the group; a taken (account, name) throws PostgreSQL's unique violation. */
  insertGroup(tx: Tx, g: GroupRow): Promise<void>;
  /** Inserts the group unless the account has one of that name; whether it was inserted. */
  insertGroupIfAbsent(tx: Tx, g: GroupRow): Promise<boolean>;
  /** A group by id (any account), row-locked when `lock`. */
  groupById(tx: Tx | undefined, id: string, lock?: boolean): Promise<GroupRow | undefined>;
  /** The account's group by id or name, row-locked when `lock`. */
  groupOf(tx: Tx | undefined, accountId: string, key: GroupKey, lock?: boolean): Promise<GroupRow | undefined>;
  /** Groups by id, of any account (to name the peers of rules). */
  groupsByIds(ids: readonly string[]): Promise<GroupRow[]>;
  /** The groups the caller may see (the one access rule), by id. */
  visibleGroups(caller: Caller): Promise<GroupRow[]>;
  /** Owner of each of `ids` that exists (TaggableKind.owners). */
  owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>>;
  insertRules(tx: Tx, rules: readonly RuleRow[]): Promise<void>;
  /** The rules of the groups (one direction when `isEgress` is given), in insertion order. */
  rulesOf(tx: Tx | undefined, groupIds: readonly string[], isEgress?: boolean): Promise<RuleRow[]>;
  deleteRules(tx: Tx, ruleIds: readonly string[]): Promise<void>;
  /** Whether a rule of another group names this one as its peer. */
  referencedByOtherGroups(tx: Tx, groupId: string): Promise<boolean>;
  /** The group and its rules. */
  deleteGroup(tx: Tx, groupId: string): Promise<void>;
}

const GROUP = `g.id, g.account_id AS "accountId", g.name, g.description, g.vpc_id AS "vpcId", g.created_at AS "createdAt"`;
const RULE = `r.id, r.group_id AS "groupId", r.is_egress AS "isEgress", r.ip_protocol AS "ipProtocol", r.from_port AS "fromPort", r.to_port AS "toPort",
  r.cidr_ipv4 AS "cidrIpv4", r.cidr_ipv6 AS "cidrIpv6", r.referenced_group_id AS "referencedGroupId", r.referenced_user_id AS "referencedUserId",
  r.description, r.created_at AS "createdAt"`;
const INSERT_GROUP = `INSERT INTO security_groups (id, account_id, name, description, vpc_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)`;

export class SecurityGroupsRepository implements SecurityGroupsStore {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.ds.transaction((em) => work(em));
  }

  async insertGroup(tx: Tx, g: GroupRow): Promise<void> {
    await tx.query(INSERT_GROUP, groupParams(g));
  }

  async insertGroupIfAbsent(tx: Tx, g: GroupRow): Promise<boolean> {
    const rows: unknown[] = await tx.query(`${INSERT_GROUP} ON CONFLICT (account_id, name) DO NOTHING RETURNING id`, groupParams(g));
    return rows.length > 0;
  }

  async groupById(tx: Tx | undefined, id: string, lock = false): Promise<GroupRow | undefined> {
    const rows: GroupRow[] = await (tx ?? this.ds.manager).query(`SELECT ${GROUP} FROM security_groups g WHERE g.id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
    return rows[0];
  }

  async groupOf(tx: Tx | undefined, accountId: string, key: GroupKey, lock = false): Promise<GroupRow | undefined> {
    const [column, value] = 'id' in key ? ['id', key.id] : ['name', key.name];
    const rows: GroupRow[] = await (tx ?? this.ds.manager).query(`SELECT ${GROUP} FROM security_groups g WHERE g.account_id = $1 AND g.${column} = $2${lock ? ' FOR UPDATE' : ''}`, [accountId, value]);
    return rows[0];
  }

  groupsByIds(ids: readonly string[]): Promise<GroupRow[]> {
    return this.ds.query(`SELECT ${GROUP} FROM security_groups g WHERE g.id = ANY($1)`, [[...ids]]);
  }

  visibleGroups(caller: Caller): Promise<GroupRow[]> {
    const scope = scopeSqlPositional(caller, 'g', 'see', 1);
    return this.ds.query(`SELECT ${GROUP} FROM security_groups g WHERE ${scope.where} ORDER BY g.id ASC`, scope.params);
  }

  async owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>> {
    const rows: Array<{ id: string; account_id: string }> = await tx.query('SELECT id, account_id FROM security_groups WHERE id = ANY($1)', [[...ids]]);
    return new Map(rows.map((r) => [r.id, r.account_id]));
  }

  async insertRules(tx: Tx, rules: readonly RuleRow[]): Promise<void> {
    if (!rules.length) return;
    const params: unknown[] = [];
    const values = rules.map(
      (r) =>
        `(${[r.id, r.groupId, r.isEgress, r.ipProtocol, r.fromPort, r.toPort, r.cidrIpv4, r.cidrIpv6, r.referencedGroupId, r.referencedUserId, r.description, r.createdAt]
          .map((v) => `$${params.push(v)}`)
          .join(', ')})`,
    );
    await tx.query(
      `INSERT INTO security_group_rules (id, group_id, is_egress, ip_protocol, from_port, to_port, cidr_ipv4, cidr_ipv6, referenced_group_id, referenced_user_id, description, created_at)
       VALUES ${values.join(', ')}`,
      params,
    );
  }

  rulesOf(tx: Tx | undefined, groupIds: readonly string[], isEgress?: boolean): Promise<RuleRow[]> {
    const direction = isEgress === undefined ? '' : ' AND r.is_egress = $2';
    const params = isEgress === undefined ? [[...groupIds]] : [[...groupIds], isEgress];
    return (tx ?? this.ds.manager).query(`SELECT ${RULE} FROM security_group_rules r WHERE r.group_id = ANY($1)${direction} ORDER BY r.seq ASC`, params);
  }

  async deleteRules(tx: Tx, ruleIds: readonly string[]): Promise<void> {
    await tx.query('DELETE FROM security_group_rules WHERE id = ANY($1)', [[...ruleIds]]);
  }

  async referencedByOtherGroups(tx: Tx, groupId: string): Promise<boolean> {
    const rows: unknown[] = await tx.query('SELECT 1 FROM security_group_rules WHERE referenced_group_id = $1 AND group_id <> $1 LIMIT 1', [groupId]);
    return rows.length > 0;
  }

  async deleteGroup(tx: Tx, groupId: string): Promise<void> {
    await tx.query('DELETE FROM security_group_rules WHERE group_id = $1', [groupId]);
    await tx.query('DELETE FROM security_groups WHERE id = $1', [groupId]);
  }
}

function groupParams(g: GroupRow): unknown[] {
  return [g.id, g.accountId, g.name, g.description, g.vpcId, g.createdAt];
}
