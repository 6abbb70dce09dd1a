// The network agent's host side for real, inside a network namespace this test creates (and
// removes): sysctls, ipsets, Koala's nat chains and jumps, the uplink on a bridge, public
// addresses. Every command runs through ExecHostNetCommands with the namespace (as
// KOALA_NODE_NETNS does); libvirt is the in-memory fake (never a network started here).
import { jest } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
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
// iptables/ipset in a namespace take a few seconds on a loaded machine.
jest.setTimeout(60_000);

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
    expect(
      inNs('ipset', 'save', 'koala-sg-0000000a-ai')
        .split('\n')
        .filter((l) => l.startsWith('add '))
        .sort(),
    ).toEqual(['add koala-sg-0000000a-ai 172.31.0.11', 'add koala-sg-0000000a-ai 172.31.0.12', 'add koala-sg-0000000a-ai 172.31.0.21']);
    expect(inNs('ipset', 'save', 'koala-sg-0000000a-pi')).toContain('add koala-sg-0000000a-pi 198.51.100.0/24,tcp:22');
    expect(inNs('ip', '-o', 'link', 'show', 'dev', 'seg0')).toContain('master koala-br0');
    expect(inNs('ip', '-o', '-4', 'addr', 'show', 'dev', 'pub0')).toContain('198.51.100.11/32');
    expect(inNs('sysctl', '-n', 'net.ipv4.ip_forward').trim()).toBe('1');

    // Twice: nothing to change, the same table, no rule twice.
    expect(await a.apply(sampleState(7))).toEqual([]);
    // A fresh agent (an NC restart) finds the host as it wants it too.
    expect(await agent(libvirt).apply(sampleState(7))).toEqual([]);
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
    const members = inNs('ipset', 'save', 'koala-sg-0000000a-ai');
    expect(members).toContain('add koala-sg-0000000a-ai 172.31.0.13');
    expect(members).not.toContain('172.31.0.11');
    // four sets per local group, no temporary set left
    expect(inNs('ipset', 'list', '-n').split('\n').filter(Boolean).sort()).toEqual(['a', 'b'].flatMap((g) => ['ai', 'ao', 'pi', 'po'].map((k) => `koala-sg-0000000${g}-${k}`)));
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
    expect(nat.split('\n').filter((l) => l.startsWith('-A KOALA-'))).toEqual([
      '-A KOALA-PREROUTING -d 169.254.169.254/32 -i koala-br0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.31.0.2:8775',
    ]);
    expect(nat).toContain('-A PREROUTING -d 192.0.2.1/32 -p tcp -m tcp --dport 2222 -j DNAT --to-destination 192.0.2.2:22');
  });

  it('a failing command surfaces as an error naming it', async () => {
    const bad = new NetworkAgent({
      zone: 'koala-1a',
      config: { ...nodeA, uplink: 'nosuchif0' },
      enabled: true,
      host: new ExecHostNetCommands({ netns: NS }),
      libvirt: new FakeNetworkLibvirt(),
      fetchState: async () => sampleState(),
    });
    await expect(bad.apply(sampleState(10))).rejects.toThrow(/ip -o link show dev nosuchif0 failed/);
  });
});

