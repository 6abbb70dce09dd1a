// QuotaService's own decisions on an in-memory QuotasStore and a fake type table: which limits
// apply (defaults, overrides), which usage each kind reads and under which lock, partial
// admission of RunInstances, the admin's exemption, the operator's `koala quota set` checks.
// The arithmetic of each limit is quota-rules.spec.ts; the SQL is test/resources/quotas.e2e-spec.ts.
import { Ec2Error } from '@koala/ec2-query';
import type { InstanceTypeSpec } from '../instance-types/instance-types.table.js';
import { MAX_QUOTA_VALUE, QUOTA_NAMES, type QuotaDefaultsConfig, type QuotaRequest, type QuotaUsage } from './quota-rules.js';
import { QuotaService, QuotaUsageError, type QuotaCaller } from './quota.service.js';
import type { QuotasStore, Tx, UsageKind } from './quotas.repository.js';

const TX = { fakeTx: true } as unknown as Tx;
const ADMIN: QuotaCaller = { id: '000000000001', isAdmin: true };
const ALICE: QuotaCaller = { id: '111111111111', isAdmin: false };
const BOB: QuotaCaller = { id: '222222222222', isAdmin: false };

const CONFIG: QuotaDefaultsConfig = {
  quotaInstances: 5,
  quotaVcpus: 8,
  quotaVolumes: 3,
  quotaVolumeGiB: 100,
  quotaSnapshots: 2,
  quotaImages: 4,
  quotaImageFetches: 1,
  quotaKeyPairs: 2,
  quotaSecurityGroups: 3,
  quotaRulesPerGroup: 10,
  addressesPerAccount: 1,
};

/** Usage and overrides in memory; records every call so a spec can see what was read and locked. */
class FakeQuotasStore implements QuotasStore {
  readonly overridesOf = new Map<string, Map<string, number>>();
  readonly usageOf = new Map<string, QuotaUsage>();
  readonly instancesOf = new Map<string, Array<{ instanceType: string; count: number }>>();
  readonly calls: string[] = [];

  async lockAccount(tx: Tx, accountId: string) {
    expect(tx).toBe(TX);
    this.calls.push(`lock ${accountId}`);
  }
  async overrides(accountId: string, _tx?: Tx) {
    this.calls.push(`overrides ${accountId}`);
    return [...(this.overridesOf.get(accountId) ?? new Map<string, number>())].map(([name, value]) => ({ name, value }));
  }
  async setOverride(accountId: string, name: string, value: number, _now: Date) {
    this.calls.push(`set ${accountId} ${name} ${value}`);
    const m = this.overridesOf.get(accountId) ?? new Map<string, number>();
    m.set(name, value);
    this.overridesOf.set(accountId, m);
  }
  async deleteOverride(accountId: string, name: string) {
    this.calls.push(`delete ${accountId} ${name}`);
    return this.overridesOf.get(accountId)?.delete(name) ?? false;
  }
  async instancesByType(tx: Tx, accountId: string) {
    expect(tx).toBe(TX);
    this.calls.push(`instances ${accountId}`);
    return this.instancesOf.get(accountId) ?? [];
  }
  async usage(tx: Tx, accountId: string, kinds: readonly Exclude<UsageKind, 'instances'>[]) {
    expect(tx).toBe(TX);
    this.calls.push(`usage ${accountId} ${kinds.join(',')}`);
    return { ...this.usageOf.get(accountId) };
  }
}

const TYPES: Record<string, Pick<InstanceTypeSpec, 'vcpus'>> = { 'm1.small': { vcpus: 1 }, 'c1.medium': { vcpus: 2 }, 'm1.xlarge': { vcpus: 4 } };
const types = { lookup: (name: string) => TYPES[name] as InstanceTypeSpec | undefined };

let store: FakeQuotasStore;
let quotas: QuotaService;

beforeEach(() => {
  store = new FakeQuotasStore();
  quotas = new QuotaService(store, CONFIG, types);
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Ec2Error) return e.code;
    throw e;
  }
  return 'none';
}

const override = (accountId: string, o: Record<string, number>) => store.overridesOf.set(accountId, new Map(Object.entries(o)));

