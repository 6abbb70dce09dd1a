// AddressesService on in-memory fakes of its repository (AddressesStore) and ports (tags, quotas,
// the network-change publisher): its own rules, no database. The real repository is tested by
// test/resources/addresses.e2e-spec.ts and test/instances/network.e2e-spec.ts on PostgreSQL.
import { loadConfig } from '@koala/config';
import { Ec2Error, isEc2Error, Params, type Filter, type TagSpecification } from '@koala/ec2-query';
import type { Ec2Context } from '../ec2/ec2-action.decorator.js';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import type { QuotaRequest } from '../quotas/quota-rules.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { AddressesHandlers } from './addresses.handlers.js';
import type { AddressesStore, AddressRow, ListedAddress, TargetInstance, Tx } from './addresses.repository.js';
import { AddressesService, type AddressNetworkChanges, type AddressQuotas, type AddressRef } from './addresses.service.js';
import { codeOf } from '../testing/ec2-code.js';
import { FakeTags } from '../tags/testing/fake-tags.js';

const TX = { fakeTx: true } as unknown as Tx;
const now = new Date('2026-12-01T00:00:00Z');
const ADMIN: Caller = { id: '000000000001', isAdmin: true };
const ALICE: Caller = { id: '111111111111', isAdmin: false };
const BOB: Caller = { id: '222222222222', isAdmin: false };
// 10.99.0.0/29: the pool is .1 to .6 (network and broadcast never handed out).
const config = loadConfig({ KOALA_PUBLIC_IP_RANGE: '10.99.0.0/29' });

type StoredAddress = AddressRow & { kind: 'elastic' | 'launch' };
type FakeInstance = TargetInstance & { interfaceId: string | null };

/** AddressesStore in memory, answering as AddressesRepository does; a transaction that throws leaves the rows as they were. */
class FakeAddressesStore implements AddressesStore {
  addresses: StoredAddress[] = [];
  readonly instances = new Map<string, FakeInstance>();
  /** Locks and writes in the order taken (shared with the quota fake). */
  readonly log: string[] = [];
  transactions = 0;
  rollbacks = 0;
  /** A store method that throws (a database failure) when called. */
  failOn?: keyof AddressesStore;

