import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZoneNetworkState } from '@koala/contracts';
import { sampleState, nodeA } from './network-fixtures.js';
import { filterName, inCidr, normalCidr, planNetwork } from './network-plan.js';

const here = dirname(fileURLToPath(import.meta.url));
const golden = (name: string) => readFileSync(join(here, 'golden', name), 'utf8');

describe('planNetwork (golden)', () => {
  const plan = planNetwork(ZoneNetworkState.parse(sampleState()), nodeA)!;

  it('libvirt network: open forward, the bridge, the node address, DHCP hosts of this node only', () => {
    expect(plan.network.xml).toBe(golden('network.xml'));
    expect(plan.network.hosts.map((h) => h.ip)).toEqual(['172.31.0.11', '172.31.0.12']);
  });

  it('one nwfilter per local instance: anti-spoofing, replies, DHCP, node services, group rules, drop', () => {
    expect(plan.filters.map((f) => f.name)).toEqual(['koala-i-i-00000000000000a1', 'koala-i-i-00000000000000a2']);
    expect(plan.filters[0]!.xml).toBe(golden('filter-a1.xml'));
    expect(plan.filters[1]!.xml).toBe(golden('filter-a2.xml'));
  });

  it('ipsets: every referenced group with all its members across the zone', () => {
    expect(plan.ipsets).toEqual([{ name: 'koala-sg-0000000a', members: ['172.31.0.11', '172.31.0.12', '172.31.0.21'] }]);
  });

  it('NAT: exact iptables-restore text of Koala chains only', () => {
    expect(plan.natRestore).toBe(golden('nat.rules'));
    expect(plan.natRestore).not.toMatch(/^-A (PREROUTING|POSTROUTING|OUTPUT) /m);
    expect(plan.natRestore).not.toMatch(/^:(PREROUTING|POSTROUTING|OUTPUT|INPUT) /m);
  });

  it('IMDSv2 hop limit: one TTL rule per local instance, on token connections only, in Koala’s mangle chain', () => {
    expect(plan.mangleRestore).toBe(golden('mangle.rules'));
    const limited = sampleState();
    limited.interfaces = limited.interfaces.map((i) => (i.instanceId === 'i-00000000000000a2' ? { ...i, metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 3, httpEndpoint: 'enabled' } } : i));
    expect(planNetwork(limited, nodeA)!.mangle).toEqual([
      '-A KOALA-IMDS-TTL -s 172.31.0.2/32 -d 172.31.0.11/32 -p tcp -m tcp --sport 8775 -m connmark --mark 0x20000000/0x20000000 -j TTL --ttl-set 1',
      '-A KOALA-IMDS-TTL -s 172.31.0.2/32 -d 172.31.0.12/32 -p tcp -m tcp --sport 8775 -m connmark --mark 0x20000000/0x20000000 -j TTL --ttl-set 3',
    ]);
  });

  it('public addresses: only this node’s instances, only when a public interface is set', () => {
    expect(plan.publicAddresses).toEqual(['198.51.100.11']);
    expect(planNetwork(sampleState(), { ...nodeA, publicIf: undefined })!.publicAddresses).toEqual([]);
  });
});

