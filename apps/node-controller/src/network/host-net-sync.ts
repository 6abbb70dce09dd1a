import { FIREWALL_CHAINS, FIREWALL_JUMPS, L2_CHAINS, L2_JUMPS, OWNED_IPSET_PREFIX, type PlannedIpset } from './guest-firewall.js';
import { MANGLE_CHAIN, MANGLE_JUMPS, NAT_CHAINS, NAT_JUMPS, type NetworkPlan } from './network-plan.js';
import type { HostNetCommands } from './network-state-view.js';

/** The iptables part of a plan: Koala's chains of each table and their restore texts. */
export type TablePlans = Pick<NetworkPlan, 'firewall' | 'firewallRestore' | 'nat' | 'natRestore' | 'mangle' | 'mangleRestore' | 'l2' | 'l2Restore'>;

/** A host change the agent made (for logs and the idempotence specs). */
export type Change = string;

const SYSCTLS: readonly (readonly [string, string])[] = [
  ['net.ipv4.ip_forward', '1'],
  // Security groups are iptables rules on bridged traffic: without this they see nothing.
  ['net.bridge.bridge-nf-call-iptables', '1'],
];

/**
 * The two rule tools, driven the same way: a save to compare, a `--noflush` restore that replaces
 * only the chains it declares, an insert for the jumps, a prefix for the change log.
 */
type RuleTool = 'iptables' | 'ebtables';
const TOOLS: Record<RuleTool, { save: string; restore: string[]; insert: string[]; label: string }> = {
  iptables: { save: 'iptables-save', restore: ['iptables-restore', '-w', '5', '--noflush'], insert: ['iptables', '-w', '5'], label: '' },
  ebtables: { save: 'ebtables-save', restore: ['ebtables-restore', '--noflush'], insert: ['ebtables', '--concurrent'], label: 'ebtables ' },
};

/** Suffix of the temporary set an ipset is rebuilt in before the swap. */
const TMP_SUFFIX = '-t';

/**
 * The host-command half of an apply: sysctls, ipsets, Koala's nat and mangle chains and their
 * jumps, the uplink, the public addresses. Each step reads first and changes only what differs,
 * so an apply of an applied plan runs read commands only.
 */
export class HostNetSync {
  constructor(private readonly sh: HostNetCommands) {}

  async sysctls(): Promise<Change[]> {
    const changes: Change[] = [];
    for (const [key, want] of SYSCTLS) {
      const read = () => this.sh.run(['sysctl', '-n', key]);
      const { stdout } = await read().catch(async (err) => {
        if (!key.startsWith('net.bridge.')) throw err;
        await this.sh.run(['modprobe', 'br_netfilter']); // the key exists once the module is loaded
        changes.push('modprobe br_netfilter');
        return read();
      });
      if (stdout.trim() !== want) {
        await this.sh.run(['sysctl', '-q', '-w', `${key}=${want}`]);
        changes.push(`sysctl ${key}=${want}`);
      }
    }
    return changes;
  }

  /** Current members of Koala's sets (`ipset save` parsed). */
  async readIpsets(): Promise<Map<string, string[]>> {
    const { stdout } = await this.sh.run(['ipset', 'save']);
    const sets = new Map<string, string[]>();
    for (const line of stdout.split('\n')) {
      const m = /^(create|add) (\S+)(?: (\S+))?/.exec(line);
      if (!m || !m[2]!.startsWith(OWNED_IPSET_PREFIX)) continue;
      if (m[1] === 'create') sets.set(m[2]!, sets.get(m[2]!) ?? []);
      else (sets.get(m[2]!) ?? sets.set(m[2]!, []).get(m[2]!)!).push(m[3]!);
    }
    return sets;
  }

  /** Creates missing sets and rebuilds changed ones atomically (restore into a temporary set, swap). */
  async syncIpsets(wanted: readonly PlannedIpset[]): Promise<Change[]> {
    const current = await this.readIpsets();
    return this.writeIpsets(wanted.filter((set) => !sameMembers(current.get(set.name), set.members)));
  }