  private step(name: keyof AddressesStore, entry: string = name): void {
    this.log.push(entry);
    if (this.failOn === name) throw new Error(`database failure in ${name}`);
  }

  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    this.transactions++;
    const saved = structuredClone(this.addresses);
    try {
      return await work(TX);
    } catch (e) {
      this.addresses = saved;
      this.rollbacks++;
      throw e;
    }
  }
  async lockPool() {
    this.step('lockPool', 'pool');
  }
  async owners(_tx: Tx, ids: readonly string[]) {
    return new Map(this.addresses.filter((a) => a.kind === 'elastic' && ids.includes(a.allocationId)).map((a) => [a.allocationId, a.accountId]));
  }
  async usedPublicIps() {
    return this.addresses.map((a) => a.publicIp);
  }
  async insert(_tx: Tx, a: AddressRow) {
    this.step('insert');
    if (this.addresses.some((x) => x.publicIp === a.publicIp)) throw new Error('duplicate public_ip');
    this.addresses.push({ ...a, kind: 'elastic' });
  }
  async listVisible(caller: Caller): Promise<ListedAddress[]> {
    return this.addresses
      .filter((a) => a.kind === 'elastic' && allows(accessOf(caller, a), 'see'))
      .map(({ kind: _kind, ...a }) => ({ ...a, networkInterfaceId: (a.instanceId && this.instances.get(a.instanceId)?.interfaceId) || null }));
  }
  async lockOne(_tx: Tx, by: { allocationId?: string; publicIp?: string; associationId?: string }) {
    this.step('lockOne', 'address');
    const match = (a: StoredAddress) =>
      by.allocationId !== undefined ? a.allocationId === by.allocationId : by.associationId !== undefined ? a.associationId === by.associationId : a.publicIp === by.publicIp;
    const found = this.addresses.find((a) => a.kind === 'elastic' && match(a));
    if (!found) return undefined;
    const { kind: _kind, ...row } = found;
    return { ...row };
  }
  async lockInstance(_tx: Tx, id: string) {
    this.step('lockInstance', 'instance');
    return this.target(id);
  }
  async instanceOfInterface(_tx: Tx, interfaceId: string) {
    return [...this.instances.values()].find((i) => i.interfaceId === interfaceId)?.id;
  }
  async instance(_tx: Tx, id: string) {
    return this.target(id);
  }
  async insertLaunchAddress(_tx: Tx, allocationId: string, i: TargetInstance, publicIp: string, createdAt: Date) {
    this.step('insertLaunchAddress');
    this.addresses.push({ allocationId, accountId: i.accountId, publicIp, domain: 'vpc', kind: 'launch', instanceId: i.id, associationId: null, privateIpAddress: i.privateIp, createdAt });
  }
  async dropPublicAddressOf(_tx: Tx, instanceId: string) {
    this.step('dropPublicAddressOf');
    this.addresses = this.addresses.filter((a) => !(a.kind === 'launch' && a.instanceId === instanceId));
    for (const a of this.addresses) if (a.instanceId === instanceId) Object.assign(a, { instanceId: null, associationId: null, privateIpAddress: null });
  }
  async associate(_tx: Tx, allocationId: string, instanceId: string, privateIp: string, associationId: string) {
    this.step('associate');
    Object.assign(this.byId(allocationId), { instanceId, privateIpAddress: privateIp, associationId });
  }
  async disassociate(_tx: Tx, allocationId: string) {
    this.step('disassociate');
    Object.assign(this.byId(allocationId), { instanceId: null, associationId: null, privateIpAddress: null });
  }
  async delete(_tx: Tx, allocationId: string) {
    this.step('delete');
    this.addresses = this.addresses.filter((a) => a.allocationId !== allocationId);
  }

  private byId(allocationId: string): StoredAddress {
    const a = this.addresses.find((x) => x.allocationId === allocationId);
    if (!a) throw new Error(`no address ${allocationId}`);
    return a;
  }
  private target(id: string): TargetInstance | undefined {
    const i = this.instances.get(id);
    if (!i) return undefined;
    const { interfaceId: _eni, ...t } = i;
    return { ...t };
  }

  // ---- test helpers ----
  elastic(ip: string): StoredAddress | undefined {
    return this.addresses.find((a) => a.kind === 'elastic' && a.publicIp === ip);
  }
  launchOf(instanceId: string): StoredAddress | undefined {
    return this.addresses.find((a) => a.kind === 'launch' && a.instanceId === instanceId);
  }
}

class FakeQuotas implements AddressQuotas {
  readonly asked: QuotaRequest[] = [];
  refuse = false;
  constructor(private readonly log: string[]) {}
  async enforce(_tx: Tx, _caller: Caller, request: QuotaRequest) {
    this.log.push('quota');
    this.asked.push(request);
    if (this.refuse) throw new Ec2Error('AddressLimitExceeded', 'The maximum number of addresses has been reached.');
  }
}

class FakePublisher implements AddressNetworkChanges {
  readonly calls: string[][] = [];
  changed(zones: Iterable<string>) {
    this.calls.push([...zones]);
  }
}

let store: FakeAddressesStore;
let tags: FakeTags;
let quotas: FakeQuotas;
let publisher: FakePublisher;
let registry: TaggableResources;
let service: AddressesService;
let handlers: AddressesHandlers;

beforeEach(() => {
  store = new FakeAddressesStore();
  tags = new FakeTags();
  quotas = new FakeQuotas(store.log);
  publisher = new FakePublisher();
  registry = new TaggableResources();
  service = new AddressesService(store, tags, config, publisher, registry, quotas);
  handlers = new AddressesHandlers(service);
});

function ctx(account: Caller, params: Record<string, string>): Ec2Context {
  return { requestId: 'r', action: 'x', version: '2016-11-15', params: Params.from(params), account: { ...account, name: 'n' }, accessKeyId: 'AKIA', now };
}

const iid = (n: number) => `i-${n.toString(16).padStart(17, '0')}`;
const eni = (n: number) => `eni-${n.toString(16).padStart(17, '0')}`;
const launchAllocation = (n: number) => `eipalloc-f${n.toString(16).padStart(16, '0')}`;

