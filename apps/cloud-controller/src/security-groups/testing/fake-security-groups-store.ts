import { accessOf, allows, type Caller } from '../../persistence/access-scope.js';
import { uniqueViolation } from '../../persistence/pg-errors.js';
import { fakeTransaction, onRollback, removeWhere } from '../../persistence/testing/fake-tx.js';
import type { GroupKey, GroupRow, RuleRow, SecurityGroupsStore, Tx } from '../security-groups.repository.js';

/** SecurityGroupsStore in memory, answering as SecurityGroupsRepository does (rolls back with `fakeTransaction`). */
export class FakeSecurityGroupsStore implements SecurityGroupsStore {
  readonly groups: GroupRow[] = [];
  readonly rules: RuleRow[] = [];
  transactions = 0;

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    this.transactions++;
    return fakeTransaction(work);
  }

  async insertGroup(tx: Tx, g: GroupRow): Promise<void> {
    if (!(await this.insertGroupIfAbsent(tx, g))) throw uniqueViolation('security_groups_account_name_key');
  }

  async insertGroupIfAbsent(tx: Tx, g: GroupRow): Promise<boolean> {
    if (this.groups.some((x) => x.accountId === g.accountId && x.name === g.name)) return false;
    const row = { ...g };
    this.groups.push(row);
    onRollback(tx, () => this.groups.splice(this.groups.indexOf(row), 1));
    return true;
  }

  async groupById(_tx: Tx | undefined, id: string): Promise<GroupRow | undefined> {
    return copy(this.groups.find((g) => g.id === id));
  }

  async groupOf(_tx: Tx | undefined, accountId: string, key: GroupKey): Promise<GroupRow | undefined> {
    return copy(this.groups.find((g) => g.accountId === accountId && ('id' in key ? g.id === key.id : g.name === key.name)));
  }

  async groupsByIds(ids: readonly string[]): Promise<GroupRow[]> {
    return this.groups.filter((g) => ids.includes(g.id)).map((g) => ({ ...g }));
  }

  async visibleGroups(caller: Caller): Promise<GroupRow[]> {
    return this.groups
      .filter((g) => allows(accessOf(caller, g), 'see'))
      .map((g) => ({ ...g }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async owners(_tx: Tx, ids: readonly string[]): Promise<Map<string, string>> {
    return new Map(this.groups.filter((g) => ids.includes(g.id)).map((g) => [g.id, g.accountId]));
  }

  async insertRules(tx: Tx, rules: readonly RuleRow[]): Promise<void> {
    for (const r of rules) {
      const row = { ...r };
      this.rules.push(row);
      onRollback(tx, () => this.rules.splice(this.rules.indexOf(row), 1));
    }
  }

  async rulesOf(_tx: Tx | undefined, groupIds: readonly string[], isEgress?: boolean): Promise<RuleRow[]> {
    return this.rules.filter((r) => groupIds.includes(r.groupId) && (isEgress === undefined || r.isEgress === isEgress)).map((r) => ({ ...r }));
  }

  async deleteRules(tx: Tx, ruleIds: readonly string[]): Promise<void> {
    removeWhere(tx, this.rules, (r) => ruleIds.includes(r.id));
  }

  async referencedByOtherGroups(_tx: Tx, groupId: string): Promise<boolean> {
    return this.rules.some((r) => r.referencedGroupId === groupId && r.groupId !== groupId);
  }

  async deleteGroup(tx: Tx, groupId: string): Promise<void> {
    removeWhere(tx, this.rules, (r) => r.groupId === groupId);
    removeWhere(tx, this.groups, (g) => g.id === groupId);
  }
}

function copy<T extends object>(row: T | undefined): T | undefined {
  return row && { ...row };
}
