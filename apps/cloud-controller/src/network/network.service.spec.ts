// NetworkService on an in-memory fake of its repository (NetworkStore) and of the zone's node
// list: private IPs and MACs at launch, public addresses at launch, their release, the views,
// metadata options and the zone's desired state (what NetworkPublisher sends). No database: the
// real repository is tested by test/instances/network.e2e-spec.ts on PostgreSQL.
import { loadConfig } from '@koala/config';
import type { InstanceMetadataOptions } from '@koala/contracts';
import { isEc2Error } from '@koala/ec2-query';
import type { Caller } from '../persistence/access-scope.js';
import { defaultSubnetId, defaultVpcId } from './addressing.js';
import type { InterfaceInput, StoredRule } from './network-state.js';
import type { InterfaceRow, InterfaceView, LaunchAddressRow, NetworkInstance, NetworkStore, Tx } from './network.repository.js';
import { DEFAULT_METADATA_OPTIONS, NetworkService } from './network.service.js';
import type { ZoneNodesPort } from './zone-nodes.port.js';

const TX = { fakeTx: true } as unknown as Tx;
const now = new Date('2026-12-01T00:00:00Z');
const ADMIN: Caller = { id: '000000000001', isAdmin: true };
const ALICE: Caller = { id: '111111111111', isAdmin: false };
const BOB: Caller = { id: '222222222222', isAdmin: false };
// zone-a: 10.0.0.0/28, so .2 to .14 are handed out (.1 is the router); zone-c has no subnet.
// The public pool: 198.51.100.1 to .6.
const config = loadConfig({ KOALA_REGION: 'koala-1', KOALA_ZONE_SUBNETS: 'zone-a=10.0.0.0/28,zone-b=10.1.0.0/24', KOALA_PUBLIC_IP_RANGE: '198.51.100.0/29', KOALA_ASSOCIATE_PUBLIC_IP: 'true' });

type PublicAddress = LaunchAddressRow & { kind: 'launch' | 'elastic'; associationId: string | null };
interface FakeInstance {
  id: string;
  accountId: string;
  zone: string;
  state: string;
  node: string | null;
  groupIds: string[];
  metadata?: InstanceMetadataOptions;
  privateDnsName?: string;
}