/** A running instance with an interface (10.0.0.n) and, when launched with one, a launch-time public address. */
function instance(n: number, owner: Caller, f: Partial<FakeInstance> & { launchIp?: string } = {}): string {
  const { launchIp, ...rest } = f;
  const i: FakeInstance = { id: iid(n), accountId: owner.id, zone: 'zone-a', state: 'running', privateIp: `10.0.0.${n}`, associatePublicIp: true, interfaceId: eni(n), ...rest };
  store.instances.set(i.id, i);
  if (launchIp)
    store.addresses.push({
      allocationId: launchAllocation(n),
      accountId: owner.id,
      publicIp: launchIp,
      domain: 'vpc',
      kind: 'launch',
      instanceId: i.id,
      associationId: null,
      privateIpAddress: i.privateIp,
      createdAt: now,
    });
  return i.id;
}

const allocate = (who: Caller, domain: 'vpc' | 'standard' = 'vpc', tagSpecifications: TagSpecification[] = []) => service.allocate(who, now, { domain, tagSpecifications });
const associate = (
  who: Caller,
  address: AddressRef,
  instanceId: string | undefined,
  more: { allowReassociation?: boolean; dryRun?: boolean; privateIpAddress?: string; networkInterfaceId?: string } = {},
) => service.associate(who, now, { address, instanceId, allowReassociation: false, dryRun: false, ...more });
const describeIps = async (who: Caller, q: { publicIps?: string[]; allocationIds?: string[]; filters?: Filter[] } = {}) =>
  (await service.describe(who, { publicIps: [], allocationIds: [], filters: [], ...q })).map((v) => v.address.publicIp);
/** Every address row as stored now. */
const snapshot = () => structuredClone(store.addresses);

describe('AllocateAddress', () => {
  it('hands out the lowest free pool address, skipping launch-time ones; quota checked before the pool lock; tags applied', async () => {
    instance(1, BOB, { launchIp: '10.99.0.1' });
    const v = await allocate(ALICE, 'vpc', [{ resourceType: 'elastic-ip', tags: [{ key: 'env', value: 'dev' }] }]);
    expect(v.address).toMatchObject({ accountId: ALICE.id, publicIp: '10.99.0.2', domain: 'vpc', instanceId: null, associationId: null, createdAt: now });
    expect(v.address.allocationId).toMatch(/^eipalloc-[0-9a-f]{17}$/);
    expect(v.tags).toEqual([{ key: 'env', value: 'dev' }]);
    expect(quotas.asked).toEqual([{ kind: 'address' }]);
    expect(store.log).toEqual(['quota', 'pool', 'insert']);
    expect((await allocate(BOB, 'standard')).address).toMatchObject({ publicIp: '10.99.0.3', domain: 'standard' });
  });

  it('an address released goes back to the pool (lowest first)', async () => {
    const first = await allocate(ALICE);
    await allocate(ALICE);
    await service.release(ALICE, now, { allocationId: first.address.allocationId });
    expect((await allocate(BOB)).address.publicIp).toBe('10.99.0.1');
  });

  it('an exhausted pool is InsufficientAddressCapacity (500); nothing written', async () => {
    for (let n = 0; n < 6; n++) await allocate(ALICE);
    const e = await service.allocate(BOB, now, { domain: 'vpc', tagSpecifications: [] }).catch((x: unknown) => x);
    expect(isEc2Error(e) && [e.code, e.httpStatus]).toEqual(['InsufficientAddressCapacity', 500]);
    expect(store.addresses).toHaveLength(6);
  });

  it('a refused quota takes no address', async () => {
    quotas.refuse = true;
    expect(await codeOf(allocate(ALICE))).toBe('AddressLimitExceeded');
    expect(store.addresses).toEqual([]);
    expect(store.log).toEqual(['quota']);
  });

  it('bad tags are refused before anything; a tag failure in the transaction leaves no address behind', async () => {
    expect(await codeOf(allocate(ALICE, 'vpc', [{ resourceType: 'elastic-ip', tags: [{ key: 'aws:x', value: '' }] }]))).toBe('InvalidParameterValue');
    expect(store.transactions).toBe(0);
    tags.failApply = true;
    expect(await codeOf(allocate(ALICE, 'vpc', [{ resourceType: 'elastic-ip', tags: [{ key: 'k', value: 'v' }] }]))).toMatch(/database failure/);
    expect(store.addresses).toEqual([]);
  });

  it('DryRun (handler) answers DryRunOperation after validation and allocates nothing', async () => {
    expect(await codeOf(handlers.allocate(ctx(ALICE, { Domain: 'elsewhere', DryRun: 'true' })))).toBe('InvalidParameterValue');
    expect(await codeOf(handlers.allocate(ctx(ALICE, { Domain: 'vpc', DryRun: 'true' })))).toBe('DryRunOperation');
    expect(store.addresses).toEqual([]);
    expect(quotas.asked).toEqual([]);
  });

  it('registers elastic addresses as taggable by their owner only (another account’s is NotFound)', async () => {
    const v = await allocate(ALICE);
    expect((await registry.resolve(TX, ALICE, [v.address.allocationId])).get(v.address.allocationId)?.owner).toBe(ALICE.id);
    expect(await codeOf(registry.resolve(TX, BOB, [v.address.allocationId]))).toBe('InvalidAllocationID.NotFound');
    // A launch-time address is not an elastic one: it cannot be tagged.
    instance(1, ALICE, { launchIp: '10.99.0.5' });
    expect(await codeOf(registry.resolve(TX, ALICE, [launchAllocation(1)]))).toBe('InvalidAllocationID.NotFound');
  });
});

