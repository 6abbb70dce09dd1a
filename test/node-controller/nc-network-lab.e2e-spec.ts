// The whole network agent against a real libvirtd running inside a node namespace
// (deploy/scripts/koala-node-netns.sh, the lab's node host): the libvirt network is defined and
// STARTED there (bridge and dnsmasq inside the namespace), the uplink is a veth into a segment
// namespace, the security groups and anti-spoofing are Koala's chains in that namespace's
// iptables and ebtables (checked on the wire with "guests" on veths named as guests' taps), and a
// libvirtd restart is survived. Everything
// is removed afterwards (`down` deletes the namespaces, their daemons and state).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
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
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
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

  it("starts the zone network in the namespace with its DHCP hosts, enslaves the uplink, writes the guests' chains", async () => {
    const changes = await agent.apply(sampleState(7));
    expect(changes).toEqual(
      expect.arrayContaining(['network koala-koala-1a defined', 'network koala-koala-1a started', 'uplink koala-up0 -> koala-br0', 'mangle chains (41 rules)', 'ebtables nat chains (14 rules)']),
    );
    expect(inNs('ip', '-o', '-4', 'addr', 'show', 'dev', 'koala-br0')).toContain('inet 172.31.0.2/20');
    expect(inNs('ip', '-o', 'link', 'show', 'dev', 'koala-up0')).toContain('master koala-br0');
    // dnsmasq (inside the namespace) serves exactly this node's instances.
    expect(hostsFile()).toContain('02:00:00:00:00:a1,172.31.0.11,ip-172-31-0-11');
    expect(hostsFile()).toContain('02:00:00:00:00:a2,172.31.0.12,ip-172-31-0-12');
    expect(hostsFile()).not.toContain('172.31.0.21');
    // No nwfilter of Koala's: its own chains, first in mangle FORWARD and INPUT (where libvirt puts nothing).
    expect((await conn.run(async (lv) => (await lv.listAllNwFilters()).map((f) => f.name))).filter((n) => n.startsWith('koala-'))).toEqual([]);
    expect(inNs('iptables-save', '-t', 'nat')).toContain('-A PREROUTING -j KOALA-PREROUTING');
    const mangle = inNs('iptables-save', '-t', 'mangle').split('\n');
    expect(mangle.find((l) => l.startsWith('-A FORWARD '))).toBe('-A FORWARD -j KOALA-FORWARD');
    expect(mangle.find((l) => l.startsWith('-A INPUT '))).toBe('-A INPUT -j KOALA-INPUT');
    expect(mangle).toContain('-A KOALA-EGRESS -m physdev --physdev-in kv0200000000a1 -m set --match-set koala-sg-0000000a-ao dst -j RETURN');
    const eb = inNs('ebtables-save', '-t', 'nat').split('\n');
    expect(eb).toEqual(expect.arrayContaining(['-A PREROUTING -j KOALA-L2-IN', '-A POSTROUTING -j KOALA-L2-OUT', '-A KOALA-L2-IN -p IPv4 -i kv0200000000a1 --ip-src 172.31.0.11 -j RETURN']));
    // The machine's own namespace has none of it.
    expect(execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' })).not.toContain('KOALA');
  });

  it("re-applying changes nothing (the chains' spelling is the tools' own); a changed state updates DHCP live and the chains", async () => {
    expect(await agent.apply(sampleState(7))).toEqual([]);
    const changes = await agent.apply(next);
    expect(changes).toEqual(expect.arrayContaining(['dhcp -172.31.0.11', 'dhcp +172.31.0.13', 'mangle chains (41 rules)', 'ebtables nat chains (14 rules)']));
    expect(inNs('iptables-save', '-t', 'mangle')).toContain('--physdev-in kv0200000000a3 ');
    expect(inNs('iptables-save', '-t', 'mangle')).not.toContain('kv0200000000a1');
    expect(inNs('ebtables-save', '-t', 'nat')).not.toContain('kv0200000000a1');
    expect(changes.some((c) => c.startsWith('network '))).toBe(false); // live update, no restart
    expect(hostsFile()).toContain('02:00:00:00:00:a3,172.31.0.13');
    expect(hostsFile()).not.toContain('172.31.0.11');
    expect(await agent.apply(next)).toEqual([]);
  });

  it('launch and terminate of an instance the state does not know', async () => {
    agent.receive(next);
    await agent.kick();
    const spec = {
      instanceId: 'i-00000000000000a4',
      network: { mac: '02:00:00:00:00:a4', privateIp: '172.31.0.14', subnet: '172.31.0.0/20', privateDnsName: 'ip-172-31-0-14.x', groups: [{ groupId: 'sg-0000000a', name: 'default' }] },
    } as unknown as InstanceSpec;
    expect(await agent.prepare(spec)).toEqual({ network: 'koala-koala-1a', mac: '02:00:00:00:00:a4', ip: '172.31.0.14', tap: 'kv0200000000a4' });
    expect(hostsFile()).toContain('02:00:00:00:00:a4,172.31.0.14');
    expect(inNs('iptables-save', '-t', 'mangle')).toContain('--physdev-out kv0200000000a4 --physdev-is-bridged');
    expect(inNs('ebtables-save', '-t', 'nat')).toContain('-i kv0200000000a4 ');
    await agent.release('i-00000000000000a4');
    expect(hostsFile()).not.toContain('172.31.0.14');
    expect(inNs('iptables-save', '-t', 'mangle')).not.toContain('kv0200000000a4');
    expect(inNs('ebtables-save', '-t', 'nat')).not.toContain('kv0200000000a4');
  });

  it('DHCP stays on with no guest: the last entry going and the first coming back do not restart dnsmasq', async () => {
    const dnsmasqPid = () => readFileSync(join(facts.RUN_DIR!, 'libvirt', 'network', 'koala-koala-1a.pid'), 'utf8').trim();
    const pid = dnsmasqPid();
    const empty = { ...next, version: next.version + 1, interfaces: next.interfaces.filter((i) => i.node !== 'node-a') };
    expect(await agent.apply(empty)).toEqual(expect.arrayContaining(['dhcp -172.31.0.12', 'dhcp -172.31.0.13']));
    expect(hostsFile()).not.toContain('02:00:00:00:00:a');
    expect(hostsFile()).toContain('06:00:00:00:00:00,172.31.0.2,koala-dhcp-anchor');
    expect(dnsmasqPid()).toBe(pid);
    expect(await agent.apply(next)).toEqual(expect.arrayContaining(['dhcp +172.31.0.12', 'dhcp +172.31.0.13']));
    expect(dnsmasqPid()).toBe(pid); // a reload of the hosts file, not a restart
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

  // The rules at work: a "guest" namespace for instance a3 on a veth whose bridge end has the name
  // of a3's tap (as libvirt makes it from the domain XML), members and non-members of its group in
  // other namespaces on ports of other names. Traffic stays among the namespaces this test creates.
  describe('security groups on the wire', () => {
    const tag = randomBytes(3).toString('hex');
    const G = { a3: `kg${tag}a3`, a2: `kg${tag}a2`, x: `kg${tag}x` };
    const ex = (ns: string, ...argv: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8' });
    const servers: ChildProcess[] = [];
    /** What a TCP client in `ns` gets: the server's first bytes (or `open` once connected, for a server that waits), `timeout`, or an error code. */
    const connect = (ns: string, host: string, port: number, untilOpen = false) =>
      spawnSync(
        'ip',
        [
          'netns',
          'exec',
          ns,
          process.execPath,
          '-e',
          `const s = require('net').connect(${port}, '${host}'${untilOpen ? ", () => { console.log('open'); process.exit(0); }" : ''}); s.setTimeout(1500, () => { console.log('timeout'); process.exit(2); }); s.on('data', (d) => process.stdout.write(d)); s.on('error', (e) => { console.log(e.code); process.exit(3); });`,
        ],
        { encoding: 'utf8' },
      ).stdout.trim();

    beforeAll(async () => {
      const guests: [string, string, string, string][] = [
        [G.a3, '172.31.0.13', '02:00:00:00:00:a3', 'kv0200000000a3'],
        [G.a2, '172.31.0.12', '02:00:00:00:00:a2', `p${tag}a2`],
        [G.x, '172.31.0.30', '02:00:00:00:00:ee', `p${tag}x`],
      ];
      for (const [ns, ip, mac, port] of guests) {
        execFileSync('ip', ['netns', 'add', ns]);
        inNs('ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
        inNs('ip', 'link', 'set', port, 'master', 'koala-br0', 'up');
        ex(ns, 'ip', 'link', 'set', 'eth0', 'address', mac);
        ex(ns, 'ip', 'addr', 'add', `${ip}/20`, 'dev', 'eth0');
        ex(ns, 'ip', 'link', 'set', 'eth0', 'up');
        ex(ns, 'ip', 'link', 'set', 'lo', 'up');
      }
      for (const port of [22, 23]) {
        const p = spawn(
          'ip',
          ['netns', 'exec', G.a3, process.execPath, '-e', `require('net').createServer((s) => s.end('hello ' + s.remoteAddress + '\\n')).listen(${port}, '172.31.0.13', () => console.log('up'))`],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        servers.push(p);
        await new Promise((r) => p.stdout!.once('data', r));
      }
    }, 60_000);

    afterAll(() => {
      for (const p of servers) p.kill();
      for (const ns of Object.values(G)) execFileSync('ip', ['netns', 'del', ns]);
    });

    it('a member of the group gets in on any port; a stranger does not; membership is one ipset update away', async () => {
      expect(connect(G.a2, '172.31.0.13', 23)).toBe('hello 172.31.0.12');
      expect(connect(G.x, '172.31.0.13', 23)).toBe('timeout');
      expect(connect(G.x, '172.31.0.13', 22)).toBe('timeout'); // 22 is open to 203.0.113.7 and 198.51.100.0/24 only
      // The stranger joins the group (an instance on another node): the set changes, no rule does.
      const joined = structuredClone(next);
      joined.version = 9;
      joined.interfaces.push({ instanceId: 'i-00000000000000b2', node: 'node-b', mac: '02:00:00:00:00:ee', privateIp: '172.31.0.30', groupIds: ['sg-0000000a'] });
      const changes = await agent.apply(joined);
      expect(changes).toEqual(['ipset koala-sg-0000000a-ai = [172.31.0.12 172.31.0.13 172.31.0.21 172.31.0.30]']);
      expect(connect(G.x, '172.31.0.13', 23)).toBe('hello 172.31.0.30');
      await agent.apply(next);
      expect(connect(G.x, '172.31.0.13', 23)).toBe('timeout');
    }, 60_000);

    it("the guest reaches the node only at the node's services (DHCP, DNS, metadata), whatever its egress rules", async () => {
      // a3's group allows all egress; a service of the node's own on another port stays closed to it.
      const p = spawn('ip', ['netns', 'exec', NODE, process.execPath, '-e', `require('net').createServer((s) => s.end('node\\n')).listen(2222, '172.31.0.2', () => console.log('up'))`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      servers.push(p);
      await new Promise((r) => p.stdout!.once('data', r));
      expect(connect(G.x, '172.31.0.2', 2222)).toBe('node'); // the path works (x is not a guest's tap)
      expect(connect(G.a3, '172.31.0.2', 2222)).toBe('timeout');
      // dnsmasq's DNS over TCP accepts the connection (it then waits for a query).
      expect(connect(G.a3, '172.31.0.2', 53, true)).toBe('open');
    }, 30_000);

    it('the guest may not send from another address', async () => {
      ex(G.a3, 'ip', 'addr', 'add', '172.31.0.99/20', 'dev', 'eth0');
      const p = spawn(
        'ip',
        ['netns', 'exec', G.a2, process.execPath, '-e', `require('net').createServer((s) => s.end('hi ' + s.remoteAddress + '\\n')).listen(24, '172.31.0.12', () => console.log('up'))`],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      servers.push(p);
      await new Promise((r) => p.stdout!.once('data', r));
      expect(connect(G.a3, '172.31.0.12', 24)).toBe('hi 172.31.0.13');
      const spoofed = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          G.a3,
          process.execPath,
          '-e',
          `const s = require('net').connect({ port: 24, host: '172.31.0.12', localAddress: '172.31.0.99' }); s.setTimeout(1500, () => { console.log('timeout'); process.exit(2); }); s.on('data', (d) => process.stdout.write(d)); s.on('error', (e) => { console.log(e.code); process.exit(3); });`,
        ],
        { encoding: 'utf8' },
      ).stdout.trim();
      expect(spoofed).toBe('timeout');
    }, 30_000);

    it('traffic routed to the guest by the node (a public client) meets the same rules as bridged traffic', async () => {
      // A client in a "public" namespace on a documentation range, routed by the node.
      const pub = `kg${tag}pub`;
      execFileSync('ip', ['netns', 'add', pub]);
      try {
        inNs('ip', 'link', 'add', `q${tag}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pub);
        inNs('ip', 'addr', 'add', '198.51.100.1/24', 'dev', `q${tag}`);
        inNs('ip', 'link', 'set', `q${tag}`, 'up');
        ex(pub, 'ip', 'addr', 'add', '198.51.100.50/24', 'dev', 'eth0');
        ex(pub, 'ip', 'link', 'set', 'eth0', 'up');
        ex(pub, 'ip', 'route', 'add', 'default', 'via', '198.51.100.1');
        ex(G.a3, 'ip', 'route', 'replace', 'default', 'via', '172.31.0.2');
        expect(connect(pub, '172.31.0.13', 22)).toBe('hello 198.51.100.50'); // 22 is open to 198.51.100.0/24: the path works
        expect(connect(pub, '172.31.0.13', 23)).toBe('timeout'); // 23 is for members of the group only
      } finally {
        execFileSync('ip', ['netns', 'del', pub]);
      }
    }, 30_000);

    // Raw frames (python3's AF_PACKET, inside these namespaces only): a sniffer counts the frames of
    // one ethertype reaching an interface; a sender writes one frame as given.
    const RAW = [
      'import socket, sys, time',
      'a = sys.argv',
      'mac = lambda m: bytes.fromhex(m.replace(":", ""))',
      'if a[1] == "send":',
      '    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((a[2], 0))',
      '    s.send(mac(a[4]) + mac(a[3]) + bytes.fromhex(a[5]) + bytes.fromhex(a[6]).ljust(46, bytes(1)))',
      'else:',
      '    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(int(a[3], 16))); s.bind((a[2], 0)); s.settimeout(0.1)',
      '    print("up", flush=True); n = 0; end = time.time() + float(a[4])',
      '    while time.time() < end:',
      '        try:',
      '            f = s.recv(2000); n += f[6:12] == mac(a[5])',
      '        except socket.timeout:',
      '            pass',
      '    print(n)',
    ].join('\n');
    const sendFrame = (ns: string, src: string, dst: string, ethertype: string, payloadHex: string) => ex(ns, 'python3', '-c', RAW, 'send', 'eth0', src, dst, ethertype, payloadHex);
    /** How many frames of `ethertype` from MAC `from` reach `ns` while `send` runs. */
    const framesSeen = async (ns: string, ethertype: string, from: string, send: () => void): Promise<number> => {
      const p = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', RAW, 'sniff', 'eth0', ethertype, '1.5', from], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await until('sniffer up', () => out.startsWith('up'));
      send();
      await new Promise((r) => p.once('exit', r));
      return Number(out.split('\n')[1]);
    };
    const hex = (mac: string) => mac.replace(/:/g, '');
    const ipHex = (ip: string) =>
      ip
        .split('.')
        .map((o) => Number(o).toString(16).padStart(2, '0'))
        .join('');
    /** An ARP request (Ethernet/IPv4) from sender MAC/IP for `target`. */
    const arpRequest = (senderMac: string, senderIp: string, target: string) => `0001080006040001${hex(senderMac)}${ipHex(senderIp)}000000000000${ipHex(target)}`;
    const neigh = (ns: string, ip: string) => ex(ns, 'ip', 'neigh', 'show', ip, 'dev', 'eth0').trim();
    const A3 = '02:00:00:00:00:a3';
    const A2 = '02:00:00:00:00:a2';
    const X = '02:00:00:00:00:ee';
    const BCAST = 'ff:ff:ff:ff:ff:ff';
    const hasPython = existsSync('/usr/bin/python3');

    (hasPython ? it : it.skip)(
      'the guest may not send from another MAC',
      async () => {
        expect(connect(G.a3, '172.31.0.12', 24)).toBe('hi 172.31.0.13');
        ex(G.a3, 'ip', 'link', 'set', 'eth0', 'address', '02:00:00:00:00:77');
        try {
          expect(connect(G.a3, '172.31.0.12', 24)).toBe('timeout');
          // A frame of its own protocol and IP, only the source MAC not its own: dropped at the bridge.
          expect(await framesSeen(G.a2, '0806', '02:00:00:00:00:77', () => sendFrame(G.a3, '02:00:00:00:00:77', BCAST, '0806', arpRequest('02:00:00:00:00:77', '172.31.0.13', '172.31.0.12')))).toBe(0);
        } finally {
          ex(G.a3, 'ip', 'link', 'set', 'eth0', 'address', A3);
        }
        expect(await framesSeen(G.a2, '0806', A3, () => sendFrame(G.a3, A3, BCAST, '0806', arpRequest(A3, '172.31.0.13', '172.31.0.12')))).toBe(1);
      },
      30_000,
    );

    (hasPython ? it : it.skip)(
      'no ARP spoofing: ARP only with the guest own MAC and IP',
      async () => {
        // Claiming another IP (a poisoning answer would look the same): a2 never learns it; the
        // unfiltered namespace sending the same is learnt, so the check would see it.
        sendFrame(G.x, X, BCAST, '0806', arpRequest(X, '172.31.0.98', '172.31.0.12'));
        await until('a2 learns the unfiltered sender', () => neigh(G.a2, '172.31.0.98').includes(X), 3_000);
        sendFrame(G.a3, A3, BCAST, '0806', arpRequest(A3, '172.31.0.21', '172.31.0.12'));
        // Its own IP with another MAC inside the ARP message (the frame's source is its own).
        sendFrame(G.a3, A3, BCAST, '0806', arpRequest('02:00:00:00:00:77', '172.31.0.13', '172.31.0.12'));
        await new Promise((r) => setTimeout(r, 500));
        expect(neigh(G.a2, '172.31.0.21')).toBe('');
        expect(neigh(G.a2, '172.31.0.13')).not.toContain('02:00:00:00:00:77');
        expect(await framesSeen(G.a2, '0806', A3, () => sendFrame(G.a3, A3, BCAST, '0806', arpRequest(A3, '172.31.0.21', '172.31.0.12')))).toBe(0);
      },
      30_000,
    );

    (hasPython ? it : it.skip)(
      'only IPv4 and ARP leave the guest or reach it (no IPv6, no other L2 protocol)',
      async () => {
        // A well-formed IPv6 header (no next header, fe80::1 -> ff02::1: the bridge's netfilter
        // drops malformed ones by itself) and an experimental ethertype.
        const ipv6 = `6000000000003b40fe80${'0'.repeat(27)}1ff02${'0'.repeat(27)}1`;
        for (const [ethertype, payload] of [
          ['86dd', ipv6],
          ['88b5', '00'],
        ] as const) {
          // Unfiltered x -> a2: delivered (the check works); a3 -> a2 and x -> a3: dropped both ways.
          expect(await framesSeen(G.a2, ethertype, X, () => sendFrame(G.x, X, A2, ethertype, payload))).toBe(1);
          expect(await framesSeen(G.a2, ethertype, A3, () => sendFrame(G.a3, A3, A2, ethertype, payload))).toBe(0);
          expect(await framesSeen(G.a3, ethertype, X, () => sendFrame(G.x, X, A3, ethertype, payload))).toBe(0);
        }
      },
      30_000,
    );
  });
});