  /** Sets `sets` to exactly their members without reading first (one `ipset restore`; works whether a set exists or not). */
  async writeIpsets(sets: readonly PlannedIpset[]): Promise<Change[]> {
    const script: string[] = [];
    const changes: Change[] = [];
    for (const set of sets) {
      const tmp = set.name + TMP_SUFFIX;
      script.push(`create ${set.name} ${set.type} family inet -exist`, `create ${tmp} ${set.type} family inet -exist`, `flush ${tmp}`);
      for (const ip of set.members) script.push(`add ${tmp} ${ip}`);
      script.push(`swap ${tmp} ${set.name}`, `destroy ${tmp}`);
      changes.push(`ipset ${set.name} = [${set.members.join(' ')}]`);
    }
    if (script.length) await this.sh.run(['ipset', 'restore'], { input: script.join('\n') + '\n' });
    return changes;
  }

  /** Destroys Koala sets no longer wanted; one still used by a filter rule stays until the next apply. */
  async removeStaleIpsets(wanted: readonly PlannedIpset[], onBusy: (name: string, err: unknown) => void): Promise<Change[]> {
    const keep = new Set(wanted.map((s) => s.name));
    const changes: Change[] = [];
    for (const name of (await this.readIpsets()).keys()) {
      if (keep.has(name)) continue;
      try {
        await this.sh.run(['ipset', 'destroy', name]);
        changes.push(`ipset destroy ${name}`);
      } catch (err) {
        onBusy(name, err);
      }
    }
    return changes;
  }

  /**
   * Koala's nat chains: rewritten whole with `iptables-restore --noflush` (which replaces only
   * the chains it declares) when they differ; then one jump from each built-in chain.
   */
  syncNat(plan: NetworkPlan): Promise<Change[]> {
    const want = [...plan.nat.prerouting, ...plan.nat.postrouting, ...plan.nat.output];
    return this.syncChains('nat', Object.values(NAT_CHAINS), NAT_JUMPS, want, plan.natRestore);
  }

  /**
   * Koala's mangle chains, the same way and with one read: the IMDSv2 hop limit and the guests'
   * security groups (which name the sets: after them).
   */
  syncMangle(plan: NetworkPlan): Promise<Change[]> {
    return this.syncChains(
      'mangle',
      [MANGLE_CHAIN, ...Object.values(FIREWALL_CHAINS)],
      [...MANGLE_JUMPS, ...FIREWALL_JUMPS],
      [...plan.mangle, ...plan.firewall],
      plan.mangleRestore + plan.firewallRestore,
    );
  }

  /** Koala's ebtables nat chains (anti-spoofing), the same way with ebtables. */
  syncL2(plan: NetworkPlan): Promise<Change[]> {
    return this.syncChains('nat', Object.values(L2_CHAINS), L2_JUMPS, plan.l2, plan.l2Restore, 'ebtables');
  }

  private async syncChains(
    table: string,
    ours: readonly string[],
    jumps: readonly (readonly [string, string])[],
    want: readonly string[],
    restore: string,
    tool: RuleTool = 'iptables',
  ): Promise<Change[]> {
    const { stdout } = await this.sh.run([TOOLS[tool].save, '-t', table]);
    const lines = stdout.split('\n');
    const chains = new Map(lines.filter((l) => l.startsWith(':')).map((l) => [l.slice(1).split(' ')[0], l.slice(1).split(' ')[1]]));
    // ebtables chains carry a policy (Koala's: RETURN); iptables user chains print `-`.
    const policyOk = (c: string) => tool === 'iptables' || chains.get(c) === 'RETURN';
    // iptables-save lists chains in its own order: compare chain by chain, rules in order.
    const rulesOf = (chain: string, from: readonly string[]) => from.filter((l) => l.startsWith(`-A ${chain} `)).join('\n');
    const changes: Change[] = [];
    if (!ours.every((c) => chains.has(c) && policyOk(c) && rulesOf(c, lines) === rulesOf(c, want))) changes.push(...(await this.writeChains(tool, table, restore, want.length)));
    for (const [builtin, chain] of jumps) {
      if (lines.includes(`-A ${builtin} -j ${chain}`)) continue;
      await this.sh.run([...TOOLS[tool].insert, '-t', table, '-I', builtin, '1', '-j', chain]);
      changes.push(`${TOOLS[tool].label}jump ${builtin} -> ${chain}`);
    }
    return changes;
  }