// Traffic through the rules, between namespaces this test creates: a node namespace with the
// bridge and the node address (what libvirt's network would hold), two guest namespaces on veths
// into the bridge. Nothing leaves these namespaces.
maybe('network agent NAT with traffic (namespaces only)', () => {
  const tag = randomBytes(3).toString('hex');
  const N = `koala-t-${tag}-n`;
  const G1 = `koala-t-${tag}-g1`;
  const G2 = `koala-t-${tag}-g2`;
  const O = `koala-t-${tag}-o`; // "the internet": reaches the node's public interface only
  const ex = (ns: string, ...argv: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8' });
  const servers: import('node:child_process').ChildProcess[] = [];

  /** A TCP server in `ns` answering each connection with the peer's address. */
  async function echoPeer(ns: string, host: string, port: number) {
    const { spawn } = await import('node:child_process');
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', `require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(${port}, '${host}', () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    servers.push(p);
    await new Promise<void>((resolve, reject) => {
      p.stdout!.once('data', () => resolve());
      p.once('exit', (c) => reject(new Error(`server in ${ns} exited ${c}`)));
    });
  }
  /** What the server answered, or `timeout` / an error code (the exit status is not an error here). */
  const connect = (ns: string, host: string, port: number) =>
    spawnSync(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        '-e',
        `const s = require('net').connect(${port}, '${host}'); s.setTimeout(3000, () => { console.log('timeout'); process.exit(2); }); s.on('data', (d) => process.stdout.write(d)); s.on('error', (e) => { console.log(e.code); process.exit(3); });`,
      ],
      { encoding: 'utf8' },
    ).stdout.trim();

  beforeAll(() => {
    for (const ns of [N, G1, G2, O]) {
      execFileSync('ip', ['netns', 'add', ns]);
      ex(ns, 'ip', 'link', 'set', 'lo', 'up');
    }
    ex(N, 'ip', 'link', 'add', 'koala-br0', 'type', 'bridge');
    ex(N, 'ip', 'addr', 'add', '172.31.0.2/20', 'dev', 'koala-br0');
    ex(N, 'ip', 'link', 'set', 'koala-br0', 'up');
    ex(N, 'ip', 'link', 'add', 'seg0', 'type', 'veth', 'peer', 'name', 'seg0p');
    ex(N, 'ip', 'link', 'add', 'pub0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', O);
    ex(N, 'ip', 'addr', 'add', '203.0.113.250/24', 'dev', 'pub0');
    ex(N, 'ip', 'link', 'set', 'pub0', 'up');
    ex(O, 'ip', 'addr', 'add', '203.0.113.9/24', 'dev', 'eth0');
    ex(O, 'ip', 'link', 'set', 'eth0', 'up');
    ex(O, 'ip', 'route', 'add', '198.51.100.0/24', 'via', '203.0.113.250');
    for (const [g, ip, port] of [
      [G1, '172.31.0.11', 'vn1'],
      [G2, '172.31.0.12', 'vn2'],
    ] as const) {
      ex(N, 'ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', g);
      ex(N, 'ip', 'link', 'set', port, 'master', 'koala-br0', 'up');
      ex(g, 'ip', 'addr', 'add', `${ip}/20`, 'dev', 'eth0');
      ex(g, 'ip', 'link', 'set', 'eth0', 'up');
      ex(g, 'ip', 'route', 'add', 'default', 'via', '172.31.0.2');
    }
  });

  afterAll(() => {
    for (const p of servers) p.kill();
    for (const ns of [G1, G2, O, N]) execFileSync('ip', ['netns', 'del', ns]);
  });

  beforeAll(async () => {
    const state = sampleState(7);
    state.interfaces = state.interfaces.map((i) => (i.instanceId === 'i-00000000000000a2' ? { ...i, publicIp: '198.51.100.12' } : i));
    // The outside client may reach G1's port 80 (traffic routed to a guest meets its groups' rules too).
    state.groups.find((g) => g.groupId === 'sg-0000000a')!.ingress.push({ protocol: 'tcp', fromPort: 80, toPort: 80, cidrs: ['203.0.113.9/32'], groupIds: [] });
    const a = new NetworkAgent({ zone: 'koala-1a', config: nodeA, enabled: true, host: new ExecHostNetCommands({ netns: N }), libvirt: new FakeNetworkLibvirt(), fetchState: async () => state });
    await a.apply(state);
  });

  it('the metadata address reaches the node’s relay port with the guest’s own address; a public address hairpins', async () => {
    await echoPeer(N, '172.31.0.2', 8775);
    await echoPeer(G2, '172.31.0.12', 80);
    // The relay sees the guest itself: the NC identifies the caller by it.
    expect(connect(G1, '169.254.169.254', 80)).toBe('172.31.0.11');
    // Another guest's public address: DNATed to its private one, answered back through the node.
    expect(connect(G1, '198.51.100.12', 80)).toBe('172.31.0.2');
    // Direct private traffic is not rewritten.
    expect(connect(G1, '172.31.0.12', 80)).toBe('172.31.0.11');
  });

  it('public addresses: held on the public interface, DNATed inbound, SNATed outbound', async () => {
    await echoPeer(G1, '172.31.0.11', 80);
    await echoPeer(G1, '172.31.0.11', 81);
    await echoPeer(O, '203.0.113.9', 80);
    expect(connect(O, '198.51.100.11', 80)).toBe('203.0.113.9');
    expect(connect(O, '198.51.100.11', 81)).toBe('timeout'); // no rule opens 81
    expect(connect(G1, '203.0.113.9', 80)).toBe('198.51.100.11');
    expect(connect(G2, '203.0.113.9', 80)).toBe('198.51.100.12');
    // Only Koala's addresses carry its label; the interface's own is untouched.
    const addrs = ex(N, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'pub0');
    expect(addrs).toMatch(/inet 198\.51\.100\.11\/32 .*pub0:k/);
    expect(addrs).toMatch(/inet 198\.51\.100\.12\/32 .*pub0:k/);
    expect(addrs).toContain('inet 203.0.113.250/24');
  });
});

