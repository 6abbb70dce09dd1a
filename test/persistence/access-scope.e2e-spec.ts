/**
 * The access rule's SQL and its in-memory form agree on every combination of caller, owner,
 * public flag and grant, for seeing and for changing, against the real PostgreSQL.
 */
import pg from 'pg';
import { accessOf, allows, scopeSql, scopeSqlPositional, type Caller, type Sharing } from '../../apps/cloud-controller/src/persistence/access-scope.js';
import { PG_ADMIN_URL } from '../support/cloud.js';

const SHARING: Sharing = { publicColumn: 'is_public', grants: { table: 'scope_grants', resourceColumn: 'item_id', accountColumn: 'account_id' } };
const accounts = ['111111111111', '222222222222', '333333333333'];

describe('the access rule against PostgreSQL', () => {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  /** Every row shape: each owner × public or not × granted to each subset of the accounts. */
  const rows: Array<{ id: string; accountId: string; isPublic: boolean; grants: string[] }> = [];

  beforeAll(async () => {
    await c.connect();
    // Temporary tables: this session's own, gone when it ends.
    await c.query('CREATE TEMP TABLE scope_items (id text PRIMARY KEY, account_id text NOT NULL, is_public boolean NOT NULL)');
    await c.query('CREATE TEMP TABLE scope_grants (item_id text NOT NULL, account_id text NOT NULL)');
    let n = 0;
    for (const owner of accounts)
      for (const isPublic of [false, true])
        for (let mask = 0; mask < 1 << accounts.length; mask++) {
          const grants = accounts.filter((_, i) => mask & (1 << i));
          const id = `item-${String(n++).padStart(3, '0')}`;
          rows.push({ id, accountId: owner, isPublic, grants });
          await c.query('INSERT INTO scope_items VALUES ($1, $2, $3)', [id, owner, isPublic]);
          for (const g of grants) await c.query('INSERT INTO scope_grants VALUES ($1, $2)', [id, g]);
        }
  });
  afterAll(() => c.end());

  const callers: Caller[] = [...accounts.map((id) => ({ id, isAdmin: false })), { id: '999999999999', isAdmin: true }];
  for (const caller of callers)
    for (const want of ['see', 'change'] as const)
      for (const sharing of [SHARING, undefined])
        it(`${caller.isAdmin ? 'the admin' : caller.id} may ${want} the same rows in SQL as in memory (${sharing ? 'shared kind' : 'unshared kind'})`, async () => {
          const expected = rows
            .filter((r) => allows(accessOf(caller, sharing ? { accountId: r.accountId, isPublic: r.isPublic, grantedToCaller: r.grants.includes(caller.id) } : { accountId: r.accountId }), want))
            .map((r) => r.id);
          // Named parameters, expanded as TypeORM would; and the positional form.
          const named = scopeSql(caller, 'x', want, sharing);
          let text = named.where;
          const values: string[] = [];
          for (const [k, v] of Object.entries(named.params)) {
            values.push(v);
            text = text.replaceAll(`:${k}`, `$${values.length}`);
          }
          const a = await c.query(`SELECT id FROM scope_items x WHERE ${text} ORDER BY id`, values);
          expect(a.rows.map((r) => r.id)).toEqual(expected);
          const p = scopeSqlPositional(caller, 'x', want, 2, sharing);
          const b = await c.query(`SELECT id FROM scope_items x WHERE x.id <> $1 AND ${p.where} ORDER BY id`, ['none', ...p.params]);
          expect(b.rows.map((r) => r.id)).toEqual(expected);
          expect(expected.length).toBeGreaterThan(0);
        });
});
