import type { InstanceSpec, ZoneNetworkState } from '@koala/contracts';
import { NetworkAgent, type NetworkAgentOptions } from './network-agent.js';
import { FakeHost, FakeNetworkLibvirt } from './network-fakes.js';
import { nodeA, sampleState } from './network-fixtures.js';

function setup(over: Partial<NetworkAgentOptions> = {}) {
  const host = new FakeHost();
  const libvirt = new FakeNetworkLibvirt();
  let served: ZoneNetworkState | undefined = sampleState();
  const agent = new NetworkAgent({
    zone: 'koala-1a',
    config: nodeA,
    enabled: true,
    host,
    libvirt,
    fetchState: async () => {
      if (!served) throw new Error('no responders');
      return served;
    },
    retryMs: 10,
    reapplyMs: 60_000,
    ...over,
  });
  const serve = (s: ZoneNetworkState | undefined) => (served = s);
  return { host, libvirt, agent, serve };
}

const writes = (h: FakeHost, l: FakeNetworkLibvirt) => [...h.writes, ...l.writes];
/** Whether the node holds a guest's rules: its tap's egress and ingress (mangle) and anti-spoofing (ebtables). */
const guarded = (h: FakeHost, mac: string) => {
  const tap = `kv${mac.replace(/:/g, '')}`;
  return (
    h.mangle.get('KOALA-EGRESS')!.some((r) => r.includes(`--physdev-in ${tap} `)) &&
    h.mangle.get('KOALA-BRIDGED-IN')!.some((r) => r.includes(`--physdev-out ${tap} `)) &&
    h.ebnat.get('KOALA-L2-IN')!.some((r) => r.includes(`-i ${tap} `))
  );
};
const A1 = '02:00:00:00:00:a1';
const A4 = '02:00:00:00:00:a4';
const A5 = '02:00:00:00:00:a5';
const clear = (h: FakeHost, l: FakeNetworkLibvirt) => {
  h.writes = [];
  l.writes = [];
};

function launchSpec(id: string, ip: string, mac: string, groups = ['sg-0000000a']): InstanceSpec {
  return {
    instanceId: id,
    network: { mac, privateIp: ip, subnet: '172.31.0.0/20', privateDnsName: `ip-${ip.replace(/\./g, '-')}.koala-1a.compute.internal`, groups: groups.map((g) => ({ groupId: g, name: g })) },
  } as unknown as InstanceSpec;
}