describe('limits', () => {
  it('are the configured defaults with the account’s own overrides (and nobody else’s)', async () => {
    override(ALICE.id, { vcpus: 2, addresses: 0, bogus: 9 });
    override(BOB.id, { instances: 50 });
    const l = await quotas.limitsOf(ALICE.id);
    expect([l.vcpus, l.addresses, l.instances, l['volume-gib']]).toEqual([2, 0, 5, 100]);
    expect('bogus' in l).toBe(false);
    expect((await quotas.limitsOf(BOB.id)).instances).toBe(50);
  });
});

describe('enforce', () => {
  const cases: Array<[QuotaRequest, Exclude<UsageKind, 'instances'>, QuotaUsage, string]> = [
    [{ kind: 'volume', count: 1, gib: 1 }, 'volumes', { volumes: 3, volumeGiB: 3 }, 'VolumeLimitExceeded'],
    [{ kind: 'snapshot' }, 'snapshots', { snapshots: 2 }, 'SnapshotLimitExceeded'],
    [{ kind: 'image', fetch: false }, 'images', { images: 4, imageFetches: 0 }, 'ResourceLimitExceeded'],
    [{ kind: 'key-pair' }, 'key-pairs', { keyPairs: 2 }, 'ResourceLimitExceeded'],
    [{ kind: 'security-group' }, 'security-groups', { securityGroups: 3 }, 'SecurityGroupLimitExceeded'],
    [{ kind: 'address' }, 'addresses', { addresses: 1 }, 'AddressLimitExceeded'],
  ];

  it.each(cases)('%o: locks the account, reads only its usage (%s), refuses at the limit with its EC2 code', async (request, kind, full, code) => {
    expect(await codeOf(quotas.enforce(TX, ALICE, request))).toBe('none');
    expect(store.calls[0]).toBe(`lock ${ALICE.id}`); // the lock comes before anything is counted
    expect(store.calls).toContain(`usage ${ALICE.id} ${kind}`);
    store.usageOf.set(ALICE.id, full);
    expect(await codeOf(quotas.enforce(TX, ALICE, request))).toBe(code);
  });

  it('counts against the caller’s own overrides', async () => {
    store.usageOf.set(ALICE.id, { keyPairs: 2 });
    override(ALICE.id, { 'key-pairs': 3 });
    await expect(quotas.enforce(TX, ALICE, { kind: 'key-pair' })).resolves.toBeUndefined();
    override(ALICE.id, { 'key-pairs': 0 });
    store.usageOf.set(ALICE.id, {});
    expect(await codeOf(quotas.enforce(TX, ALICE, { kind: 'key-pair' }))).toBe('ResourceLimitExceeded');
  });

  it('the admin account is not subject to quotas: no lock, nothing counted', async () => {
    store.usageOf.set(ADMIN.id, { keyPairs: 1000, addresses: 1000 });
    await expect(quotas.enforce(TX, ADMIN, { kind: 'key-pair' })).resolves.toBeUndefined();
    await expect(quotas.enforce(TX, ADMIN, { kind: 'address' })).resolves.toBeUndefined();
    expect(store.calls).toEqual([]);
  });
});

describe('enforceRules', () => {
  it('checks the rules per direction against the group owner’s limits', async () => {
    override(BOB.id, { 'rules-per-group': 2 });
    await expect(quotas.enforceRules(TX, ALICE, ALICE.id, 10)).resolves.toBeUndefined();
    expect(await codeOf(quotas.enforceRules(TX, ALICE, ALICE.id, 11))).toBe('RulesPerSecurityGroupLimitExceeded');
    expect(await codeOf(quotas.enforceRules(TX, BOB, BOB.id, 3))).toBe('RulesPerSecurityGroupLimitExceeded');
  });

  it('the admin’s own groups are exempt; a group the admin changes for an account keeps that account’s limit', async () => {
    await expect(quotas.enforceRules(TX, ADMIN, ADMIN.id, 10_000)).resolves.toBeUndefined();
    override(ALICE.id, { 'rules-per-group': 1 });
    expect(await codeOf(quotas.enforceRules(TX, ADMIN, ALICE.id, 2))).toBe('RulesPerSecurityGroupLimitExceeded');
  });
});

