import type { DhcpHost } from './network-plan.js';
import { parseNetworkFacts } from './libvirt-network-port.js';
import type { LibvirtNetworkFacts, NetworkLibvirt } from './network-ports.js';
import type { HostNetCommands } from './network-state-view.js';

/**
 * An in-memory host for the agent's unit specs: just enough of sysctl, ipset, iptables(-save,
 * -restore) and ip to answer what HostNetSync asks, recording every command that changes something.
 */
export class FakeHost implements HostNetCommands {
  sysctl = new Map<string, string>([
    ['net.ipv4.ip_forward', '0'],
    ['net.bridge.bridge-nf-call-iptables', '0'],
  ]);
  ipsets = new Map<string, string[]>();
  /** nat table: chain -> rules (`-A CHAIN ...` lines). Built-ins hold the operator's rules too. */
  nat = new Map<string, string[]>([
    ['PREROUTING', ['-A PREROUTING -d 192.0.2.1/32 -j DNAT --to-destination 192.0.2.2']],
    ['INPUT', []],
    ['OUTPUT', []],
    ['POSTROUTING', []],
  ]);
  /** mangle table, the same way. */
  mangle = new Map<string, string[]>([
    ['PREROUTING', []],
    ['INPUT', []],
    ['FORWARD', []],
    ['OUTPUT', []],
    ['POSTROUTING', []],
  ]);
  /** ebtables nat table: chain -> rules, and each chain's policy. */
  ebnat = new Map<string, string[]>([
    ['PREROUTING', []],
    ['OUTPUT', []],
    ['POSTROUTING', []],
  ]);
  ebPolicy = new Map<string, string>();
  private table(name: string | undefined): Map<string, string[]> {
    if (name === 'nat') return this.nat;
    if (name === 'mangle') return this.mangle;
    throw new Error(`table ${name} is not faked`);
  }
  links = new Map<string, { master?: string; up: boolean }>([['seg0', { up: false }]]);
  addresses = new Map<string, string[]>([['pub0', ['203.0.113.250/24 pub0']]]);
  writes: string[] = [];
  failNext?: RegExp;
  /** Every command run, reads included. */
  commands: string[] = [];
  /** Leases released with dhcp_release (`bridge ip mac`). */
  released: string[] = [];
  /** Called at each dhcp_release with the address (the spec checks the DHCP entry is still there). */
  onRelease?: (ip: string) => void;
  /** dnsmasq-utils not installed. */
  noDhcpRelease = false;

