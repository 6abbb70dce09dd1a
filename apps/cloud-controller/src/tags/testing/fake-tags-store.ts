import type { Tag } from '@koala/ec2-query';
import { accessOf, allows, type Caller } from '../../persistence/access-scope.js';
import { fakeTransaction, onRollback, removeWhere } from '../../persistence/testing/fake-tx.js';
import type { TagRow, TagsStore, Tx } from '../tags.repository.js';

/** TagsStore in memory, answering as TagsRepository does (rolls back with `fakeTransaction`). */
export class FakeTagsStore implements TagsStore {
  readonly rows: TagRow[] = [];

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return fakeTransaction(work);
  }

  async upsert(tx: Tx | undefined, row: { accountId: string; resourceType: string; resourceId: string }, tags: readonly Tag[]): Promise<number> {
    for (const t of tags) {
      const existing = this.rows.find((r) => r.resourceId === row.resourceId && r.key === t.key);
      if (existing) {
        const old = existing.value;
        existing.value = t.value;
        onRollback(tx, () => (existing.value = old));
      } else {
        const added: TagRow = { ...row, key: t.key, value: t.value };
        this.rows.push(added);
        onRollback(tx, () => this.rows.splice(this.rows.indexOf(added), 1));
      }
    }
    return this.rows.filter((r) => r.resourceId === row.resourceId).length;
  }

  async delete(tx: Tx | undefined, resourceIds: readonly string[], match?: { key: string; value?: string }): Promise<void> {
    removeWhere(tx, this.rows, (r) => resourceIds.includes(r.resourceId) && (!match || (r.key === match.key && (match.value === undefined || r.value === match.value))));
  }

  async visible(caller: Caller): Promise<TagRow[]> {
    return this.rows.filter((r) => allows(accessOf(caller, r), 'see')).map((r) => ({ ...r }));
  }

  async of(_tx: Tx | undefined, resourceIds: readonly string[]): Promise<TagRow[]> {
    return this.rows.filter((r) => resourceIds.includes(r.resourceId)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
