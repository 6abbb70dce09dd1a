// The network agent's host side for real, inside a network namespace this test creates (and
// removes): sysctls, ipsets, Koala's nat chains and jumps, the uplink on a bridge, public
// addresses. Every command runs through ExecHostNetCommands with the namespace (as
// KOALA_NODE_NETNS does); libvirt is the in-memory fake (never a network started here).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ExecHostNetCommands } from '../../apps/node-controller/src/network/host-net-commands.js';
import { NetworkAgent } from '../../apps/node-controller/src/network/network-agent.js';
import { FakeNetworkLibvirt } from '../../apps/node-controller/src/network/network-fakes.js';
import { nodeA, sampleState } from '../../apps/node-controller/src/network/network-fixtures.js';

const NS = `koala-t-${randomBytes(4).toString('hex')}`;
const inNs = (...argv: string[]) => execFileSync('ip', ['netns', 'exec', NS, ...argv], { encoding: 'utf8' });
const natSave = () =>
  inNs('iptables-save', '-t', 'nat')
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
const filterSave = () =>
  inNs('iptables-save', '-t', 'filter')
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');

const canRun = (() => {
  try {
    return process.getuid?.() === 0 && !!execFileSync('which', ['ipset', 'iptables-restore'], { encoding: 'utf8' });
  } catch {
    return false;
  }
})();
const maybe = canRun ? describe : describe.skip;