describe('DescribeAddresses', () => {
  let alice: string[];
  beforeEach(async () => {
    // Allocated out of order so the answer's order is the service's (by address, numerically).
    store.addresses.push(
      {
        allocationId: 'eipalloc-0000000000000000a',
        accountId: ALICE.id,
        publicIp: '10.99.0.10',
        domain: 'vpc',
        kind: 'elastic',
        instanceId: null,
        associationId: null,
        privateIpAddress: null,
        createdAt: now,
      },
      {
        allocationId: 'eipalloc-0000000000000000b',
        accountId: BOB.id,
        publicIp: '10.99.0.3',
        domain: 'standard',
        kind: 'elastic',
        instanceId: null,
        associationId: null,
        privateIpAddress: null,
        createdAt: now,
      },
      {
        allocationId: 'eipalloc-0000000000000000c',
        accountId: ALICE.id,
        publicIp: '10.99.0.9',
        domain: 'vpc',
        kind: 'elastic',
        instanceId: null,
        associationId: null,
        privateIpAddress: null,
        createdAt: now,
      },
    );
    instance(4, ALICE, { launchIp: '10.99.0.4' });
    alice = ['10.99.0.9', '10.99.0.10'];
  });

  it('the caller’s own elastic addresses by address (launch-time ones never); the admin sees every account’s', async () => {
    expect(await describeIps(ALICE)).toEqual(alice);
    expect(await describeIps(BOB)).toEqual(['10.99.0.3']);
    expect(await describeIps(ADMIN)).toEqual(['10.99.0.3', ...alice]);
  });

  it('PublicIp.N / AllocationId.N of another account’s address are NotFound; a malformed id is Malformed', async () => {
    expect(await describeIps(ALICE, { publicIps: ['10.99.0.9'] })).toEqual(['10.99.0.9']);
    expect(await describeIps(ALICE, { allocationIds: ['eipalloc-0000000000000000a'] })).toEqual(['10.99.0.10']);
    expect(await codeOf(describeIps(ALICE, { publicIps: ['10.99.0.3'] }))).toBe('InvalidAddress.NotFound');
    expect(await codeOf(describeIps(ALICE, { publicIps: ['10.99.0.4'] }))).toBe('InvalidAddress.NotFound');
    expect(await codeOf(describeIps(ALICE, { allocationIds: ['eipalloc-0000000000000000b'] }))).toBe('InvalidAllocationID.NotFound');
    expect(await codeOf(describeIps(ALICE, { allocationIds: ['eipalloc-nope'] }))).toBe('InvalidAllocationID.Malformed');
    expect(await describeIps(ADMIN, { allocationIds: ['eipalloc-0000000000000000b'] })).toEqual(['10.99.0.3']);
  });

  it('filters by association: instance, interface and its owner', async () => {
    await associate(ALICE, { publicIp: '10.99.0.9' }, iid(4));
    const f = (name: string, values: string[]) => describeIps(ALICE, { filters: [{ name, values }] });
    expect(await f('instance-id', [iid(4)])).toEqual(['10.99.0.9']);
    expect(await f('network-interface-id', [eni(4)])).toEqual(['10.99.0.9']);
    expect(await f('network-interface-owner-id', [ALICE.id])).toEqual(['10.99.0.9']);
    expect(await f('private-ip-address', ['10.0.0.4'])).toEqual(['10.99.0.9']);
    expect(await f('domain', ['standard'])).toEqual([]);
  });

  it('DryRun (handler) answers DryRunOperation after the ids are checked', async () => {
    expect(await codeOf(handlers.describe(ctx(ALICE, { 'AllocationId.1': 'eipalloc-0000000000000000b', DryRun: 'true' })))).toBe('InvalidAllocationID.NotFound');
    expect(await codeOf(handlers.describe(ctx(ALICE, { DryRun: 'true' })))).toBe('DryRunOperation');
  });
});

