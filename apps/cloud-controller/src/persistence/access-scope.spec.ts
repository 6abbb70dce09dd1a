import { accessOf, allows, scopeSql, scopeSqlPositional, IMAGE_SHARING, type Caller, type ScopedRow } from './access-scope.js';

const owner: Caller = { id: '111111111111', isAdmin: false };
const other: Caller = { id: '222222222222', isAdmin: false };
const admin: Caller = { id: '999999999999', isAdmin: true };

describe('the access rule, on a row already read', () => {
  // Every combination of who calls and how the row is shared.
  const rows: Array<[string, ScopedRow]> = [
    ['private', { accountId: owner.id }],
    ['public', { accountId: owner.id, isPublic: true }],
    ['granted to the other account', { accountId: owner.id, grantedToCaller: true }],
  ];
  const expected: Record<string, Record<string, ReturnType<typeof accessOf>>> = {
    private: { owner: 'owner', other: 'none', admin: 'owner' },
    public: { owner: 'owner', other: 'shared', admin: 'owner' },
    'granted to the other account': { owner: 'owner', other: 'shared', admin: 'owner' },
  };
  for (const [name, row] of rows)
    for (const [who, caller] of Object.entries({ owner, other, admin }))
      it(`${who} on a ${name} row: ${expected[name]![who]}`, () => {
        // A grant names the other account only: for the owner and the admin it is moot.
        const seen = who === 'other' ? row : { ...row, grantedToCaller: false };
        expect(accessOf(caller, seen)).toBe(expected[name]![who]);
      });

  it('lets shared rows be seen, never changed', () => {
    expect([allows('owner', 'see'), allows('owner', 'change')]).toEqual([true, true]);
    expect([allows('shared', 'see'), allows('shared', 'change')]).toEqual([true, false]);
    expect([allows('none', 'see'), allows('none', 'change')]).toEqual([false, false]);
  });
});

describe('the access rule as SQL', () => {
  it('is TRUE for the admin and the owner column otherwise', () => {
    expect(scopeSql(admin, 'i', 'see')).toEqual({ where: 'TRUE', params: {} });
    expect(scopeSql(other, 'i', 'see')).toEqual({ where: 'i.account_id = :scopeAccount', params: { scopeAccount: other.id } });
    expect(scopeSql(other, 'm', 'change', IMAGE_SHARING).where).toBe('m.account_id = :scopeAccount');
  });

  it('admits public and granted rows for seeing a shared kind', () => {
    const s = scopeSql(other, 'm', 'see', IMAGE_SHARING, 'img');
    expect(s.where).toContain('m.is_public');
    expect(s.where).toContain('image_launch_permissions img_g');
    expect(s.params).toEqual({ imgAccount: other.id });
  });

  it('numbers its parameter for plain queries', () => {
    const s = scopeSqlPositional(other, 'm', 'see', 3, IMAGE_SHARING);
    expect(s.where).not.toContain(':');
    expect(s.where.match(/\$3/g)).toHaveLength(2);
    expect(s.params).toEqual([other.id]);
  });
});