maybe('network agent in a namespace (iptables, ipset, ip)', () => {
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NS]);
    inNs('ip', 'link', 'set', 'lo', 'up');
    // What libvirt would create when it starts the network: the bridge (inside the namespace only).
    inNs('ip', 'link', 'add', 'koala-br0', 'type', 'bridge');
    inNs('ip', 'link', 'add', 'seg0', 'type', 'veth', 'peer', 'name', 'seg0p');
    inNs('ip', 'link', 'add', 'pub0', 'type', 'veth', 'peer', 'name', 'pub0p');
    inNs('ip', 'addr', 'add', '203.0.113.250/24', 'dev', 'pub0');
    // The operator's own rules: one in PREROUTING, one in another table.
    inNs('iptables', '-t', 'nat', '-A', 'PREROUTING', '-d', '192.0.2.1/32', '-p', 'tcp', '--dport', '2222', '-j', 'DNAT', '--to-destination', '192.0.2.2:22');
    inNs('iptables', '-t', 'filter', '-A', 'INPUT', '-s', '192.0.2.0/24', '-j', 'DROP');
  });

  afterAll(() => {
    // ipsets live in the namespace too: deleting it removes them with everything else.
    execFileSync('ip', ['netns', 'del', NS]);
  });

  const agent = (libvirt = new FakeNetworkLibvirt()) =>
    new NetworkAgent({ zone: 'koala-1a', config: nodeA, enabled: true, host: new ExecHostNetCommands({ netns: NS }), libvirt, fetchState: async () => sampleState() });

  it('applies a state; applying it twice gives the same rules, none duplicated, and changes nothing', async () => {
    const libvirt = new FakeNetworkLibvirt();
    const a = agent(libvirt);
    const changes = await a.apply(sampleState(7));
    expect(changes).toEqual(expect.arrayContaining(['sysctl net.ipv4.ip_forward=1', 'uplink seg0 -> koala-br0', 'address 198.51.100.11 on pub0']));
    const first = natSave();
    expect(first).toContain('-A PREROUTING -j KOALA-PREROUTING');
    expect(first).toContain('-A POSTROUTING -j KOALA-POSTROUTING');
    expect(first).toContain('-A OUTPUT -j KOALA-OUTPUT');
    expect(first).toContain('-A KOALA-PREROUTING -d 169.254.169.254/32 -i koala-br0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.31.0.2:8775');
    expect(first).toContain('-A KOALA-POSTROUTING -s 172.31.0.11/32 ! -d 172.31.0.0/20 -j SNAT --to-source 198.51.100.11');
    expect(inNs('ipset', 'list', 'koala-sg-0000000a')).toMatch(/Members:\n172\.31\.0\.11\n172\.31\.0\.12\n172\.31\.0\.21|Members:[\s\S]*172\.31\.0\.21/);
    expect(inNs('ip', '-o', 'link', 'show', 'dev', 'seg0')).toContain('master koala-br0');
    expect(inNs('ip', '-o', '-4', 'addr', 'show', 'dev', 'pub0')).toContain('198.51.100.11/32');
    expect(inNs('sysctl', '-n', 'net.ipv4.ip_forward').trim()).toBe('1');

    // Twice: nothing to change, the same table, no rule twice.
    expect(await a.apply(sampleState(7))).toEqual([]);
    // A fresh agent (an NC restart) finds the host as it wants it too.
    expect((await agent(libvirt).apply(sampleState(7))).filter((c) => !c.startsWith('filter '))).toEqual([]);
    const second = natSave();
    expect(second).toBe(first);
    const rules = second.split('\n').filter((l) => l.startsWith('-A '));
    expect(new Set(rules).size).toBe(rules.length);
  });

  it('a changed state replaces the rules, set members and addresses; the operator’s rules survive', async () => {
    const next = sampleState(8);
    next.interfaces = next.interfaces.filter((i) => i.instanceId !== 'i-00000000000000a1');
    next.interfaces.push({ instanceId: 'i-00000000000000a3', node: 'node-a', mac: '02:00:00:00:00:a3', privateIp: '172.31.0.13', publicIp: '198.51.100.13', groupIds: ['sg-0000000a'] });
    await agent().apply(next);
    const nat = natSave();
    expect(nat).not.toContain('198.51.100.11');
    expect(nat).toContain('-A KOALA-PREROUTING -d 198.51.100.13/32 -j DNAT --to-destination 172.31.0.13');
    expect(nat).toContain('-A KOALA-POSTROUTING -s 172.31.0.13/32 ! -d 172.31.0.0/20 -j SNAT --to-source 198.51.100.13');
    expect(nat.split('\n').filter((l) => l === '-A PREROUTING -j KOALA-PREROUTING')).toHaveLength(1);
    expect(nat).toContain('-A PREROUTING -d 192.0.2.1/32 -p tcp -m tcp --dport 2222 -j DNAT --to-destination 192.0.2.2:22');
    expect(filterSave()).toContain('-A INPUT -s 192.0.2.0/24 -j DROP');
    const members = inNs('ipset', 'save', 'koala-sg-0000000a');
    expect(members).toContain('add koala-sg-0000000a 172.31.0.13');
    expect(members).not.toContain('172.31.0.11');
    expect(inNs('ipset', 'list', '-n').split('\n').filter(Boolean).sort()).toEqual(['koala-sg-0000000a']); // no temporary set left
    const addrs = inNs('ip', '-o', '-4', 'addr', 'show', 'dev', 'pub0');
    expect(addrs).toContain('198.51.100.13/32');
    expect(addrs).not.toContain('198.51.100.11/32');
    expect(addrs).toContain('203.0.113.250/24'); // not Koala's: kept
  });

  it('a group nobody references any more loses its ipset; an empty zone leaves empty chains, jumps kept', async () => {
    const empty = sampleState(9);
    empty.interfaces = [];
    await agent().apply(empty);
    expect(inNs('ipset', 'list', '-n').trim()).toBe('');
    const nat = natSave();
    expect(nat.split('\n').filter((l) => l.startsWith('-A KOALA-'))).toEqual(['-A KOALA-PREROUTING -d 169.254.169.254/32 -i koala-br0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.31.0.2:8775']);
    expect(nat).toContain('-A PREROUTING -d 192.0.2.1/32 -p tcp -m tcp --dport 2222 -j DNAT --to-destination 192.0.2.2:22');
  });

  it('a failing command surfaces as an error naming it', async () => {
    const bad = new NetworkAgent({ zone: 'koala-1a', config: { ...nodeA, uplink: 'nosuchif0' }, enabled: true, host: new ExecHostNetCommands({ netns: NS }), libvirt: new FakeNetworkLibvirt(), fetchState: async () => sampleState() });
    await expect(bad.apply(sampleState(10))).rejects.toThrow(/ip -o link show dev nosuchif0 failed/);
  });
});
