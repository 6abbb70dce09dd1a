import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZoneNetworkState } from '@koala/contracts';
import { sampleState, nodeA } from './network-fixtures.js';
import { tapName } from './guest-firewall.js';
import { inCidr, normalCidr } from './net-addresses.js';
import { DHCP_ANCHOR_MAC, planNetwork } from './network-plan.js';

const here = dirname(fileURLToPath(import.meta.url));
const golden = (name: string) => readFileSync(join(here, 'golden', name), 'utf8');

describe('planNetwork (golden)', () => {
  const plan = planNetwork(ZoneNetworkState.parse(sampleState()), nodeA)!;

  it('libvirt network: open forward, the bridge, the node address, DHCP hosts of this node only (and the anchor entry)', () => {
    expect(plan.network.xml).toBe(golden('network.xml'));
    expect(plan.network.hosts.map((h) => h.ip)).toEqual(['172.31.0.2', '172.31.0.11', '172.31.0.12']);
    // DHCP stays on with no guest: the anchor holds the node's own address under a MAC no guest has.
    expect(plan.network.hosts[0]).toEqual({ mac: DHCP_ANCHOR_MAC, ip: '172.31.0.2', name: 'koala-dhcp-anchor' });
    expect(planNetwork({ ...sampleState(), interfaces: [] }, nodeA)!.network.hosts).toEqual([plan.network.hosts[0]]);
  });

  it("security groups: replies, each local guest's egress by its tap, ingress bridged to its tap and routed to its address, the node's services; drops", () => {
    expect(plan.firewallRestore).toBe(golden('firewall.rules'));
    expect(plan.firewallRestore).not.toMatch(/^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) /m);
  });

  it('anti-spoofing: per local guest its own MAC, IPv4 address and ARP; only IPv4 and ARP to a guest; unknown taps dropped', () => {
    expect(plan.l2Restore).toBe(golden('l2.rules'));
    expect(plan.l2Restore).not.toMatch(/^-A (PREROUTING|OUTPUT|POSTROUTING) /m);
  });

  it('ipsets: four per local group (all / tcp-udp × in / out), peer groups as their members across the zone', () => {
    expect(plan.ipsets.map((x) => `${x.name} ${x.type}`)).toEqual([
      'koala-sg-0000000a-ai hash:net',
      'koala-sg-0000000a-pi hash:net,port',
      'koala-sg-0000000a-ao hash:net',
      'koala-sg-0000000a-po hash:net,port',
      'koala-sg-0000000b-ai hash:net',
      'koala-sg-0000000b-pi hash:net,port',
      'koala-sg-0000000b-ao hash:net',
      'koala-sg-0000000b-po hash:net,port',
    ]);
    const m = new Map(plan.ipsets.map((x) => [x.name, x.members]));
    expect(m.get('koala-sg-0000000a-ai')).toEqual(['172.31.0.11', '172.31.0.12', '172.31.0.21']); // all from the group itself
    expect(m.get('koala-sg-0000000a-pi')).toEqual(['198.51.100.0/24,tcp:22', '203.0.113.7,tcp:22']);
    expect(m.get('koala-sg-0000000a-ao')).toEqual(['0.0.0.0/1', '128.0.0.0/1']); // hash:net has no /0
    expect(m.get('koala-sg-0000000a-po')).toEqual([]);
    // tcp 80 from anywhere, tcp 8000-8080 from a /24: one entry per port
    expect(m.get('koala-sg-0000000b-pi')).toHaveLength(2 + 81);
    expect(m.get('koala-sg-0000000b-pi')).toEqual(expect.arrayContaining(['0.0.0.0/1,tcp:80', '128.0.0.0/1,tcp:80', '203.0.113.0/24,tcp:8000', '203.0.113.0/24,tcp:8080']));
  });

  it('NAT: exact iptables-restore text of Koala chains only', () => {
    expect(plan.natRestore).toBe(golden('nat.rules'));
    expect(plan.natRestore).not.toMatch(/^-A (PREROUTING|POSTROUTING|OUTPUT) /m);
    expect(plan.natRestore).not.toMatch(/^:(PREROUTING|POSTROUTING|OUTPUT|INPUT) /m);
  });

  it('rules sets cannot hold: one rule per peer, the same bridged and routed', () => {
    // Rules sets cannot hold: a port range too wide to list, a group's members as peers.
    const wide = sampleState();
    wide.groups.find((g) => g.groupId === 'sg-0000000b')!.ingress = [
      { protocol: 'tcp', fromPort: 0, toPort: 65535, cidrs: ['10.0.0.0/8'], groupIds: [] },
      { protocol: 'udp', fromPort: 1000, toPort: 3000, cidrs: [], groupIds: ['sg-0000000a'] },
      { protocol: 'icmp', fromPort: 3, toPort: 4, cidrs: ['0.0.0.0/0'], groupIds: [] },
    ];
    const rules = planNetwork(wide, nodeA)!.firewall;
    expect(rules.filter((r) => r.includes('-d 172.31.0.12/32') && !r.includes('--match-set'))).toEqual([
      '-A KOALA-ROUTED-IN -d 172.31.0.12/32 -p icmp -m icmp --icmp-type 8 -j RETURN',
      '-A KOALA-ROUTED-IN -s 10.0.0.0/8 -d 172.31.0.12/32 -p tcp -j RETURN',
      '-A KOALA-ROUTED-IN -s 172.31.0.11/32 -d 172.31.0.12/32 -p udp -m udp --dport 1000:3000 -j RETURN',
      '-A KOALA-ROUTED-IN -s 172.31.0.12/32 -d 172.31.0.12/32 -p udp -m udp --dport 1000:3000 -j RETURN',
      '-A KOALA-ROUTED-IN -s 172.31.0.21/32 -d 172.31.0.12/32 -p udp -m udp --dport 1000:3000 -j RETURN',
      '-A KOALA-ROUTED-IN -d 172.31.0.12/32 -p icmp -m icmp --icmp-type 3/4 -j RETURN',
      '-A KOALA-ROUTED-IN -d 172.31.0.12/32 -j DROP',
    ]);
    const tap = '--physdev-out kv0200000000a2 --physdev-is-bridged';
    expect(rules.filter((r) => r.includes(tap) && !r.includes('--match-set'))).toEqual([
      `-A KOALA-BRIDGED-IN -p icmp -m physdev ${tap} -m icmp --icmp-type 8 -j RETURN`,
      `-A KOALA-BRIDGED-IN -s 10.0.0.0/8 -p tcp -m physdev ${tap} -j RETURN`,
      `-A KOALA-BRIDGED-IN -s 172.31.0.11/32 -p udp -m physdev ${tap} -m udp --dport 1000:3000 -j RETURN`,
      `-A KOALA-BRIDGED-IN -s 172.31.0.12/32 -p udp -m physdev ${tap} -m udp --dport 1000:3000 -j RETURN`,
      `-A KOALA-BRIDGED-IN -s 172.31.0.21/32 -p udp -m physdev ${tap} -m udp --dport 1000:3000 -j RETURN`,
      `-A KOALA-BRIDGED-IN -p icmp -m physdev ${tap} -m icmp --icmp-type 3/4 -j RETURN`,
    ]);
  });

  it('IMDSv2 hop limit: one TTL rule per local instance, on token connections only, in Koala’s mangle chain', () => {
    expect(plan.mangleRestore).toBe(golden('mangle.rules'));
    const limited = sampleState();
    limited.interfaces = limited.interfaces.map((i) =>
      i.instanceId === 'i-00000000000000a2' ? { ...i, metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 3, httpEndpoint: 'enabled' } } : i,
    );
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
    expect([...new Set(b.firewall.flatMap((r) => /--physdev-(?:in|out) (kv0\w+)/.exec(r)?.[1] ?? []))]).toEqual([tapName('02:00:00:00:00:b1')]);
    expect(b.l2.filter((r) => r.includes(' -i kv02')).every((r) => r.includes('kv0200000000b1'))).toBe(true);
    expect(b.natRestore).toContain('-A KOALA-POSTROUTING -s 172.31.0.21/32 ! -d 172.31.0.0/20 -j SNAT --to-source 198.51.100.21');
    expect(b.natRestore).not.toContain('--to-source 198.51.100.11');
    // every node DNATs every public address of the zone
    expect(b.natRestore).toContain('-A KOALA-PREROUTING -d 198.51.100.11/32 -j DNAT --to-destination 172.31.0.11');
  });

  it('local overrides: a launch the state does not know yet is added; a terminated one left out', () => {
    const extra = { instanceId: 'i-00000000000000a3', node: 'node-a', mac: '02:00:00:00:00:a3', privateIp: '172.31.0.13', groupIds: ['sg-0000000a'] };
    const p = planNetwork(sampleState(), nodeA, { extra: [extra], exclude: ['i-00000000000000a1'] })!;
    expect([...new Set(p.l2.flatMap((r) => / -i (kv02\w+) /.exec(r)?.[1] ?? []))]).toEqual(['kv0200000000a2', 'kv0200000000a3']);
    expect(p.network.hosts.map((h) => h.ip)).toEqual(['172.31.0.2', '172.31.0.12', '172.31.0.13']);
    expect(p.ipsets[0]!.members).toEqual(['172.31.0.12', '172.31.0.13', '172.31.0.21']); // koala-sg-0000000a-ai
    expect(p.natRestore).not.toContain('198.51.100.11');
  });

  it('a group the state does not know gives no rule: inbound dropped, egress dropped (but DHCP)', () => {
    const s = sampleState();
    s.interfaces = [{ ...s.interfaces[2]!, groupIds: ['sg-000000ff'] }];
    const rules = planNetwork(s, nodeA)!.firewall;
    expect(rules.filter((r) => r.includes('kv0200000000a1'))).toEqual(['-A KOALA-EGRESS -p udp -m physdev --physdev-in kv0200000000a1 -m udp --sport 68 --dport 67 -j RETURN']);
    expect(rules.filter((r) => r.includes('172.31.0.11'))).toEqual(['-A KOALA-ROUTED-IN -d 172.31.0.11/32 -j DROP']);
    expect(rules).toEqual(expect.arrayContaining(['-A KOALA-EGRESS -j DROP', '-A KOALA-BRIDGED-IN -j DROP']));
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
    const routed = (q: typeof p) => q.firewall.filter((r) => r.startsWith('-A KOALA-ROUTED-IN ') && r.includes('-d 172.31.0.11/32'));
    const egress = (q: typeof p) => q.firewall.filter((r) => r.startsWith('-A KOALA-EGRESS ') && r.includes('kv0200000000a1'));
    const sets = (q: typeof p) => new Map(q.ipsets.map((x) => [x.name, x.members]));
    // Sets cannot hold these (65536 ports; icmp, which `ipset save` prints by name): rules of their own.
    expect(routed(p)).toEqual([
      '-A KOALA-ROUTED-IN -d 172.31.0.11/32 -m set --match-set koala-sg-0000000a-ai src -j RETURN',
      '-A KOALA-ROUTED-IN -d 172.31.0.11/32 -m set --match-set koala-sg-0000000a-pi src,dst -j RETURN',
      '-A KOALA-ROUTED-IN -s 10.9.0.0/16 -d 172.31.0.11/32 -p udp -j RETURN',
      '-A KOALA-ROUTED-IN -s 10.0.0.0/8 -d 172.31.0.11/32 -p icmp -j RETURN',
      '-A KOALA-ROUTED-IN -s 172.31.0.12/32 -d 172.31.0.11/32 -p icmp -m icmp --icmp-type 3/4 -j RETURN',
      '-A KOALA-ROUTED-IN -d 172.31.0.11/32 -j DROP',
    ]);
    // tcp 443 to the members of B: set entries, matched by the guest's one set rule
    expect(egress(p)).toEqual([
      '-A KOALA-EGRESS -p udp -m physdev --physdev-in kv0200000000a1 -m udp --sport 68 --dport 67 -j RETURN',
      '-A KOALA-EGRESS -m physdev --physdev-in kv0200000000a1 -m set --match-set koala-sg-0000000a-ao dst -j RETURN',
      '-A KOALA-EGRESS -m physdev --physdev-in kv0200000000a1 -m set --match-set koala-sg-0000000a-po dst,dst -j RETURN',
    ]);
    expect(sets(p).get('koala-sg-0000000a-po')).toEqual(['172.31.0.12,tcp:443']);
    // A member joining: the rules sets cannot hold gain a peer, the set gets the member.
    s.interfaces.push({ instanceId: 'i-00000000000000b9', node: 'node-b', mac: '02:00:00:00:00:b9', privateIp: '172.31.0.29', groupIds: ['sg-0000000b'] });
    const joined = planNetwork(s, nodeA)!;
    expect(routed(joined)).toContain('-A KOALA-ROUTED-IN -s 172.31.0.29/32 -d 172.31.0.11/32 -p icmp -m icmp --icmp-type 3/4 -j RETURN');
    expect(sets(joined).get('koala-sg-0000000a-po')).toEqual(['172.31.0.12,tcp:443', '172.31.0.29,tcp:443']);
    // A group without members: its rule accepts nobody.
    s.interfaces = s.interfaces.filter((i) => !i.groupIds.includes('sg-0000000b'));
    const none = planNetwork(s, nodeA)!;
    expect(none.firewall.join('\n')).not.toContain('--icmp-type 3/4');
    expect(sets(none).get('koala-sg-0000000a-po')).toEqual([]);
  });

  it('a rule change that sets hold changes set members only, never a rule', () => {
    const s = sampleState();
    const before = planNetwork(s, nodeA)!;
    s.groups
      .find((g) => g.groupId === 'sg-0000000a')!
      .ingress.push(
        { protocol: 'tcp', fromPort: 8080, toPort: 8080, cidrs: ['198.51.100.0/24'], groupIds: [] },
        { protocol: 'udp', fromPort: 53, toPort: 54, cidrs: [], groupIds: ['sg-0000000b'] },
        { protocol: 'all', fromPort: -1, toPort: -1, cidrs: ['10.1.2.3/16'], groupIds: [] },
      );
    const after = planNetwork(s, nodeA)!;
    expect(after.firewall).toEqual(before.firewall);
    expect(after.l2).toEqual(before.l2);
    const m = new Map(after.ipsets.map((x) => [x.name, x.members]));
    expect(m.get('koala-sg-0000000a-pi')).toEqual(['172.31.0.12,udp:53', '172.31.0.12,udp:54', '198.51.100.0/24,tcp:22', '198.51.100.0/24,tcp:8080', '203.0.113.7,tcp:22']);
    expect(m.get('koala-sg-0000000a-ai')).toEqual(['10.1.0.0/16', '172.31.0.11', '172.31.0.12', '172.31.0.21']);
  });

  it('names and address helpers', () => {
    expect(tapName('02:0A:bc:00:00:a1')).toBe('kv020abc0000a1');
    expect(tapName('02:0A:bc:00:00:a1').length).toBeLessThanOrEqual(15); // IFNAMSIZ
    expect(normalCidr('10.1.2.3/8')).toBe('10.0.0.0/8');
    expect(normalCidr('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(inCidr('172.31.15.255', '172.31.0.0/20')).toBe(true);
    expect(inCidr('172.31.16.0', '172.31.0.0/20')).toBe(false);
  });
});