  async run(argv: readonly string[], opts: { input?: string } = {}): Promise<{ stdout: string; stderr: string }> {
    const cmd = argv.join(' ');
    this.commands.push(cmd);
    if (this.failNext?.test(cmd)) {
      this.failNext = undefined;
      throw new Error(`${cmd} failed (1): simulated`);
    }
    const out = (stdout: string) => ({ stdout, stderr: '' });
    const [c, ...a] = argv;
    if (c === 'sysctl' && a[0] === '-n') {
      if (!this.sysctl.has(a[1]!)) throw new Error(`sysctl: cannot stat /proc/sys/${a[1]!.replace(/\./g, '/')}: No such file or directory`);
      return out(`${this.sysctl.get(a[1]!)}\n`);
    }
    if (c === 'modprobe') this.sysctl.set('net.bridge.bridge-nf-call-iptables', '0');
    else if (c === 'sysctl') {
      const [k, v] = a[a.length - 1]!.split('=');
      this.sysctl.set(k!, v!);
    } else if (c === 'ipset' && a[0] === 'save') {
      const lines: string[] = [];
      for (const [n, m] of this.ipsets) lines.push(`create ${n} hash:ip family inet hashsize 1024 maxelem 65536`, ...m.map((ip) => `add ${n} ${ip}`));
      return out(lines.join('\n') + '\n');
    } else if (c === 'ipset' && a[0] === 'restore') {
      for (const line of (opts.input ?? '').split('\n').filter(Boolean)) {
        const [op, n, x] = line.split(' ');
        if (op === 'create' && !this.ipsets.has(n!)) this.ipsets.set(n!, []);
        if (op === 'flush') this.ipsets.set(n!, []);
        if (op === 'add') this.ipsets.get(n!)!.push(x!);
        if (op === 'swap') {
          const t = this.ipsets.get(n!)!;
          this.ipsets.set(n!, this.ipsets.get(x!)!);
          this.ipsets.set(x!, t);
        }
        if (op === 'destroy') this.ipsets.delete(n!);
      }
    } else if (c === 'ipset' && a[0] === 'destroy') {
      this.ipsets.delete(a[1]!);
    } else if (c === 'iptables-save') {
      // Like the real one: built-in chains first, then user chains sorted by name.
      const name = a[a.indexOf('-t') + 1]!;
      const t = this.table(name);
      const builtin = (ch: string) => ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'].includes(ch);
      const order = [...t.keys()].filter(builtin).concat([...t.keys()].filter((c) => !builtin(c)).sort());
      const lines = [`*${name}`, ...order.map((ch) => `:${ch} ${builtin(ch) ? 'ACCEPT' : '-'} [0:0]`), ...order.flatMap((ch) => t.get(ch)!), 'COMMIT'];
      return out(lines.join('\n') + '\n');
    } else if (c === 'iptables-restore') {
      let t = this.nat;
      for (const line of (opts.input ?? '').split('\n')) {
        if (line.startsWith('*')) t = this.table(line.slice(1));
        else if (line.startsWith(':'))
          t.set(line.slice(1).split(' ')[0]!, []); // --noflush: declared chains are flushed
        else if (line.startsWith('-A ')) t.get(line.split(' ')[1]!)!.push(line);
      }
    } else if (c === 'ebtables-save') {
      const builtin = (ch: string) => ['PREROUTING', 'OUTPUT', 'POSTROUTING'].includes(ch);
      const order = [...this.ebnat.keys()].filter(builtin).concat([...this.ebnat.keys()].filter((c) => !builtin(c)));
      const lines = ['*nat', ...order.map((ch) => `:${ch} ${this.ebPolicy.get(ch) ?? 'ACCEPT'}`), ...order.flatMap((ch) => this.ebnat.get(ch)!)];
      return out(lines.join('\n') + '\n');
    } else if (c === 'ebtables-restore') {
      for (const line of (opts.input ?? '').split('\n')) {
        if (line.startsWith(':')) {
          const [name, policy] = line.slice(1).split(' ');
          this.ebnat.set(name!, []);
          this.ebPolicy.set(name!, policy!);
        } else if (line.startsWith('-A ')) this.ebnat.get(line.split(' ')[1]!)!.push(line);
      }
    } else if (c === 'ebtables') {
      const chain = a[a.indexOf('-I') + 1]!;
      this.ebnat.get(chain)!.unshift(`-A ${chain} -j ${a[a.indexOf('-j') + 1]}`);
    } else if (c === 'iptables') {
      const t = this.table(a[a.indexOf('-t') + 1]);
      const chain = a[a.indexOf('-I') + 1]!;
      t.get(chain)!.unshift(`-A ${chain} -j ${a[a.indexOf('-j') + 1]}`);
    } else if (c === 'ip' && a[0] === '-o' && a[1] === 'link') {
      const l = this.links.get(a[4]!);
      if (!l) throw new Error(`Device "${a[4]}" does not exist.`);
      return out(`5: ${a[4]}@if4: <BROADCAST,MULTICAST${l.up ? ',UP,LOWER_UP' : ''}> mtu 1500 qdisc noqueue${l.master ? ` master ${l.master}` : ''} state ${l.up ? 'UP' : 'DOWN'}\n`);
    } else if (c === 'ip' && a[0] === 'link') {
      this.links.set(a[3]!, { master: a[5], up: true });
    } else if (c === 'ip' && a[0] === '-o') {
      const dev = a[5]!;
      return out((this.addresses.get(dev) ?? []).map((x) => `3: ${dev}    inet ${x.split(' ')[0]} scope global ${x.split(' ')[1]}\\       valid_lft forever preferred_lft forever`).join('\n') + '\n');
    } else if (c === 'ip' && a[0] === 'addr' && (a[1] === 'add' || a[1] === 'replace')) {
      const list = this.addresses.get(a[4]!)!;
      if (a[1] === 'add' || !list.some((x) => x.split(' ')[0] === a[2])) list.push(`${a[2]} ${a[6]}`);
    } else if (c === 'dhcp_release') {
      if (this.noDhcpRelease) throw new Error('spawn dhcp_release ENOENT');
      this.onRelease?.(a[1]!);
      this.released.push(`${a[0]} ${a[1]} ${a[2]}`);
    } else if (c === 'ip' && a[0] === 'addr' && a[1] === 'del') {
      this.addresses.set(
        a[4]!,
        this.addresses.get(a[4]!)!.filter((x) => x.split(' ')[0] !== a[2]),
      );
    } else {
      throw new Error(`FakeHost: unexpected command ${cmd}`);
    }
    this.writes.push(cmd);
    return out('');
  }
}