describe('AssociateAddress', () => {
  it('by AllocationId: the instance’s launch-time address is released, the association recorded, the zone republished', async () => {
    const i = instance(1, ALICE, { launchIp: '10.99.0.1' });
    const a = (await allocate(ALICE)).address;
    store.log.length = 0;
    const id = await associate(ALICE, { allocationId: a.allocationId }, i);
    expect(id).toMatch(/^eipassoc-[0-9a-f]{17}$/);
    expect(store.elastic(a.publicIp)).toMatchObject({ instanceId: i, associationId: id, privateIpAddress: '10.0.0.1' });
    expect(store.launchOf(i)).toBeUndefined();
    expect(publisher.calls).toEqual([['zone-a']]);
    // The instance is locked before the address: every association takes its locks in that order.
    expect(store.log.slice(0, 2)).toEqual(['instance', 'address']);
  });

  it('by PublicIp (the caller’s own) and by NetworkInterfaceId', async () => {
    const i = instance(1, ALICE);
    const a = (await allocate(ALICE)).address;
    const id = await associate(ALICE, { publicIp: a.publicIp }, undefined, { networkInterfaceId: eni(1) });
    expect(store.elastic(a.publicIp)).toMatchObject({ instanceId: i, associationId: id });
  });

  it('refuses bad references with EC2’s codes', async () => {
    const i = instance(1, ALICE);
    const a = (await allocate(ALICE)).address;
    const by = { allocationId: a.allocationId };
    expect(await codeOf(associate(ALICE, by, undefined))).toBe('MissingParameter');
    expect(await codeOf(associate(ALICE, by, 'i-bad'))).toBe('InvalidInstanceID.Malformed');
    expect(await codeOf(associate(ALICE, by, iid(9)))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(associate(ALICE, by, undefined, { networkInterfaceId: 'eni-bad' }))).toBe('InvalidNetworkInterfaceID.Malformed');
    expect(await codeOf(associate(ALICE, by, undefined, { networkInterfaceId: eni(9) }))).toBe('InvalidNetworkInterfaceID.NotFound');
    expect(await codeOf(associate(ALICE, { allocationId: 'eipalloc-x' }, i))).toBe('InvalidAllocationID.Malformed');
    expect(await codeOf(associate(ALICE, { allocationId: 'eipalloc-0000000000000000f' }, i))).toBe('InvalidAllocationID.NotFound');
    expect(await codeOf(associate(ALICE, { publicIp: '10.99.0.6' }, i))).toBe('InvalidAddress.NotFound');
    expect(await codeOf(associate(ALICE, { publicIp: 'x'.repeat(100) }, i))).toBe('InvalidAddress.NotFound');
    expect(await codeOf(associate(ALICE, by, i, { privateIpAddress: '10.0.0.2' }))).toBe('InvalidParameterValue');
    expect(store.elastic(a.publicIp)?.instanceId).toBeNull();
    expect(publisher.calls).toEqual([]);
  });

  it('another account’s address or instance is NotFound (never AuthFailure); the admin may pair an account’s own address and instance', async () => {
    const alices = instance(1, ALICE);
    const bobs = instance(2, BOB);
    const a = (await allocate(ALICE)).address;
    const b = (await allocate(BOB)).address;
    expect(await codeOf(associate(BOB, { allocationId: a.allocationId }, bobs))).toBe('InvalidAllocationID.NotFound');
    expect(await codeOf(associate(BOB, { publicIp: a.publicIp }, bobs))).toBe('InvalidAddress.NotFound');
    expect(await codeOf(associate(BOB, { allocationId: b.allocationId }, alices))).toBe('InvalidInstanceID.NotFound');
    // The admin: any account's, but an address goes only to an instance of the same account.
    expect(await codeOf(associate(ADMIN, { allocationId: a.allocationId }, bobs))).toBe('InvalidInstanceID.NotFound');
    // By public IP an address is always the caller's own, even for the admin.
    expect(await codeOf(associate(ADMIN, { publicIp: a.publicIp }, alices))).toBe('InvalidAddress.NotFound');
    expect(store.addresses.every((x) => x.instanceId === null)).toBe(true);
    await associate(ADMIN, { allocationId: a.allocationId }, alices);
    expect(store.elastic(a.publicIp)?.instanceId).toBe(alices);
  });

  it.each([['terminated'], ['shutting-down']])('an instance %s (or without an interface) is IncorrectInstanceState', async (state) => {
    const gone = instance(1, ALICE, { state });
    const bare = instance(2, ALICE, { privateIp: null, interfaceId: null });
    const a = (await allocate(ALICE)).address;
    expect(await codeOf(associate(ALICE, { allocationId: a.allocationId }, gone))).toBe('IncorrectInstanceState');
    expect(await codeOf(associate(ALICE, { allocationId: a.allocationId }, bare))).toBe('IncorrectInstanceState');
  });

  it('associating again with the same instance answers the same association id and changes nothing', async () => {
    const i = instance(1, ALICE);
    const a = (await allocate(ALICE)).address;
    const id = await associate(ALICE, { allocationId: a.allocationId }, i);
    publisher.calls.length = 0;
    store.log.length = 0;
    expect(await associate(ALICE, { publicIp: a.publicIp }, i)).toBe(id);
    expect(store.log).toEqual(['instance', 'address']);
    expect(publisher.calls.flat()).toEqual([]);
  });

  it('an address associated elsewhere moves only with AllowReassociation; the instance it left gets a new launch-time address', async () => {
    const one = instance(1, ALICE, { launchIp: '10.99.0.1' });
    const two = instance(2, ALICE, { launchIp: '10.99.0.2', zone: 'zone-b' });
    const a = (await allocate(ALICE)).address; // .3
    const first = await associate(ALICE, { allocationId: a.allocationId }, one); // .1 back to the pool
    publisher.calls.length = 0;
    expect(await codeOf(associate(ALICE, { allocationId: a.allocationId }, two))).toBe('Resource.AlreadyAssociated');
    expect(store.elastic('10.99.0.3')).toMatchObject({ instanceId: one, associationId: first });
    expect(publisher.calls).toEqual([]);
    const second = await associate(ALICE, { allocationId: a.allocationId }, two, { allowReassociation: true });
    expect(second).not.toBe(first);
    expect(store.elastic('10.99.0.3')).toMatchObject({ instanceId: two, associationId: second, privateIpAddress: '10.0.0.2' });
    expect(store.launchOf(two)).toBeUndefined();
    // The instance it left was launched with a public address: it gets the lowest free one.
    expect(store.launchOf(one)?.publicIp).toBe('10.99.0.1');
    expect(publisher.calls).toEqual([['zone-b', 'zone-a']]);
  });

  it('an instance launched without a public address gets none when its elastic address moves away', async () => {
    const one = instance(1, ALICE, { associatePublicIp: false });
    const two = instance(2, ALICE);
    const a = (await allocate(ALICE)).address;
    await associate(ALICE, { allocationId: a.allocationId }, one);
    await associate(ALICE, { allocationId: a.allocationId }, two, { allowReassociation: true });
    expect(store.launchOf(one)).toBeUndefined();
  });

  it('DryRun answers DryRunOperation after every check and changes nothing', async () => {
    const one = instance(1, ALICE, { launchIp: '10.99.0.1' });
    const two = instance(2, ALICE);
    const a = (await allocate(ALICE)).address;
    expect(await codeOf(associate(BOB, { allocationId: a.allocationId }, one, { dryRun: true }))).toBe('InvalidInstanceID.NotFound');
    const before = snapshot();
    expect(await codeOf(associate(ALICE, { allocationId: a.allocationId }, one, { dryRun: true }))).toBe('DryRunOperation');
    expect(snapshot()).toEqual(before);
    await associate(ALICE, { allocationId: a.allocationId }, one);
    expect(await codeOf(associate(ALICE, { allocationId: a.allocationId }, two, { dryRun: true }))).toBe('Resource.AlreadyAssociated');
    expect(await codeOf(associate(ALICE, { allocationId: a.allocationId }, one, { dryRun: true }))).toBe('DryRunOperation');
    expect(await codeOf(handlers.associate(ctx(ALICE, { AllocationId: a.allocationId, InstanceId: two, AllowReassociation: 'true', DryRun: 'true' })))).toBe('DryRunOperation');
    expect(store.elastic(a.publicIp)?.instanceId).toBe(one);
    expect(publisher.calls).toEqual([['zone-a']]);
  });

  it('a failure half-way leaves nothing half-written and publishes nothing', async () => {
    const one = instance(1, ALICE, { launchIp: '10.99.0.1' });
    const two = instance(2, ALICE, { launchIp: '10.99.0.2' });
    const a = (await allocate(ALICE)).address;
    await associate(ALICE, { allocationId: a.allocationId }, one);
    publisher.calls.length = 0;
    const before = snapshot();
    store.failOn = 'associate'; // after the address left `one` (which got a new launch address) and `two` gave up its own
    expect(await codeOf(associate(ALICE, { allocationId: a.allocationId }, two, { allowReassociation: true }))).toMatch(/database failure/);
    expect(snapshot()).toEqual(before);
    expect(store.rollbacks).toBe(1);
    expect(publisher.calls).toEqual([]);
  });
});