/** NetworkStore in memory, answering as NetworkRepository does; a transaction that throws leaves everything as it was. */
class FakeNetworkStore implements NetworkStore {
  readonly pool = TX;
  data = {
    interfaces: [] as InterfaceRow[],
    nodes: [] as Array<{ zone: string; node: string; address: string }>,
    addresses: [] as PublicAddress[],
    instances: new Map<string, FakeInstance>(),
    versions: new Map<string, { version: number; digest: string }>(),
    groups: [] as Array<{ groupId: string; name: string }>,
    rules: [] as StoredRule[],
  };
  /** Locks and reads in the order taken. */
  readonly log: string[] = [];
  saves = 0;
  rollbacks = 0;

  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const saved = structuredClone(this.data);
    try {
      return await work(TX);
    } catch (e) {
      this.data = saved;
      this.rollbacks++;
      throw e;
    }
  }
  async lockZone(_tx: Tx, zone: string) {
    this.log.push(`lock ${zone}`);
  }
  async usedPrivateIps(_tx: Tx, zone: string) {
    this.log.push(`private ${zone}`);
    return [...this.data.interfaces.filter((i) => i.zone === zone).map((i) => i.privateIp), ...this.data.nodes.filter((n) => n.zone === zone).map((n) => n.address)];
  }
  async usedPrivateIpCounts(zones: readonly string[]) {
    return new Map(zones.map((z) => [z, this.data.interfaces.filter((i) => i.zone === z).length + this.data.nodes.filter((n) => n.zone === z).length]));
  }
  async usedAddresses(_tx: Tx, zone: string) {
    this.log.push(`private ${zone}`);
    return {
      ips: [...this.data.interfaces.filter((i) => i.zone === zone).map((i) => i.privateIp), ...this.data.nodes.filter((n) => n.zone === zone).map((n) => n.address)],
      macs: new Set(this.data.interfaces.filter((i) => i.zone === zone).map((i) => i.mac)),
    };
  }
  async insertInterfaces(_tx: Tx, rows: readonly InterfaceRow[], dnsNames: ReadonlyMap<string, string>) {
    for (const r of rows) {
      if (this.data.interfaces.some((i) => i.zone === r.zone && (i.privateIp === r.privateIp || i.mac === r.mac))) throw new Error('unique violation');
      this.data.interfaces.push({ ...r });
    }
    for (const [id, name] of dnsNames) {
      const i = this.data.instances.get(id);
      if (i) i.privateDnsName = name;
    }
  }
  async lockPublicPool() {
    this.log.push('lock pool');
  }
  async usedPublicIps() {
    this.log.push('public');
    return this.data.addresses.map((a) => a.publicIp);
  }
  async insertLaunchAddresses(_tx: Tx, rows: readonly LaunchAddressRow[]) {
    for (const r of rows) {
      if (this.data.addresses.some((a) => a.publicIp === r.publicIp)) throw new Error('unique violation');
      this.data.addresses.push({ ...r, kind: 'launch', associationId: null });
    }
  }
  async release(_tx: Tx, instanceIds: readonly string[]) {
    const zones = this.data.interfaces.filter((i) => instanceIds.includes(i.instanceId)).map((i) => i.zone);
    this.data.interfaces = this.data.interfaces.filter((i) => !instanceIds.includes(i.instanceId));
    this.data.addresses = this.data.addresses.filter((a) => !(a.kind === 'launch' && instanceIds.includes(a.instanceId)));
    for (const a of this.data.addresses) if (instanceIds.includes(a.instanceId)) Object.assign(a, { instanceId: '', associationId: null });
    return [...new Set(zones)];
  }
  async interfacesOf(_tx: Tx, instanceIds: readonly string[]): Promise<InterfaceView[]> {
    return this.data.interfaces
      .filter((i) => instanceIds.includes(i.instanceId))
      .map((i) => {
        const a = this.data.addresses.find((x) => x.instanceId === i.instanceId);
        return {
          ...i,
          publicIp: a?.publicIp ?? null,
          publicKind: a?.kind ?? null,
          publicOwnerId: a?.accountId ?? null,
          associationId: a?.associationId ?? null,
          allocationId: a?.allocationId ?? null,
        };
      });
  }
  async lockInstance(_tx: Tx, id: string): Promise<NetworkInstance | undefined> {
    const i = this.data.instances.get(id);
    if (!i) return undefined;
    return { id, accountId: i.accountId, zone: i.zone, state: i.state, terminatedAt: null, privateIp: this.data.interfaces.find((n) => n.instanceId === id)?.privateIp ?? null };
  }
  async metadataOptions(_tx: Tx, id: string) {
    const m = this.data.instances.get(id)?.metadata;
    return m && { ...m };
  }
  async setMetadataOptions(_tx: Tx, id: string, o: InstanceMetadataOptions) {
    this.data.instances.get(id)!.metadata = { ...o };
  }
  async nodeAddresses(_tx: Tx, zone: string) {
    return this.data.nodes.filter((n) => n.zone === zone).map(({ node, address }) => ({ node, address }));
  }
  async insertNodeAddress(_tx: Tx, zone: string, node: string, address: string) {
    if (this.data.nodes.some((n) => n.zone === zone && n.node === node)) throw new Error('unique violation');
    this.data.nodes.push({ zone, node, address });
  }
  async liveInterfaces(_tx: Tx, zone: string): Promise<InterfaceInput[]> {
    return this.data.interfaces.flatMap((n) => {
      const i = this.data.instances.get(n.instanceId);
      if (!i || i.zone !== zone || i.state === 'terminated' || !i.node) return [];
      const a = this.data.addresses.find((x) => x.instanceId === i.id);
      return [
        {
          instanceId: i.id,
          interfaceId: n.id,
          node: i.node,
          mac: n.mac,
          privateIp: n.privateIp,
          publicIp: a?.publicIp ?? null,
          groupIds: [...i.groupIds],
          metadataOptions: i.metadata ?? DEFAULT_METADATA_OPTIONS,
        },
      ];
    });
  }
  async instanceNodes(_tx: Tx, zone: string) {
    return [...new Set([...this.data.instances.values()].filter((i) => i.zone === zone && i.state !== 'terminated' && i.node).map((i) => i.node!))];
  }
  async groupsWithRules(_tx: Tx, groupIds: readonly string[]) {
    return { groups: this.data.groups.filter((g) => groupIds.includes(g.groupId)), rules: this.data.rules.filter((r) => groupIds.includes(r.groupId)) };
  }
  async lockVersion(_tx: Tx, zone: string) {
    if (!this.data.versions.has(zone)) this.data.versions.set(zone, { version: 0, digest: '' });
    return { ...this.data.versions.get(zone)! };
  }
  async saveVersion(_tx: Tx, zone: string, version: number, digest: string) {
    this.saves++;
    this.data.versions.set(zone, { version, digest });
  }
  async zones() {
    return [...new Set([...this.data.versions.keys(), ...[...this.data.instances.values()].filter((i) => i.state !== 'terminated').map((i) => i.zone)])].sort();
  }
  async zonesOfGroup(_tx: Tx, groupId: string) {
    return [...new Set([...this.data.instances.values()].filter((i) => i.groupIds.includes(groupId) && i.state !== 'terminated').map((i) => i.zone))];
  }
}