/** libvirt networks (and an older Koala's nwfilters) in memory, recording every change. */
export class FakeNetworkLibvirt implements NetworkLibvirt {
  networks = new Map<string, { xml: string; active: boolean; autostart: boolean; hosts: DhcpHost[] }>();
  filters = new Map<string, string>();
  inUse = new Set<string>();
  writes: string[] = [];
  private readonly connected: (() => unknown)[] = [];

  async getNetwork(name: string): Promise<LibvirtNetworkFacts | undefined> {
    const n = this.networks.get(name);
    if (!n) return undefined;
    return { ...parseNetworkFacts(n.xml), hosts: n.hosts.map((h) => ({ ...h })), active: n.active, autostart: n.autostart };
  }
  async defineNetwork(xml: string): Promise<void> {
    const name = /<name>([^<]+)<\/name>/.exec(xml)![1]!;
    const old = this.networks.get(name);
    this.networks.set(name, { xml, active: old?.active ?? false, autostart: old?.autostart ?? false, hosts: parseNetworkFacts(xml).hosts });
    this.writes.push(`define network ${name}`);
  }
  async startNetwork(name: string): Promise<void> {
    const n = this.networks.get(name)!;
    n.active = true;
    n.autostart = true;
    this.writes.push(`start network ${name}`);
  }
  async stopNetwork(name: string): Promise<void> {
    const n = this.networks.get(name);
    if (n) n.active = false;
    this.writes.push(`stop network ${name}`);
  }
  async addDhcpHost(network: string, host: DhcpHost): Promise<void> {
    const n = this.networks.get(network)!;
    if (n.hosts.some((h) => h.mac === host.mac || h.ip === host.ip)) throw new Error(`duplicate dhcp host ${host.mac} ${host.ip}`);
    n.hosts.push(host);
    this.writes.push(`dhcp add ${host.ip}`);
  }
  async removeDhcpHost(network: string, host: DhcpHost): Promise<void> {
    const n = this.networks.get(network)!;
    n.hosts = n.hosts.filter((h) => !(h.mac === host.mac && h.ip === host.ip));
    this.writes.push(`dhcp del ${host.ip}`);
  }
  async listFilters(prefix: string): Promise<string[]> {
    return [...this.filters.keys()].filter((n) => n.startsWith(prefix)).sort();
  }
  async undefineFilter(name: string): Promise<void> {
    if (this.inUse.has(name)) throw new Error(`nwfilter '${name}' is in use`);
    this.filters.delete(name);
    this.writes.push(`undefine filter ${name}`);
  }
  onConnected(listener: () => unknown): void {
    this.connected.push(listener);
  }
  async reconnect(): Promise<void> {
    for (const l of this.connected) await l();
  }
}