describe('DisassociateAddress', () => {
  let i: string;
  let ip: string;
  let assoc: string;
  beforeEach(async () => {
    i = instance(1, ALICE, { launchIp: '10.99.0.1' });
    const a = (await allocate(ALICE)).address;
    ip = a.publicIp;
    assoc = await associate(ALICE, { allocationId: a.allocationId }, i);
    publisher.calls.length = 0;
  });

  it('by AssociationId: the address is free, the instance gets a launch-time address again, the zone republished', async () => {
    await service.disassociate(ALICE, now, { associationId: assoc }, false);
    expect(store.elastic(ip)).toMatchObject({ instanceId: null, associationId: null, privateIpAddress: null });
    expect(store.launchOf(i)?.publicIp).toBe('10.99.0.1');
    expect(publisher.calls).toEqual([['zone-a']]);
  });

  it('by PublicIp; an address not associated is left as it is (no republish)', async () => {
    await service.disassociate(ALICE, now, { publicIp: ip }, false);
    publisher.calls.length = 0;
    await service.disassociate(ALICE, now, { publicIp: ip }, false);
    expect(publisher.calls).toEqual([]);
  });

  it('an empty pool leaves the instance without a public address, without failing', async () => {
    for (let n = 0; n < 5; n++) await allocate(BOB); // .1 and .3 to .6: with Alice's .2 the pool is full
    await service.disassociate(ALICE, now, { associationId: assoc }, false);
    expect(store.launchOf(i)).toBeUndefined();
    expect(store.elastic(ip)?.instanceId).toBeNull();
  });

  it('refuses bad references: malformed, unknown, another account’s', async () => {
    expect(await codeOf(service.disassociate(ALICE, now, { associationId: 'eipassoc-x' }, false))).toBe('InvalidAssociationID.Malformed');
    expect(await codeOf(service.disassociate(ALICE, now, { associationId: 'eipassoc-0000000000000000f' }, false))).toBe('InvalidAssociationID.NotFound');
    expect(await codeOf(service.disassociate(BOB, now, { associationId: assoc }, false))).toBe('InvalidAssociationID.NotFound');
    expect(await codeOf(service.disassociate(BOB, now, { publicIp: ip }, false))).toBe('InvalidAddress.NotFound');
    expect(store.elastic(ip)?.instanceId).toBe(i);
    await service.disassociate(ADMIN, now, { associationId: assoc }, false);
    expect(store.elastic(ip)?.instanceId).toBeNull();
  });

  it('DryRun answers DryRunOperation after the checks and changes nothing', async () => {
    expect(await codeOf(service.disassociate(BOB, now, { associationId: assoc }, true))).toBe('InvalidAssociationID.NotFound');
    const before = snapshot();
    expect(await codeOf(service.disassociate(ALICE, now, { associationId: assoc }, true))).toBe('DryRunOperation');
    expect(await codeOf(handlers.disassociate(ctx(ALICE, { PublicIp: ip, DryRun: 'true' })))).toBe('DryRunOperation');
    expect(snapshot()).toEqual(before);
    expect(publisher.calls).toEqual([]);
  });

  it('a failure leaves the address associated and publishes nothing', async () => {
    store.failOn = 'insertLaunchAddress';
    const before = snapshot();
    expect(await codeOf(service.disassociate(ALICE, now, { associationId: assoc }, false))).toMatch(/database failure/);
    expect(snapshot()).toEqual(before);
    expect(publisher.calls).toEqual([]);
  });
});