/** The zone's CC: the nodes it lists (or no answer). */
class FakeZoneNodes implements ZoneNodesPort {
  listed: Record<string, string[]> = {};
  down = false;
  async nodes(zone: string) {
    if (this.down) throw new Error('no answer');
    return this.listed[zone] ?? [];
  }
}

let store: FakeNetworkStore;
let zoneNodes: FakeZoneNodes;
let clock: Date;
let service: NetworkService;

beforeEach(() => {
  store = new FakeNetworkStore();
  zoneNodes = new FakeZoneNodes();
  clock = now;
  service = new NetworkService(store, config, { now: () => clock }, zoneNodes);
});

function codeOf(f: () => unknown): Promise<string | undefined> {
  return (async () => {
    try {
      await f();
    } catch (e) {
      return isEc2Error(e) ? e.code : String(e);
    }
    return undefined;
  })();
}

/** from..to, inclusive. */
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);
const iid = (n: number) => `i-${n.toString(16).padStart(17, '0')}`;

/** A launched instance (not yet on a node). */
function instance(n: number, owner: Caller, f: Partial<FakeInstance> = {}): { id: string; accountId: string } {
  const i: FakeInstance = { id: iid(n), accountId: owner.id, zone: 'zone-a', state: 'pending', node: null, groupIds: [], ...f };
  store.data.instances.set(i.id, i);
  return { id: i.id, accountId: i.accountId };
}

const launch = (zone: string, instances: Array<{ id: string; accountId: string }>, publicIp = true, requestedIp?: string) =>
  store.transaction((tx) => service.allocateForLaunch(tx, zone, instances, publicIp, now, requestedIp));