describe('admitInstances', () => {
  it('admits up to MaxCount within the headroom left by count and vCPUs, under the account’s lock', async () => {
    expect(await quotas.admitInstances(TX, ALICE, { min: 1, max: 3, instanceType: 'm1.small' })).toBe(3);
    expect(store.calls[0]).toBe(`lock ${ALICE.id}`);
    expect(store.calls).toContain(`instances ${ALICE.id}`);
    store.instancesOf.set(ALICE.id, [{ instanceType: 'm1.small', count: 3 }]);
    expect(await quotas.admitInstances(TX, ALICE, { min: 1, max: 5, instanceType: 'm1.small' })).toBe(2); // 5 instances
  });

  it('counts the vCPUs of every running type; a type gone from the table counts one vCPU', async () => {
    // 2 x c1.medium (4) + 1 x retired type (1) = 5 of 8 vCPUs: one more c1.medium fits
    store.instancesOf.set(ALICE.id, [
      { instanceType: 'c1.medium', count: 2 },
      { instanceType: 'x9.retired', count: 1 },
    ]);
    expect(await quotas.admitInstances(TX, ALICE, { min: 1, max: 2, instanceType: 'c1.medium' })).toBe(1);
    expect(await codeOf(quotas.admitInstances(TX, ALICE, { min: 1, max: 1, instanceType: 'm1.xlarge' }))).toBe('VcpuLimitExceeded');
    // a requested type the table does not know counts one vCPU too
    expect(await quotas.admitInstances(TX, ALICE, { min: 1, max: 9, instanceType: 'x9.retired' })).toBe(2); // by count: 5 - 3
  });

  it('InstanceLimitExceeded when fewer than MinCount fit; the overrides apply', async () => {
    store.instancesOf.set(ALICE.id, [{ instanceType: 'm1.small', count: 4 }]);
    expect(await codeOf(quotas.admitInstances(TX, ALICE, { min: 2, max: 2, instanceType: 'm1.small' }))).toBe('InstanceLimitExceeded');
    override(ALICE.id, { instances: 6 });
    expect(await quotas.admitInstances(TX, ALICE, { min: 2, max: 4, instanceType: 'm1.small' })).toBe(2);
  });

  it('the admin launches MaxCount, nothing locked or counted', async () => {
    store.instancesOf.set(ADMIN.id, [{ instanceType: 'm1.xlarge', count: 100 }]);
    expect(await quotas.admitInstances(TX, ADMIN, { min: 1, max: 20, instanceType: 'm1.xlarge' })).toBe(20);
    expect(store.calls).toEqual([]);
  });
});

describe('koala quota list / set', () => {
  it('lists every quota with its value and whether the account overrides it', async () => {
    override(ALICE.id, { vcpus: 2 });
    const list = await quotas.list(ALICE.id);
    expect(list.map((q) => q.name)).toEqual([...QUOTA_NAMES]);
    expect(list.find((q) => q.name === 'vcpus')).toEqual({ name: 'vcpus', value: 2, source: 'account' });
    expect(list.find((q) => q.name === 'instances')).toEqual({ name: 'instances', value: 5, source: 'default' });
  });

  it('sets a whole number, `default` removes the override', async () => {
    const now = new Date('2026-12-01T00:00:00Z');
    await quotas.set(ALICE.id, 'vcpus', '0', now);
    expect((await quotas.limitsOf(ALICE.id)).vcpus).toBe(0);
    await quotas.set(ALICE.id, 'vcpus', String(MAX_QUOTA_VALUE), now);
    expect((await quotas.limitsOf(ALICE.id)).vcpus).toBe(MAX_QUOTA_VALUE);
    await quotas.set(ALICE.id, 'vcpus', 'default', now);
    expect((await quotas.limitsOf(ALICE.id)).vcpus).toBe(8);
    expect(store.calls.filter((c) => !c.startsWith('overrides'))).toEqual([`set ${ALICE.id} vcpus 0`, `set ${ALICE.id} vcpus ${MAX_QUOTA_VALUE}`, `delete ${ALICE.id} vcpus`]);
  });

  it('refuses unknown names and values that are not whole numbers in range, writing nothing', async () => {
    const now = new Date();
    await expect(quotas.set(ALICE.id, 'cores', '1', now)).rejects.toThrow(QuotaUsageError);
    await expect(quotas.set(ALICE.id, 'cores', 'default', now)).rejects.toThrow(/unknown quota "cores"/);
    for (const bad of ['-1', '1.5', '', ' 1', '1e3', 'ten', String(MAX_QUOTA_VALUE + 1), '99999999999']) {
      await expect(quotas.set(ALICE.id, 'vcpus', bad, now)).rejects.toThrow(QuotaUsageError);
    }
    expect(store.calls).toEqual([]);
  });
});