// Two clouds on one machine (two test runs side by side, or two labs): each node host is its own
// namespace, so the same zone name, bridge and chain names never meet. Each cloud's rules,
// sets and addresses stay in its namespace; one cloud emptying its zone leaves the other's whole.
maybe('two clouds side by side (one namespace each)', () => {
  const tag = randomBytes(3).toString('hex');
  const clouds = [`koala-t-${tag}-c1`, `koala-t-${tag}-c2`];
  const save = (ns: string, table: string) =>
    execFileSync('ip', ['netns', 'exec', ns, 'iptables-save', '-t', table], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith('-A KOALA-'));
  /** Cloud 2 runs the same zone with other addresses (the same private ones, other public ones). */
  const stateOf = (i: number, version: number) => {
    const s = sampleState(version);
    if (i === 1) s.interfaces = s.interfaces.map((x) => ({ ...x, ...(x.publicIp ? { publicIp: x.publicIp.replace('198.51.100.', '203.0.113.') } : {}) }));
    return s;
  };
  const agentIn = (ns: string, i: number) =>
    new NetworkAgent({ zone: 'koala-1a', config: nodeA, enabled: true, host: new ExecHostNetCommands({ netns: ns }), libvirt: new FakeNetworkLibvirt(), fetchState: async () => stateOf(i, 1) });

  beforeAll(() => {
    for (const ns of clouds) {
      execFileSync('ip', ['netns', 'add', ns]);
      execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
      execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'koala-br0', 'type', 'bridge']);
      execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'seg0', 'type', 'veth', 'peer', 'name', 'seg0p']);
      execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'pub0', 'type', 'veth', 'peer', 'name', 'pub0p']);
    }
  });
  afterAll(() => {
    for (const ns of clouds) spawnSync('ip', ['netns', 'del', ns]);
  });

  it('each cloud holds only its own rules, and one emptying its zone leaves the other as it was', async () => {
    await Promise.all(clouds.map((ns, i) => agentIn(ns, i).apply(stateOf(i, 1))));
    const [nat1, nat2] = clouds.map((ns) => save(ns, 'nat'));
    expect(nat1.join('\n')).toContain('--to-source 198.51.100.11');
    expect(nat1.join('\n')).not.toContain('203.0.113.');
    expect(nat2.join('\n')).toContain('--to-source 203.0.113.11');
    expect(nat2.join('\n')).not.toContain('198.51.100.');
    const mangle2 = save(clouds[1]!, 'mangle');
    expect(mangle2.length).toBeGreaterThan(0);
    const sets2 = execFileSync('ip', ['netns', 'exec', clouds[1]!, 'ipset', 'list', '-n'], { encoding: 'utf8' });
    expect(sets2.trim()).not.toBe('');

    const empty = stateOf(0, 2);
    empty.interfaces = [];
    await agentIn(clouds[0]!, 0).apply(empty);
    expect(save(clouds[0]!, 'nat').join('\n')).not.toContain('SNAT');
    // no guest's rule is left: the firewall chains keep only their fixed rules (no tap, no guest address)
    const left = save(clouds[0]!, 'mangle');
    expect(left.filter((l) => /kv02|172\.31\.0\.(1|2)\d\//.test(l))).toEqual([]);
    expect(left).toEqual(expect.arrayContaining(['-A KOALA-EGRESS -j DROP', '-A KOALA-BRIDGED-IN -j DROP', '-A KOALA-INPUT -m physdev --physdev-in kv+ -j DROP']));
    expect(save(clouds[1]!, 'nat')).toEqual(nat2);
    expect(save(clouds[1]!, 'mangle')).toEqual(mangle2);
    expect(execFileSync('ip', ['netns', 'exec', clouds[1]!, 'ipset', 'list', '-n'], { encoding: 'utf8' })).toBe(sets2);
    expect(execFileSync('ip', ['netns', 'exec', clouds[1]!, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'pub0'], { encoding: 'utf8' })).toContain('203.0.113.11/32');
    // And the machine's own namespace holds none of either.
    expect(execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' })).not.toMatch(/198\.51\.100\.11|203\.0\.113\.11/);
  });
});