describe('subnets and launch parameters', () => {
  it('a zone without a subnet (KOALA_ZONE_SUBNETS) cannot host instances', async () => {
    expect(service.subnet('zone-a')).toMatchObject({ cidr: '10.0.0.0/28' });
    expect(await codeOf(() => service.subnet('zone-c'))).toBe('InvalidParameterValue');
    expect(await codeOf(() => launch('zone-c', [instance(1, ALICE, { zone: 'zone-c' })]))).toBe('InvalidParameterValue');
  });

  it('a requested private IP must be one the subnet hands out', async () => {
    expect(service.checkRequestedIp('zone-a', undefined).cidr).toBe('10.0.0.0/28');
    expect(service.checkRequestedIp('zone-a', '10.0.0.2').cidr).toBe('10.0.0.0/28');
    expect(service.checkRequestedIp('zone-a', '10.0.0.14').cidr).toBe('10.0.0.0/28');
    for (const ip of ['10.0.0.0', '10.0.0.1', '10.0.0.15', '10.0.1.2', '10.0.0.02', '10.0.0.256', 'ten', '::1']) {
      expect([ip, await codeOf(() => service.checkRequestedIp('zone-a', ip))]).toEqual([ip, 'InvalidParameterValue']);
    }
  });

  it('a subnet id names the zone whose default subnet it is', async () => {
    expect(service.zoneOfSubnet(defaultSubnetId('koala-1', 'zone-b'), ['zone-a', 'zone-b'])).toBe('zone-b');
    expect(await codeOf(() => service.zoneOfSubnet(defaultSubnetId('koala-1', 'zone-b'), ['zone-a']))).toBe('InvalidSubnetID.NotFound');
    expect(await codeOf(() => service.zoneOfSubnet(defaultSubnetId('koala-1', 'zone-c'), ['zone-c']))).toBe('InvalidSubnetID.NotFound');
    expect(await codeOf(() => service.zoneOfSubnet('subnet-nope', ['zone-a']))).toBe('InvalidSubnetID.NotFound');
  });

  it('a public address at launch unless AssociatePublicIpAddress=false (KOALA_ASSOCIATE_PUBLIC_IP is the default)', () => {
    expect(service.wantsPublicIp(undefined)).toBe(true);
    expect(service.wantsPublicIp(false)).toBe(false);
    const off = new NetworkService(store, { ...config, associatePublicIp: false }, { now: () => now }, zoneNodes);
    expect(off.wantsPublicIp(undefined)).toBe(false);
    expect(off.wantsPublicIp(true)).toBe(true);
  });

  it('MetadataOptions of a launch: EC2’s defaults for what is not given', () => {
    expect(service.launchMetadataOptions({})).toEqual({ httpTokens: 'optional', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' });
    expect(service.launchMetadataOptions({ httpTokens: 'required', httpPutResponseHopLimit: 3 })).toEqual({ httpTokens: 'required', httpPutResponseHopLimit: 3, httpEndpoint: 'enabled' });
  });
});

describe('allocateForLaunch', () => {
  it('gives each instance the next free private IP (never the router, nor a node’s or another interface’s), a MAC from its id, a private name', async () => {
    store.data.nodes.push({ zone: 'zone-a', node: 'n1', address: '10.0.0.2' });
    await launch('zone-a', [instance(1, ALICE)], false);
    const got = await launch('zone-a', [instance(0x1234, ALICE), instance(0xabcdef, BOB)], false);
    expect([...got.keys()]).toEqual([iid(0x1234), iid(0xabcdef)]);
    expect(got.get(iid(0x1234))).toMatchObject({ privateIp: '10.0.0.4', mac: '02:00:00:00:12:34', privateDnsName: 'ip-10-0-0-4.koala-1.compute.internal' });
    expect(got.get(iid(0xabcdef))).toMatchObject({ privateIp: '10.0.0.5', mac: '02:00:00:ab:cd:ef' });
    expect(got.get(iid(0x1234))!.publicIp).toBeUndefined();
    const rows = store.data.interfaces.filter((i) => i.instanceId !== iid(1));
    expect(rows.map((r) => [r.instanceId, r.zone, r.privateIp, r.createdAt])).toEqual([
      [iid(0x1234), 'zone-a', '10.0.0.4', now],
      [iid(0xabcdef), 'zone-a', '10.0.0.5', now],
    ]);
    expect(rows[0]!.id).toBe(got.get(iid(0x1234))!.interfaceId);
    expect(rows[0]!.id).toMatch(/^eni-[0-9a-f]{17}$/);
    expect(rows[0]!.attachmentId).toMatch(/^eni-attach-[0-9a-f]{17}$/);
    expect(store.data.instances.get(iid(0xabcdef))!.privateDnsName).toBe('ip-10-0-0-5.koala-1.compute.internal');
    expect(store.data.addresses).toEqual([]);
    // The zone's lock before reading what is taken: allocations of a zone run one after another.
    expect(store.log.slice(0, 2)).toEqual(['lock zone-a', 'private zone-a']);
  });

  it('two instances whose ids end alike get different MACs', async () => {
    // The MAC is 02: and the id's low 40 bits: these two ids share them.
    const got = await launch('zone-a', [instance(7, ALICE), instance(8, ALICE, { id: 'i-10000000000000007' })], false);
    const macs = [...got.values()].map((n) => n.mac);
    expect(macs[0]).toBe('02:00:00:00:00:07');
    expect(new Set(macs).size).toBe(2);
  });

  it('zones have their own addresses', async () => {
    await launch('zone-a', [instance(1, ALICE)], false);
    const got = await launch('zone-b', [instance(2, ALICE, { zone: 'zone-b' })], false);
    expect(got.get(iid(2))!.privateIp).toBe('10.1.0.2');
  });

  it('with a public address: the lowest free of the pool each (elastic ones in use skipped), owned by the instance’s account', async () => {
    store.data.addresses.push({ allocationId: 'eipalloc-e', accountId: BOB.id, publicIp: '198.51.100.1', instanceId: '', privateIp: '', createdAt: now, kind: 'elastic', associationId: null });
    store.log.length = 0;
    const got = await launch('zone-a', [instance(1, ALICE), instance(2, BOB)]);
    expect([...got.values()].map((n) => n.publicIp)).toEqual(['198.51.100.2', '198.51.100.3']);
    expect(store.data.addresses.filter((a) => a.kind === 'launch').map((a) => [a.publicIp, a.accountId, a.instanceId, a.privateIp])).toEqual([
      ['198.51.100.2', ALICE.id, iid(1), '10.0.0.2'],
      ['198.51.100.3', BOB.id, iid(2), '10.0.0.3'],
    ]);
    expect(store.log.slice(-2)).toEqual(['lock pool', 'public']);
  });

  it('a requested private IP is used; one in use is InvalidIPAddress.InUse', async () => {
    expect((await launch('zone-a', [instance(1, ALICE)], false, '10.0.0.5')).get(iid(1))!.privateIp).toBe('10.0.0.5');
    expect(await codeOf(() => launch('zone-a', [instance(2, ALICE)], false, '10.0.0.5'))).toBe('InvalidIPAddress.InUse');
    expect(store.data.interfaces).toHaveLength(1);
  });

  it('a full subnet fails the whole launch (InsufficientFreeAddressesInSubnet): nothing written', async () => {
    await launch(
      'zone-a',
      range(1, 10).map((n) => instance(n, ALICE)),
      false,
    );
    expect(
      await codeOf(() =>
        launch(
          'zone-a',
          range(11, 14).map((n) => instance(n, ALICE)),
          true,
        ),
      ),
    ).toBe('InsufficientFreeAddressesInSubnet');
    expect(store.data.interfaces.map((i) => i.privateIp)).toEqual(range(2, 11).map((n) => `10.0.0.${n}`));
    expect(store.data.addresses).toEqual([]);
    expect(store.rollbacks).toBe(1);
  });

  it('an exhausted public pool fails the whole launch (InsufficientAddressCapacity): no interface written either', async () => {
    for (let n = 1; n <= 5; n++)
      store.data.addresses.push({ allocationId: `eipalloc-${n}`, accountId: BOB.id, publicIp: `198.51.100.${n}`, instanceId: '', privateIp: '', createdAt: now, kind: 'elastic', associationId: null });
    expect(await codeOf(() => launch('zone-b', [instance(1, ALICE, { zone: 'zone-b' }), instance(2, ALICE, { zone: 'zone-b' })]))).toBe('InsufficientAddressCapacity');
    expect(store.data.interfaces).toEqual([]);
    expect(store.data.addresses).toHaveLength(5);
    // Declining the public address launches.
    expect((await launch('zone-b', [instance(1, ALICE, { zone: 'zone-b' })], false)).get(iid(1))!.privateIp).toBe('10.1.0.2');
  });

  it('release frees the addresses for the next launch and answers the zones touched', async () => {
    const a = instance(1, ALICE);
    await launch('zone-a', [a]);
    expect(await store.transaction((tx) => service.release(tx, [a.id]))).toEqual(['zone-a']);
    const got = await launch('zone-a', [instance(2, ALICE)]);
    expect(got.get(iid(2))).toMatchObject({ privateIp: '10.0.0.2', publicIp: '198.51.100.1' });
  });

  it('launchSpec: the subnet, the groups, and the public address only when there is one', async () => {
    const got = await launch('zone-a', [instance(1, ALICE)]);
    const n = got.get(iid(1))!;
    expect(service.launchSpec('zone-a', n, [{ groupId: 'sg-1', groupName: 'default' }])).toEqual({
      mac: n.mac,
      privateIp: '10.0.0.2',
      subnet: '10.0.0.0/28',
      privateDnsName: 'ip-10-0-0-2.koala-1.compute.internal',
      publicIp: '198.51.100.1',
      groups: [{ groupId: 'sg-1', name: 'default' }],
    });
    expect(service.launchSpec('zone-a', { ...n, publicIp: undefined }, [])).not.toHaveProperty('publicIp');
  });
});

describe('instanceNetworks', () => {
  it('a launch-time address belongs to "amazon", an elastic one to its account with its association; none without', async () => {
    await launch('zone-a', [instance(1, ALICE), instance(2, ALICE)]);
    await launch('zone-a', [instance(3, ALICE)], false);
    const elastic = store.data.addresses.find((a) => a.instanceId === iid(2))!;
    Object.assign(elastic, { kind: 'elastic', allocationId: 'eipalloc-0000000000000000e', associationId: 'eipassoc-0000000000000000e' });
    const views = await service.instanceNetworks([iid(1), iid(2), iid(3), iid(4)]);
    expect([...views.keys()].sort()).toEqual([iid(1), iid(2), iid(3)]);
    expect(views.get(iid(1))).toMatchObject({
      privateIp: '10.0.0.2',
      subnetId: defaultSubnetId('koala-1', 'zone-a'),
      vpcId: defaultVpcId('koala-1'),
      publicIp: '198.51.100.1',
      publicDnsName: 'ec2-198-51-100-1.koala-1.compute.koala',
      ipOwnerId: 'amazon',
      attachTime: now,
    });
    expect(views.get(iid(1))!.allocationId).toBeUndefined();
    expect(views.get(iid(2))).toMatchObject({ ipOwnerId: ALICE.id, allocationId: 'eipalloc-0000000000000000e', associationId: 'eipassoc-0000000000000000e' });
    expect(views.get(iid(3))).not.toHaveProperty('publicIp');
    expect(views.get(iid(3))).not.toHaveProperty('ipOwnerId');
  });
});

describe('ModifyInstanceMetadataOptions', () => {
  const modify = (who: Caller, id: string, input: Parameters<NetworkService['modifyMetadataOptions']>[2], dryRun = false) => service.modifyMetadataOptions(who, id, input, dryRun);

  it('merges the change into the options in force (EC2’s defaults when none were stored) and answers the zone', async () => {
    const { id } = instance(1, ALICE, { state: 'running' });
    expect(await modify(ALICE, id, { httpTokens: 'required' })).toEqual({ zone: 'zone-a', options: { httpTokens: 'required', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' } });
    expect(await modify(ALICE, id, { httpPutResponseHopLimit: 2 })).toMatchObject({ options: { httpTokens: 'required', httpPutResponseHopLimit: 2 } });
    expect(store.data.instances.get(id)!.metadata).toEqual({ httpTokens: 'required', httpPutResponseHopLimit: 2, httpEndpoint: 'enabled' });
  });

  it('a malformed, unknown or other account’s instance; the admin may change any', async () => {
    const { id } = instance(1, ALICE, { state: 'running' });
    expect(await codeOf(() => modify(ALICE, 'i-nope', {}))).toBe('InvalidInstanceID.Malformed');
    expect(await codeOf(() => modify(ALICE, iid(9), {}))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(() => modify(BOB, id, { httpTokens: 'required' }))).toBe('InvalidInstanceID.NotFound');
    expect(store.data.instances.get(id)!.metadata).toBeUndefined();
    expect((await modify(ADMIN, id, { httpEndpoint: 'disabled' })).options.httpEndpoint).toBe('disabled');
  });

  it.each([['terminated'], ['shutting-down']])('an instance %s is IncorrectInstanceState', async (state) => {
    const { id } = instance(1, ALICE, { state });
    expect(await codeOf(() => modify(ALICE, id, { httpTokens: 'required' }))).toBe('IncorrectInstanceState');
  });

  it('DryRun answers DryRunOperation after the checks and changes nothing', async () => {
    const { id } = instance(1, ALICE, { state: 'running' });
    expect(await codeOf(() => modify(BOB, id, { httpTokens: 'required' }, true))).toBe('InvalidInstanceID.NotFound');
    expect(await codeOf(() => modify(ALICE, id, { httpTokens: 'required' }, true))).toBe('DryRunOperation');
    expect(store.data.instances.get(id)!.metadata).toBeUndefined();
  });
});

describe('the zone’s desired state (what is published)', () => {
  /** Two instances placed on n1, one with a public address and a group with a rule. */
  async function placed(): Promise<void> {
    const a = instance(1, ALICE, { node: 'n1', state: 'running', groupIds: ['sg-1'] });
    const b = instance(2, BOB, { node: 'n1', state: 'running' });
    await launch('zone-a', [a], true);
    await launch('zone-a', [b], false);
    store.data.groups.push({ groupId: 'sg-1', name: 'web' }, { groupId: 'sg-unused', name: 'x' });
    store.data.rules.push({ groupId: 'sg-1', isEgress: false, ipProtocol: 'tcp', fromPort: 22, toPort: 22, cidrIpv4: '0.0.0.0/0', cidrIpv6: null, referencedGroupId: null });
  }

  it('holds the zone’s subnet, nodes, live placed interfaces with their public addresses, groups and rules', async () => {
    await placed();
    instance(3, ALICE, { node: 'n1', state: 'terminated' });
    const s = await service.state('zone-a');
    expect(s).toMatchObject({ zone: 'zone-a', version: 1, subnet: '10.0.0.0/28', dnsSuffix: 'koala-1.compute.internal', generatedAt: now.toISOString() });
    expect(s.interfaces.map((i) => [i.instanceId, i.privateIp, i.publicIp, i.groupIds])).toEqual([
      [iid(1), '10.0.0.2', '198.51.100.1', ['sg-1']],
      [iid(2), '10.0.0.3', undefined, []],
    ]);
    expect(s.groups).toEqual([{ groupId: 'sg-1', name: 'web', ingress: [{ protocol: 'tcp', fromPort: 22, toPort: 22, cidrs: ['0.0.0.0/0'], groupIds: [] }], egress: [] }]);
    expect(s.nodes).toEqual([{ node: 'n1', address: '10.0.0.4' }]);
  });

  it('nodes the CC lists, nodes that ask and nodes hosting instances get an address the first time (names it does not allow are ignored)', async () => {
    await launch('zone-a', [instance(1, ALICE, { node: 'n-host', state: 'running' })], false);
    zoneNodes.listed['zone-a'] = ['n-listed', 'Bad Name', 'x'.repeat(64)];
    const s = await service.state('zone-a', ['n-asking', '../etc']);
    expect(s.nodes).toEqual([
      { node: 'n-asking', address: '10.0.0.3' },
      { node: 'n-host', address: '10.0.0.4' },
      { node: 'n-listed', address: '10.0.0.5' },
    ]);
    // Kept: a node's address never changes.
    zoneNodes.listed['zone-a'] = [];
    expect((await service.state('zone-a')).nodes.map((n) => n.address)).toEqual(['10.0.0.3', '10.0.0.4', '10.0.0.5']);
    // The node addresses are taken: the next launch skips them.
    expect((await launch('zone-a', [instance(2, ALICE)], false)).get(iid(2))!.privateIp).toBe('10.0.0.6');
  });

  it('a CC that does not answer does not stop the build; a full subnet leaves a new node waiting', async () => {
    zoneNodes.down = true;
    await launch(
      'zone-a',
      range(1, 12).map((n) => instance(n, ALICE)),
      false,
    );
    const s = await service.state('zone-a', ['n1', 'n2']);
    expect(s.nodes).toEqual([{ node: 'n1', address: '10.0.0.14' }]);
  });

  it('the version grows exactly when the content changes', async () => {
    await placed();
    const first = await service.state('zone-a');
    clock = new Date(now.getTime() + 1000);
    const same = await service.state('zone-a');
    expect([first.version, same.version, store.saves]).toEqual([1, 1, 1]);
    expect(same.generatedAt).toBe(clock.toISOString());
    store.data.rules.push({ groupId: 'sg-1', isEgress: true, ipProtocol: '-1', fromPort: null, toPort: null, cidrIpv4: '0.0.0.0/0', cidrIpv6: null, referencedGroupId: null });
    expect((await service.state('zone-a')).version).toBe(2);
    await store.transaction((tx) => service.release(tx, [iid(2)]));
    expect((await service.state('zone-a')).version).toBe(3);
    expect((await service.state('zone-a')).version).toBe(3);
    // Zones have their own versions.
    expect((await service.state('zone-b')).version).toBe(1);
  });

  it('a zone without a subnet has no state', async () => {
    expect(await codeOf(() => service.state('zone-c'))).toBe('InvalidParameterValue');
  });

  it('zones to republish and the zones of a group come from the store', async () => {
    await placed();
    instance(5, ALICE, { zone: 'zone-b', state: 'running', groupIds: ['sg-1'] });
    expect(await service.zones()).toEqual(['zone-a', 'zone-b']);
    expect((await service.zonesOfGroup('sg-1')).sort()).toEqual(['zone-a', 'zone-b']);
  });
});