describe('ReleaseAddress', () => {
  it('an unassociated address: deleted with its tags, nothing republished', async () => {
    const a = (await allocate(ALICE, 'vpc', [{ resourceType: 'elastic-ip', tags: [{ key: 'k', value: 'v' }] }])).address;
    await service.release(ALICE, now, { allocationId: a.allocationId });
    expect(store.addresses).toEqual([]);
    expect(tags.tags.has(a.allocationId)).toBe(false);
    expect(publisher.calls).toEqual([]);
  });

  it('a vpc address still associated is InvalidIPAddress.InUse; nothing changes', async () => {
    const i = instance(1, ALICE);
    const a = (await allocate(ALICE, 'vpc')).address;
    await associate(ALICE, { allocationId: a.allocationId }, i);
    const before = snapshot();
    expect(await codeOf(service.release(ALICE, now, { allocationId: a.allocationId }))).toBe('InvalidIPAddress.InUse');
    expect(await codeOf(service.release(ALICE, now, { allocationId: a.allocationId }, true))).toBe('InvalidIPAddress.InUse');
    expect(snapshot()).toEqual(before);
  });

  it('a standard address is disassociated first (EC2-Classic): the instance gets another launch-time address, never the released one', async () => {
    const i = instance(1, ALICE);
    const a = (await allocate(ALICE, 'standard')).address; // .1
    await associate(ALICE, { allocationId: a.allocationId }, i);
    publisher.calls.length = 0;
    await service.release(ALICE, now, { publicIp: a.publicIp });
    expect(store.elastic(a.publicIp)).toBeUndefined();
    expect(store.launchOf(i)?.publicIp).toBe('10.99.0.2');
    expect(publisher.calls).toEqual([['zone-a']]);
  });

  it('by allocation id the admin may release any account’s; by public IP only the caller’s own', async () => {
    const a = (await allocate(ALICE)).address;
    expect(await codeOf(service.release(BOB, now, { allocationId: a.allocationId }))).toBe('InvalidAllocationID.NotFound');
    expect(await codeOf(service.release(BOB, now, { publicIp: a.publicIp }))).toBe('InvalidAddress.NotFound');
    expect(await codeOf(service.release(ADMIN, now, { publicIp: a.publicIp }))).toBe('InvalidAddress.NotFound');
    expect(await codeOf(service.release(ALICE, now, { publicIp: '10.99.0.300.1' }))).toBe('InvalidAddress.NotFound');
    expect(store.addresses).toHaveLength(1);
    await service.release(ADMIN, now, { allocationId: a.allocationId });
    expect(store.addresses).toEqual([]);
  });

  it('DryRun answers DryRunOperation and keeps the address', async () => {
    const a = (await allocate(ALICE)).address;
    expect(await codeOf(service.release(BOB, now, { allocationId: a.allocationId }, true))).toBe('InvalidAllocationID.NotFound');
    expect(await codeOf(service.release(ALICE, now, { allocationId: a.allocationId }, true))).toBe('DryRunOperation');
    expect(await codeOf(handlers.release(ctx(ALICE, { PublicIp: a.publicIp, DryRun: 'true' })))).toBe('DryRunOperation');
    expect(store.addresses).toHaveLength(1);
  });

  it('a failure deleting its tags keeps the address (and its association)', async () => {
    const i = instance(1, ALICE);
    const a = (await allocate(ALICE, 'standard')).address;
    await associate(ALICE, { allocationId: a.allocationId }, i);
    publisher.calls.length = 0;
    tags.failDelete = true;
    const before = snapshot();
    expect(await codeOf(service.release(ALICE, now, { allocationId: a.allocationId }))).toMatch(/database failure/);
    expect(snapshot()).toEqual(before);
    expect(publisher.calls).toEqual([]);
  });
});