describe('planNetwork (rules)', () => {
  it('is deterministic whatever the order of the state', () => {
    const s = sampleState();
    const shuffled: ZoneNetworkState = {
      ...s,
      nodes: [...s.nodes].reverse(),
      interfaces: [...s.interfaces].reverse().map((i) => ({ ...i, groupIds: [...i.groupIds].reverse() })),
      groups: [...s.groups].reverse().map((g) => ({ ...g, ingress: [...g.ingress].reverse().map((r) => ({ ...r, cidrs: [...r.cidrs].reverse() })) })),
    };
    expect(planNetwork(shuffled, nodeA)).toEqual(planNetwork(s, nodeA));
  });

  it('a node the state does not know has nothing to do', () => {
    expect(planNetwork(sampleState(), { ...nodeA, node: 'node-z' })).toBeUndefined();
  });

  it('another node holds its own instances', () => {
    const b = planNetwork(sampleState(), { ...nodeA, node: 'node-b' })!;
    expect(b.nodeAddress).toBe('172.31.0.3');
    expect(b.filters.map((f) => f.instanceId)).toEqual(['i-00000000000000b1']);
    expect(b.natRestore).toContain('-A KOALA-POSTROUTING -s 172.31.0.21/32 ! -d 172.31.0.0/20 -j SNAT --to-source 198.51.100.21');
    expect(b.natRestore).not.toContain('--to-source 198.51.100.11');
    // every node DNATs every public address of the zone
    expect(b.natRestore).toContain('-A KOALA-PREROUTING -d 198.51.100.11/32 -j DNAT --to-destination 172.31.0.11');
  });

  it('local overrides: a launch the state does not know yet is added; a terminated one left out', () => {
    const extra = { instanceId: 'i-00000000000000a3', node: 'node-a', mac: '02:00:00:00:00:a3', privateIp: '172.31.0.13', groupIds: ['sg-0000000a'] };
    const p = planNetwork(sampleState(), nodeA, { extra: [extra], exclude: ['i-00000000000000a1'] })!;
    expect(p.filters.map((f) => f.instanceId)).toEqual(['i-00000000000000a2', 'i-00000000000000a3']);
    expect(p.network.hosts.map((h) => h.ip)).toEqual(['172.31.0.12', '172.31.0.13']);
    expect(p.ipsets[0]!.members).toEqual(['172.31.0.12', '172.31.0.13', '172.31.0.21']);
    expect(p.natRestore).not.toContain('198.51.100.11');
  });

  it('a group the state does not know gives no rule: inbound dropped, egress dropped', () => {
    const s = sampleState();
    s.interfaces = [{ ...s.interfaces[2]!, groupIds: ['sg-000000ff'] }];
    const xml = planNetwork(s, nodeA)!.filters[0]!.xml;
    expect(xml).not.toContain("priority='500'");
    expect(xml).toContain("<rule action='drop' direction='inout' priority='1000' statematch='false'>");
  });

  it('ports: any port, ranges, ICMP any type, udp', () => {
    const s = sampleState();
    s.groups = [
      {
        groupId: 'sg-0000000a',
        name: 'x',
        ingress: [
          { protocol: 'udp', fromPort: 0, toPort: 65535, cidrs: ['10.9.0.0/16'], groupIds: [] },
          { protocol: 'icmp', fromPort: -1, toPort: -1, cidrs: ['10.9.8.7/8'], groupIds: [] },
          { protocol: 'icmp', fromPort: 3, toPort: 4, cidrs: [], groupIds: ['sg-0000000b'] },
        ],
        egress: [{ protocol: 'tcp', fromPort: 443, toPort: 443, cidrs: [], groupIds: ['sg-0000000b'] }],
      },
    ];
    const p = planNetwork(s, nodeA)!;
    const xml = p.filters[0]!.xml;
    expect(xml).toContain("<udp srcipaddr='10.9.0.0' srcipmask='16'/>");
    expect(xml).toContain("<icmp srcipaddr='10.0.0.0' srcipmask='8'/>");
    // libvirt drops `ipset` from tcp/udp/icmp: group peers of those rules are the members' addresses.
    expect(xml).toContain("<icmp srcipaddr='172.31.0.12' type='3' code='4'/>");
    expect(xml).toContain("<rule action='accept' direction='out' priority='500'>\n    <tcp dstipaddr='172.31.0.12' dstportstart='443'/>");
    expect(xml).not.toContain('ipset');
    expect(p.ipsets).toEqual([]); // no `all` rule names a group
    // A member joining: the filters naming its group change (one rule more), no set involved.
    s.interfaces.push({ instanceId: 'i-00000000000000b9', node: 'node-b', mac: '02:00:00:00:00:b9', privateIp: '172.31.0.29', groupIds: ['sg-0000000b'] });
    const joined = planNetwork(s, nodeA)!.filters[0]!.xml;
    expect(joined).toContain("<icmp srcipaddr='172.31.0.29' type='3' code='4'/>");
    expect(joined).toContain("<tcp dstipaddr='172.31.0.29' dstportstart='443'/>");
    // A group without members: its rule accepts nobody.
    s.interfaces = s.interfaces.filter((i) => !i.groupIds.includes('sg-0000000b'));
    expect(planNetwork(s, nodeA)!.filters[0]!.xml).not.toMatch(/type='3'|dstportstart='443'/);
  });

  it("group peers of `all` rules stay an ipset (the only protocol whose ipset libvirt keeps)", () => {
    const p = planNetwork(sampleState(), nodeA)!;
    expect(p.filters[0]!.xml).toContain("<all ipset='koala-sg-0000000a' ipsetflags='src'/>");
    expect(p.ipsets).toEqual([{ name: 'koala-sg-0000000a', members: ['172.31.0.11', '172.31.0.12', '172.31.0.21'] }]);
  });

  it('names and address helpers', () => {
    expect(filterName('i-0123456789abcdef0')).toBe('koala-i-i-0123456789abcdef0');
    expect(normalCidr('10.1.2.3/8')).toBe('10.0.0.0/8');
    expect(normalCidr('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(inCidr('172.31.15.255', '172.31.0.0/20')).toBe(true);
    expect(inCidr('172.31.16.0', '172.31.0.0/20')).toBe(false);
  });
});