describe('NetworkAgent', () => {
  it('applies a state, and applying it again changes nothing', async () => {
    const { host, libvirt, agent } = setup();
    const applied: number[] = [];
    agent.onApplied((s) => applied.push(s.version));
    const state = sampleState();
    const first = await agent.apply(state);
    expect(first.length).toBeGreaterThan(0);
    expect(libvirt.networks.get('koala-koala-1a')).toMatchObject({ active: true, autostart: true });
    expect(libvirt.networks.get('koala-koala-1a')!.hosts.map((h) => h.ip)).toEqual(['172.31.0.2', '172.31.0.11', '172.31.0.12']);
    expect(libvirt.filters.size).toBe(0); // no nwfilter: Koala's own chains
    expect(guarded(host, A1) && guarded(host, '02:00:00:00:00:a2')).toBe(true);
    expect(host.mangle.get('FORWARD')).toEqual(['-A FORWARD -j KOALA-FORWARD']);
    expect(host.mangle.get('INPUT')).toEqual(['-A INPUT -j KOALA-INPUT']);
    expect(host.ebnat.get('PREROUTING')).toEqual(['-A PREROUTING -j KOALA-L2-IN']);
    expect(host.ebnat.get('POSTROUTING')).toEqual(['-A POSTROUTING -j KOALA-L2-OUT']);
    expect(host.ebPolicy.get('KOALA-L2-IN')).toBe('RETURN');
    expect(host.ipsets.get('koala-sg-0000000a-ai')).toEqual(['172.31.0.11', '172.31.0.12', '172.31.0.21']);
    expect(host.ipsets.get('koala-sg-0000000a-pi')).toEqual(['198.51.100.0/24,tcp:22', '203.0.113.7,tcp:22']);
    expect(host.ipsets.size).toBe(8);
    expect(host.sysctl.get('net.ipv4.ip_forward')).toBe('1');
    expect(host.sysctl.get('net.bridge.bridge-nf-call-iptables')).toBe('1');
    expect(host.links.get('seg0')).toEqual({ master: 'koala-br0', up: true });
    expect(host.nat.get('PREROUTING')).toEqual(['-A PREROUTING -j KOALA-PREROUTING', '-A PREROUTING -d 192.0.2.1/32 -j DNAT --to-destination 192.0.2.2']);
    expect(host.nat.get('KOALA-PREROUTING')).toHaveLength(3);
    expect(host.addresses.get('pub0')).toEqual(['203.0.113.250/24 pub0', '198.51.100.11/32 pub0:k']);

    clear(host, libvirt);
    expect(await agent.apply(state)).toEqual([]);
    expect(writes(host, libvirt)).toEqual([]);
    expect(applied).toEqual([]); // apply() is the bare pass; receive() reports
  });

  it("redefines a network made without the zone's dnsmasq options (an older NC's), keeping its DHCP hosts", async () => {
    const { host, libvirt, agent } = setup();
    await agent.apply(sampleState());
    const net = libvirt.networks.get('koala-koala-1a')!;
    expect(net.xml).toContain('<dnsmasq:option value="dhcp-ignore=tag:!known"/>');
    net.xml = net.xml.replace(/ xmlns:dnsmasq="[^"]*"/, '').replace(/\s*<dnsmasq:options>[\s\S]*<\/dnsmasq:options>/, '');
    clear(host, libvirt);
    const changes = await agent.apply(sampleState());
    expect(changes).toContain('network koala-koala-1a redefined');
    expect(libvirt.networks.get('koala-koala-1a')!.xml).toContain('dhcp-ignore=tag:!known');
    clear(host, libvirt);
    expect(await agent.apply(sampleState())).toEqual([]);
  });

  it('a restarted NC (a fresh agent) finds everything in place and changes nothing; a chain edited behind its back is rewritten', async () => {
    const { host, libvirt, agent } = setup();
    await agent.apply(sampleState());
    const again = new NetworkAgent({ zone: 'koala-1a', config: nodeA, enabled: true, host, libvirt, fetchState: async () => sampleState() });
    clear(host, libvirt);
    expect(await again.apply(sampleState())).toEqual([]);
    expect(writes(host, libvirt)).toEqual([]);
    const edit = (rules: string[]) => rules.map((r) => r.replace('--icmp-type 8 ', '--icmp-type 9 '));
    host.mangle.set('KOALA-BRIDGED-IN', edit(host.mangle.get('KOALA-BRIDGED-IN')!));
    host.ebnat.set('KOALA-L2-IN', host.ebnat.get('KOALA-L2-IN')!.slice(1)); // a rule gone
    const fresh = new NetworkAgent({ zone: 'koala-1a', config: nodeA, enabled: true, host, libvirt, fetchState: async () => sampleState() });
    expect(await fresh.apply(sampleState())).toEqual(['mangle chains (41 rules)', 'ebtables nat chains (14 rules)']);
    expect(host.mangle.get('KOALA-BRIDGED-IN')!.join('\n')).toContain('--icmp-type 8 ');
    clear(host, libvirt);
    expect(await fresh.apply(sampleState())).toEqual([]);
  });

  it('receive: applies in the background, reports the version, ignores older ones', async () => {
    const { host, libvirt, agent } = setup();
    const applied: number[] = [];
    agent.onApplied((s) => applied.push(s.version));
    expect(agent.receive(sampleState(7))).toBe(true);
    await agent.kick();
    expect(agent.current()?.version).toBe(7);
    clear(host, libvirt);
    const older = sampleState(5);
    older.interfaces = [];
    expect(agent.receive(older)).toBe(false);
    expect(agent.receive({ ...sampleState(9), zone: 'koala-1b' })).toBe(false);
    await agent.kick();
    expect(agent.current()?.version).toBe(7);
    expect(guarded(host, A1)).toBe(true);
    expect(agent.receive(sampleState(7))).toBe(false); // republished, already applied
    expect(applied).toEqual([7]); // the extra kick (a periodic pass) found nothing to change: no second report
    expect(writes(host, libvirt)).toEqual([]);
  });

  it('a changed state replaces DHCP entries, rules, set members, NAT rules and addresses; stale ones go', async () => {
    const { host, libvirt, agent } = setup();
    libvirt.filters.set('koala-i-i-0000000000000dead', "<filter name='koala-i-i-0000000000000dead'/>"); // an older Koala's
    libvirt.filters.set('clean-traffic', '<filter/>'); // not Koala's: never touched
    host.ipsets.set('koala-sg-000000ee', ['172.31.0.99']);
    host.ipsets.set('koala-other', ['10.0.0.1']); // a Koala name, not the agent's: kept
    await agent.apply(sampleState(7));
    expect(libvirt.filters.has('koala-i-i-0000000000000dead')).toBe(false);
    expect(libvirt.filters.has('clean-traffic')).toBe(true);
    expect(host.ipsets.has('koala-sg-000000ee')).toBe(false);
    expect(host.ipsets.get('koala-other')).toEqual(['10.0.0.1']);

    const next = sampleState(8);
    next.interfaces = next.interfaces.filter((i) => i.instanceId !== 'i-00000000000000a1'); // terminated
    next.interfaces.push({ instanceId: 'i-00000000000000a3', node: 'node-a', mac: '02:00:00:00:00:a3', privateIp: '172.31.0.13', publicIp: '198.51.100.13', groupIds: ['sg-0000000a'] });
    clear(host, libvirt);
    await agent.apply(next);
    expect(
      libvirt.networks
        .get('koala-koala-1a')!
        .hosts.map((h) => h.ip)
        .sort(),
    ).toEqual(['172.31.0.12', '172.31.0.13', '172.31.0.2']);
    expect([guarded(host, A1), guarded(host, '02:00:00:00:00:a2'), guarded(host, '02:00:00:00:00:a3')]).toEqual([false, true, true]);
    expect(host.mangle.get('KOALA-ROUTED-IN')!.join('\n')).not.toContain('172.31.0.11/32');
    expect(host.ipsets.get('koala-sg-0000000a-ai')).toEqual(['172.31.0.12', '172.31.0.13', '172.31.0.21']);
    expect(host.nat.get('KOALA-PREROUTING')!.join('\n')).not.toContain('198.51.100.11');
    expect(host.nat.get('KOALA-POSTROUTING')).toContain('-A KOALA-POSTROUTING -s 172.31.0.13/32 ! -d 172.31.0.0/20 -j SNAT --to-source 198.51.100.13');
    expect(host.nat.get('PREROUTING')!.filter((r) => r.includes('KOALA'))).toHaveLength(1);
    expect(host.addresses.get('pub0')).toEqual(['203.0.113.250/24 pub0', '198.51.100.13/32 pub0:k']);
    expect(writes(host, libvirt)).toEqual(
      expect.arrayContaining(['dhcp del 172.31.0.11', 'dhcp add 172.31.0.13', 'iptables-restore -w 5 --noflush', 'ebtables-restore --noflush', 'ip addr del 198.51.100.11/32 dev pub0']),
    );
    expect(writes(host, libvirt).filter((w) => w.includes('filter'))).toEqual([]); // the older Koala's is gone already
  });

  it('a rule change on running guests rewrites one set and no rule', async () => {
    const { host, libvirt, agent } = setup();
    await agent.apply(sampleState(7));
    clear(host, libvirt);
    const next = sampleState(8);
    next.groups.find((g) => g.groupId === 'sg-0000000a')!.ingress.push({ protocol: 'tcp', fromPort: 8080, toPort: 8080, cidrs: ['198.51.100.0/24'], groupIds: [] });
    expect(await agent.apply(next)).toEqual(['ipset koala-sg-0000000a-pi = [198.51.100.0/24,tcp:22 198.51.100.0/24,tcp:8080 203.0.113.7,tcp:22]']);
    expect(writes(host, libvirt)).toEqual(['ipset restore']);
    expect(host.ipsets.get('koala-sg-0000000a-pi')).toContain('198.51.100.0/24,tcp:8080');
  });

  it('sets of an older NC (koala-<sg>, hash:ip) go once no rule uses them', async () => {
    const { host, agent } = setup();
    host.ipsets.set('koala-sg-0000000a', ['172.31.0.11']);
    await agent.apply(sampleState(7));
    expect(host.ipsets.has('koala-sg-0000000a')).toBe(false);
    expect(host.mangle.get('KOALA-BRIDGED-IN')!.join('\n')).not.toContain('koala-sg-0000000a ');
  });

  it('loads br_netfilter when the bridge sysctl is missing', async () => {
    const { host, agent } = setup();
    host.sysctl.delete('net.bridge.bridge-nf-call-iptables');
    const changes = await agent.apply(sampleState());
    expect(changes.slice(0, 3)).toEqual(['sysctl net.ipv4.ip_forward=1', 'modprobe br_netfilter', 'sysctl net.bridge.bridge-nf-call-iptables=1']);
  });

  it("an older Koala's nwfilter still in use by a guest stays until a later apply; looked for once per libvirtd connection", async () => {
    const { libvirt, agent } = setup();
    libvirt.filters.set('koala-i-i-00000000000000a1', "<filter name='koala-i-i-00000000000000a1'/>");
    libvirt.inUse.add('koala-i-i-00000000000000a1');
    agent.start();
    for (let i = 0; i < 100 && !agent.current(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(libvirt.filters.has('koala-i-i-00000000000000a1')).toBe(true);
    libvirt.inUse.clear();
    expect(await agent.apply(sampleState(7))).toEqual(['legacy filter -koala-i-i-00000000000000a1']);
    libvirt.filters.set('koala-i-i-0000000000000dead', "<filter name='koala-i-i-0000000000000dead'/>");
    expect(await agent.apply(sampleState(7))).toEqual([]); // checked: not looked for again
    await libvirt.reconnect();
    await agent.kick();
    expect(libvirt.filters.has('koala-i-i-0000000000000dead')).toBe(false);
    await agent.stop();
  });

  it('a network that differs beyond DHCP hosts is redefined; one stopped (libvirtd restart) is started', async () => {
    const { libvirt, agent } = setup();
    await agent.apply(sampleState());
    libvirt.networks.get('koala-koala-1a')!.active = false;
    expect(await agent.apply(sampleState())).toEqual(['network koala-koala-1a started']);
    const moved = sampleState();
    moved.nodes[0]!.address = '172.31.0.5';
    libvirt.writes = [];
    await agent.apply(moved);
    expect(libvirt.writes.slice(0, 3)).toEqual(['stop network koala-koala-1a', 'define network koala-koala-1a', 'start network koala-koala-1a']);
    expect(libvirt.networks.get('koala-koala-1a')!.xml).toContain('address="172.31.0.5"');
  });

  it('a failed apply is not reported and is retried', async () => {
    const { host, agent } = setup();
    const applied: number[] = [];
    agent.onApplied((s) => applied.push(s.version));
    host.failNext = /^iptables-restore/;
    agent.receive(sampleState(7));
    await expect(agent.kick()).rejects.toThrow(/simulated/);
    expect(agent.current()).toBeUndefined();
    for (let i = 0; i < 100 && !agent.current(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(agent.current()?.version).toBe(7);
    expect(applied).toEqual([7]);
    expect(host.nat.get('KOALA-PREROUTING')).toHaveLength(3);
    await agent.stop();
  });

  it('start asks the CLC for the state, and reapplies after libvirtd reconnects', async () => {
    const { libvirt, agent } = setup();
    agent.start();
    for (let i = 0; i < 100 && !agent.current(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(agent.current()?.version).toBe(7);
    libvirt.networks.clear(); // a libvirtd that lost its definitions
    await libvirt.reconnect();
    await agent.kick();
    expect(libvirt.networks.get('koala-koala-1a')?.active).toBe(true);
    await agent.stop();
  });

  it('launch: a guest the state does not know yet gets its DHCP entry and rules first; terminate removes them', async () => {
    const { host, libvirt, agent } = setup();
    agent.receive(sampleState(7));
    await agent.kick();
    const iface = await agent.prepare(launchSpec('i-00000000000000a4', '172.31.0.14', '02:00:00:00:00:a4'));
    expect(iface).toEqual({ network: 'koala-koala-1a', mac: A4, ip: '172.31.0.14', tap: 'kv0200000000a4' });
    expect(host.mangle.get('KOALA-BRIDGED-IN')).toContain('-A KOALA-BRIDGED-IN -m physdev --physdev-out kv0200000000a4 --physdev-is-bridged -m set --match-set koala-sg-0000000a-ai src -j RETURN');
    expect(libvirt.networks.get('koala-koala-1a')!.hosts.map((h) => h.ip)).toContain('172.31.0.14');
    // a periodic re-apply of the old state keeps the launch's entries
    await agent.kick();
    expect(guarded(host, A4)).toBe(true);

    await agent.release('i-00000000000000a4');
    expect(guarded(host, A4)).toBe(false);
    expect(libvirt.networks.get('koala-koala-1a')!.hosts.map((h) => h.ip)).not.toContain('172.31.0.14');
  });

  it("launch on an applied state: writes only the guest's own entries, reads nothing; the state catching up changes nothing", async () => {
    const { host, libvirt, agent } = setup();
    agent.receive(sampleState(7));
    await agent.kick();
    clear(host, libvirt);
    host.commands = [];
    const spec = launchSpec('i-00000000000000a4', '172.31.0.14', '02:00:00:00:00:a4');
    (spec.network as { publicIp?: string }).publicIp = '198.51.100.14';
    await agent.prepare(spec);
    // its address joins its group's set, its DHCP entry, its tap's rules, NAT and hop limit (one
    // iptables-restore for the chains that changed), its anti-spoofing, its public address
    // (the L2 chains beside the sets and the iptables chains, which come after the sets they name)
    expect([...host.commands].sort()).toEqual(['ebtables-restore --noflush', 'ip addr replace 198.51.100.14/32 dev pub0 label pub0:k', 'ipset restore', 'iptables-restore -w 5 --noflush']);
    expect(host.commands.indexOf('ipset restore')).toBeLessThan(host.commands.indexOf('iptables-restore -w 5 --noflush'));
    expect(host.mangle.get('KOALA-ROUTED-IN')!.filter((r) => r.includes('172.31.0.14/32'))).toEqual([
      '-A KOALA-ROUTED-IN -d 172.31.0.14/32 -m set --match-set koala-sg-0000000a-ai src -j RETURN',
      '-A KOALA-ROUTED-IN -d 172.31.0.14/32 -m set --match-set koala-sg-0000000a-pi src,dst -j RETURN',
      '-A KOALA-ROUTED-IN -d 172.31.0.14/32 -p icmp -m icmp --icmp-type 8 -j RETURN',
      '-A KOALA-ROUTED-IN -d 172.31.0.14/32 -j DROP',
    ]);
    expect(guarded(host, A4)).toBe(true);
    expect(libvirt.writes).toEqual(['dhcp add 172.31.0.14']);
    expect(host.ipsets.get('koala-sg-0000000a-ai')).toEqual(['172.31.0.11', '172.31.0.12', '172.31.0.14', '172.31.0.21']);
    expect(host.nat.get('KOALA-PREROUTING')).toContain('-A KOALA-PREROUTING -d 198.51.100.14/32 -j DNAT --to-destination 172.31.0.14');
    expect(host.mangle.get('KOALA-IMDS-TTL')!.join('\n')).toContain('-d 172.31.0.14/32 -p tcp -m tcp --sport 8775');
    expect(host.addresses.get('pub0')).toContain('198.51.100.14/32 pub0:k');

    // The CLC's next state holds the guest: a whole apply finds its entries in place.
    const next = sampleState(8);
    next.interfaces.push({ instanceId: 'i-00000000000000a4', node: 'node-a', mac: '02:00:00:00:00:a4', privateIp: '172.31.0.14', publicIp: '198.51.100.14', groupIds: ['sg-0000000a'] });
    clear(host, libvirt);
    expect(await agent.apply(next)).toEqual([]);
    expect(writes(host, libvirt)).toEqual([]);
    // A second launch builds on the first.
    clear(host, libvirt);
    await agent.prepare(launchSpec('i-00000000000000a5', '172.31.0.15', '02:00:00:00:00:a5'));
    expect(libvirt.writes).toEqual(['dhcp add 172.31.0.15']);
    expect([...host.writes].sort()).toEqual(['ebtables-restore --noflush', 'ipset restore', 'iptables-restore -w 5 --noflush']);
    expect(guarded(host, A5)).toBe(true);
  });

  it('the state catching up with a launch is taken without reading the host; a periodic pass reads', async () => {
    const { host, agent } = setup({ reapplyMs: 40 });
    agent.receive(sampleState(7));
    await agent.kick();
    await agent.prepare(launchSpec('i-00000000000000a4', '172.31.0.14', '02:00:00:00:00:a4'));
    const next = sampleState(8);
    next.interfaces.push({ instanceId: 'i-00000000000000a4', node: 'node-a', mac: '02:00:00:00:00:a4', privateIp: '172.31.0.14', groupIds: ['sg-0000000a'] });
    host.commands = [];
    expect(agent.receive(next)).toBe(true);
    await agent.kick();
    expect(agent.current()?.version).toBe(8);
    expect(host.commands).toEqual([]); // nothing read, nothing written
    // A state that differs is a reading pass.
    const other = structuredClone(next);
    other.version = 9;
    other.interfaces = other.interfaces.filter((i) => i.instanceId !== 'i-00000000000000a1');
    agent.receive(other);
    await agent.kick();
    expect(host.commands).toContain('ipset save');
    // The periodic pass reads even when nothing changed (drift).
    agent.start();
    host.commands = [];
    await new Promise((r) => setTimeout(r, 120));
    expect(host.commands).toContain('iptables-save -t mangle');
    await agent.stop();
  });

  it('launch before any complete apply (NC just started, or the last apply or launch failed) runs a whole apply', async () => {
    const { host, libvirt, agent } = setup();
    await agent.prepare(launchSpec('i-00000000000000a4', '172.31.0.14', '02:00:00:00:00:a4'));
    expect(guarded(host, A1)).toBe(true); // the whole state, not just the launch
    expect(guarded(host, A4)).toBe(true);
    host.failNext = /^ipset restore/;
    await expect(agent.prepare(launchSpec('i-00000000000000a5', '172.31.0.15', '02:00:00:00:00:a5'))).rejects.toMatchObject({ code: 'Server.InternalError' });
    clear(host, libvirt);
    host.commands = [];
    await agent.prepare(launchSpec('i-00000000000000a5', '172.31.0.15', '02:00:00:00:00:a5'));
    expect(host.commands).toContain('ipset save'); // a whole (reading) apply again
    expect(guarded(host, A5)).toBe(true);
    await agent.stop();
  });

  it('terminate releases the DHCP lease on the bridge (dhcp_release); without dnsmasq-utils the entry still goes', async () => {
    const { host, libvirt, agent } = setup();
    agent.receive(sampleState(7));
    await agent.kick();
    await agent.prepare(launchSpec('i-00000000000000a4', '172.31.0.14', '02:00:00:00:00:a4'));
    // released while dnsmasq still knows the client (it ignores unknown ones: dhcp-ignore=tag:!known)
    const known: boolean[] = [];
    host.onRelease = (ip) => known.push(libvirt.networks.get('koala-koala-1a')!.hosts.some((h) => h.ip === ip));
    await agent.release('i-00000000000000a4');
    expect(host.released).toEqual(['koala-br0 172.31.0.14 02:00:00:00:00:a4']);
    expect(known).toEqual([true]);
    expect(libvirt.networks.get('koala-koala-1a')!.hosts.map((h) => h.ip)).not.toContain('172.31.0.14');
    host.noDhcpRelease = true;
    await agent.release('i-00000000000000a1');
    expect(libvirt.networks.get('koala-koala-1a')!.hosts.map((h) => h.ip)).toEqual(['172.31.0.2', '172.31.0.12']);
    expect(host.released).toHaveLength(1);
  });

  it('terminate of an instance the state still lists: removed now, not re-added by the lagging state', async () => {
    const { host, agent } = setup();
    agent.receive(sampleState(7));
    await agent.kick();
    await agent.release('i-00000000000000a1');
    expect(guarded(host, A1)).toBe(false);
    await agent.kick();
    expect(guarded(host, A1)).toBe(false);
  });

  it('launch without a state: asks for one; without the node in it: a clear error', async () => {
    const { agent, serve } = setup();
    serve(undefined);
    await expect(agent.prepare(launchSpec('i-00000000000000a4', '172.31.0.14', '02:00:00:00:00:a4'))).rejects.toMatchObject({ code: 'Server.InternalError' });
    const s = sampleState();
    s.nodes = [];
    serve(s);
    await expect(agent.prepare(launchSpec('i-00000000000000a4', '172.31.0.14', '02:00:00:00:00:a4'))).rejects.toThrow(/no address/);
  });

  it('disabled (no networking on this node): no interface, no command', async () => {
    const { host, libvirt, agent } = setup({ enabled: false });
    agent.start();
    expect(agent.receive(sampleState())).toBe(false);
    expect(await agent.prepare(launchSpec('i-00000000000000a4', '172.31.0.14', '02:00:00:00:00:a4'))).toBeUndefined();
    expect(await agent.prepare({ instanceId: 'i-00000000000000a5' } as InstanceSpec)).toBeUndefined();
    await agent.release('i-00000000000000a4');
    expect(writes(host, libvirt)).toEqual([]);
    expect(agent.current()).toBeUndefined();
  });
});