  /**
   * Koala's iptables chains whose plan differs from `base`, rewritten whole without reading
   * first, in one `iptables-restore` (the launch path: one process, whatever changed; the jumps
   * to them are the sync methods').
   */
  async writeChanged(next: TablePlans, base: TablePlans): Promise<Change[]> {
    const parts = [
      ['firewall chains', next.firewallRestore, base.firewallRestore, next.firewall.length],
      ['nat chains', next.natRestore, base.natRestore, next.nat.prerouting.length + next.nat.postrouting.length + next.nat.output.length],
      ['mangle chains', next.mangleRestore, base.mangleRestore, next.mangle.length],
    ] as const;
    const changed = parts.filter(([, want, have]) => want !== have);
    if (!changed.length) return [];
    await this.sh.run(TOOLS.iptables.restore, { input: changed.map(([, want]) => want).join('') });
    return changed.map(([what, , , rules]) => `${what} (${rules} rules)`);
  }

  /** Koala's ebtables chains when their plan differs from `base`, without reading first (the launch path). */
  writeChangedL2(next: TablePlans, base: TablePlans): Promise<Change[]> {
    return next.l2Restore === base.l2Restore ? Promise.resolve([]) : this.writeChains('ebtables', 'nat', next.l2Restore, next.l2.length);
  }

  private async writeChains(tool: RuleTool, table: string, restore: string, rules: number): Promise<Change[]> {
    await this.sh.run(TOOLS[tool].restore, { input: restore });
    return [`${TOOLS[tool].label}${table} chains (${rules} rules)`];
  }

  /**
   * Ends dnsmasq's lease of a guest whose DHCP entry went: dnsmasq will not give the address to
   * another MAC while a lease of it runs, and the CLC reuses a terminated instance's address at
   * once. `dhcp_release` (dnsmasq-utils) fakes the guest's DHCPRELEASE on the bridge; a lease
   * that does not exist is no error.
   */
  async releaseLease(bridge: string, ip: string, mac: string): Promise<Change[]> {
    await this.sh.run(['dhcp_release', bridge, ip, mac]);
    return [`lease -${ip}`];
  }

  /** The uplink as a port of the bridge, up. */
  async enslaveUplink(uplink: string, bridge: string): Promise<Change[]> {
    const { stdout } = await this.sh.run(['ip', '-o', 'link', 'show', 'dev', uplink]);
    const master = / master (\S+)/.exec(stdout)?.[1];
    const up = /<[^>]*\bUP\b[^>]*>/.test(stdout);
    if (master === bridge && up) return [];
    await this.sh.run(['ip', 'link', 'set', 'dev', uplink, 'master', bridge, 'up']);
    return [`uplink ${uplink} -> ${bridge}`];
  }

  /** Public addresses (/32, labelled `IF:k` so only Koala's are ever removed). */
  async syncPublicAddresses(publicIf: string, wanted: readonly string[]): Promise<Change[]> {
    const label = publicLabel(publicIf);
    const { stdout } = await this.sh.run(['ip', '-o', '-4', 'addr', 'show', 'dev', publicIf]);
    const have = new Set<string>();
    for (const line of stdout.split('\n')) {
      const m = /\binet (\d+\.\d+\.\d+\.\d+)\/32 /.exec(line);
      if (m && line.split(/[\s\\]+/).includes(label)) have.add(m[1]!);
    }
    const changes: Change[] = [];
    for (const ip of wanted) {
      if (have.has(ip)) continue;
      await this.sh.run(['ip', 'addr', 'add', `${ip}/32`, 'dev', publicIf, 'label', label]);
      changes.push(`address ${ip} on ${publicIf}`);
    }
    for (const ip of have) {
      if (wanted.includes(ip)) continue;
      await this.sh.run(['ip', 'addr', 'del', `${ip}/32`, 'dev', publicIf]);
      changes.push(`address ${ip} off ${publicIf}`);
    }
    return changes;
  }

  /** One public address, without reading first (`replace`: already there is no error). */
  async addPublicAddress(publicIf: string, ip: string): Promise<Change[]> {
    await this.sh.run(['ip', 'addr', 'replace', `${ip}/32`, 'dev', publicIf, 'label', publicLabel(publicIf)]);
    return [`address ${ip} on ${publicIf}`];
  }
}

function publicLabel(publicIf: string): string {
  const label = `${publicIf}:k`;
  if (label.length > 15) throw new Error(`KOALA_NODE_PUBLIC_IF ${publicIf} is too long to label Koala's addresses (at most 13 characters)`);
  return label;
}

/** Same members in any order (undefined: the set does not exist). */
export function sameMembers(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (!a || a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}
