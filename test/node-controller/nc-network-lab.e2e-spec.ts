// The whole network agent against a real libvirtd running inside a node namespace
// (deploy/scripts/koala-node-netns.sh, the lab's node host): the libvirt network is defined and
// STARTED there (bridge and dnsmasq inside the namespace), the uplink is a veth into a segment
// namespace, filters are defined in that libvirtd, and a libvirtd restart is survived. Everything
// is removed afterwards (`down` deletes the namespaces, their daemons and state).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InstanceSpec } from '@koala/contracts';
import { NodeLibvirt } from '../../apps/node-controller/src/libvirt/node-libvirt.js';
import { ExecHostNetCommands } from '../../apps/node-controller/src/network/host-net-commands.js';
import { LibvirtNetworkPort } from '../../apps/node-controller/src/network/libvirt-network-port.js';
import { NetworkAgent } from '../../apps/node-controller/src/network/network-agent.js';
import { sampleState } from '../../apps/node-controller/src/network/network-fixtures.js';

const SCRIPT = fileURLToPath(new URL('../../deploy/scripts/koala-node-netns.sh', import.meta.url));
const NODE = `knt${randomBytes(3).toString('hex')}`;
const SEG = `ksg${randomBytes(3).toString('hex')}`;
const script = (...args: string[]) => execFileSync('bash', [SCRIPT, ...args], { encoding: 'utf8' });
const inNs = (...argv: string[]) => execFileSync('ip', ['netns', 'exec', NODE, ...argv], { encoding: 'utf8' });
const canRun = process.getuid?.() === 0 && existsSync(SCRIPT) && existsSync('/usr/sbin/libvirtd');
const maybe = canRun ? describe : describe.skip;
const until = async (what: string, probe: () => boolean | Promise<boolean>, ms = 15_000) => {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

maybe('network agent on a node host (libvirtd in a namespace)', () => {
  let facts: Record<string, string>;
  let conn: NodeLibvirt;
  let agent: NetworkAgent;
  const next = sampleState(8);
  next.interfaces = next.interfaces.filter((i) => i.instanceId !== 'i-00000000000000a1');
  next.interfaces.push({ instanceId: 'i-00000000000000a3', node: 'node-a', mac: '02:00:00:00:00:a3', privateIp: '172.31.0.13', groupIds: ['sg-0000000a'] });
  const hostsFile = () => {
    const f = join(facts.STATE_DIR!, 'lib', 'dnsmasq', 'koala-koala-1a.hostsfile');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  };

  beforeAll(async () => {
    facts = Object.fromEntries(
      script('up', NODE, '--no-iscsi', '--uplink-to', SEG)
        .trim()
        .split('\n')
        .map((l) => l.split('=', 2) as [string, string]),
    );
    conn = new NodeLibvirt({ uri: 'qemu:///system', socketPath: facts.LIBVIRT_SOCKET! });
    expect(await conn.start()).toBe(true);
    agent = new NetworkAgent({
      zone: 'koala-1a',
      config: { node: 'node-a', bridge: 'koala-br0', uplink: facts.UPLINK!, metadataPort: 8775 },
      enabled: true,
      host: new ExecHostNetCommands({ netns: NODE }),
      libvirt: new LibvirtNetworkPort(conn),
      fetchState: async () => sampleState(),
      retryMs: 200,
    });
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await conn?.close();
    script('down', NODE);
    script('segment-down', SEG);
  }, 60_000);

  it('starts the zone network in the namespace with its DHCP hosts, enslaves the uplink, defines the filters', async () => {
    const changes = await agent.apply(sampleState(7));
    expect(changes).toEqual(expect.arrayContaining(['network koala-koala-1a defined', 'network koala-koala-1a started', 'uplink koala-up0 -> koala-br0', 'filter koala-i-i-00000000000000a1']));
    expect(inNs('ip', '-o', '-4', 'addr', 'show', 'dev', 'koala-br0')).toContain('inet 172.31.0.2/20');
    expect(inNs('ip', '-o', 'link', 'show', 'dev', 'koala-up0')).toContain('master koala-br0');
    // dnsmasq (inside the namespace) serves exactly this node's instances.
    expect(hostsFile()).toContain('02:00:00:00:00:a1,172.31.0.11,ip-172-31-0-11');
    expect(hostsFile()).toContain('02:00:00:00:00:a2,172.31.0.12,ip-172-31-0-12');
    expect(hostsFile()).not.toContain('172.31.0.21');
    const filters = await conn.run(async (lv) => (await lv.listAllNwFilters()).map((f) => f.name));
    expect(filters).toEqual(expect.arrayContaining(['koala-i-i-00000000000000a1', 'koala-i-i-00000000000000a2', 'clean-traffic']));
    expect(inNs('iptables-save', '-t', 'nat')).toContain('-A PREROUTING -j KOALA-PREROUTING');
    // The machine's own namespace has none of it.
    expect(execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' })).not.toContain('KOALA');
  });

  it('re-applying changes nothing; a changed state updates DHCP live and the filters', async () => {
    expect(await agent.apply(sampleState(7))).toEqual([]);
    const changes = await agent.apply(next);
    expect(changes).toEqual(expect.arrayContaining(['dhcp -172.31.0.11', 'dhcp +172.31.0.13', 'filter koala-i-i-00000000000000a3', 'filter -koala-i-i-00000000000000a1']));
    expect(changes.some((c) => c.startsWith('network '))).toBe(false); // live update, no restart
    expect(hostsFile()).toContain('02:00:00:00:00:a3,172.31.0.13');
    expect(hostsFile()).not.toContain('172.31.0.11');
    expect(await agent.apply(next)).toEqual([]);
  });

  it('launch and terminate of an instance the state does not know', async () => {
    agent.receive(next);
    await agent.kick();
    const spec = { instanceId: 'i-00000000000000a4', network: { mac: '02:00:00:00:00:a4', privateIp: '172.31.0.14', subnet: '172.31.0.0/20', privateDnsName: 'ip-172-31-0-14.x', groups: [{ groupId: 'sg-0000000a', name: 'default' }] } } as unknown as InstanceSpec;
    expect(await agent.prepare(spec)).toEqual({ network: 'koala-koala-1a', mac: '02:00:00:00:00:a4', ip: '172.31.0.14', filter: 'koala-i-i-00000000000000a4' });
    expect(hostsFile()).toContain('02:00:00:00:00:a4,172.31.0.14');
    await agent.release('i-00000000000000a4');
    expect(hostsFile()).not.toContain('172.31.0.14');
    expect(await conn.run(async (lv) => (await lv.listAllNwFilters()).map((f) => f.name))).not.toContain('koala-i-i-00000000000000a4');
  });

  it('after libvirtd restarted without its network running, the agent brings it back on reconnect', async () => {
    agent.start();
    // libvirtd dies and comes back (the node's script restarts it); the network is left stopped.
    await conn.run(async (lv) => {
      const net = await lv.lookupNetworkByName('koala-koala-1a');
      await lv.setNetworkAutostart(net, false); // so only the agent can bring it back
      await lv.destroyNetwork(net);
    });
    const pid = readFileSync(join(facts.RUN_DIR!, 'libvirtd.pid'), 'utf8').trim();
    process.kill(Number(pid), 'SIGTERM');
    await until('libvirtd gone', () => !conn.isConnected);
    script('up', NODE, '--no-iscsi', '--uplink-to', SEG);
    await until('network running again', async () => {
      try {
        return await conn.run(async (lv) => lv.isNetworkActive(await lv.lookupNetworkByName('koala-koala-1a')));
      } catch {
        return false;
      }
    });
    await until('uplink on the new bridge', () => inNs('ip', '-o', 'link', 'show', 'dev', 'koala-up0').includes('master koala-br0'));
    await until('DHCP hosts back', () => hostsFile().includes('02:00:00:00:00:a3,172.31.0.13'));
    expect(hostsFile()).not.toContain('172.31.0.11');
    expect(agent.current()?.version).toBe(8);
    expect(await conn.run(async (lv) => lv.getNetworkAutostart(await lv.lookupNetworkByName('koala-koala-1a')))).toBe(true);
  }, 60_000);
});
