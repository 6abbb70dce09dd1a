import type { InstanceSpec, NetworkInterfaceState, ZoneNetworkState } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import { HostNetSync, sameMembers, type Change } from './host-net-sync.js';
import { tapName } from './guest-firewall.js';
import { LEGACY_FILTER_PREFIX, networkName, planNetwork, type DhcpHost, type NetworkPlan, type NodeNetConfig, type PlannedNetwork } from './network-plan.js';
import type { LibvirtNetworkFacts, NetworkLibvirt } from './network-ports.js';
import type { HostNetCommands, NetworkStateView } from './network-state-view.js';
import { codedError } from '@koala/messaging';
import { settleAll } from '@koala/runtime';

export interface NetworkAgentOptions {
  zone: string;
  config: NodeNetConfig;
  /** False when this node has no guest networking (test:/// drivers, no uplink and no namespace): every call is a no-op. */
  enabled: boolean;
  host: HostNetCommands;
  libvirt: NetworkLibvirt;
  /** Asks the CLC for the zone's current state (at start, when a launch finds none). */
  fetchState: () => Promise<ZoneNetworkState>;
  /** Re-apply the newest state this often (drift: libvirtd restarted, an operator's edit). */
  reapplyMs?: number;
  /** First retry after a failed apply; doubles up to reapplyMs. */
  retryMs?: number;
  logger?: Logger;
}

/** What the domain of a networked instance gets (InstanceDomainSpec.network). */
export interface InstanceInterface {
  network: string;
  mac: string;
  ip: string;
  /** The tap's name: Koala's firewall and L2 rules name it before the domain exists (tapName). */
  tap: string;
}

/** The launch path's view of the agent (InstanceManager). */
export interface InstanceNetworking {
  /** Before the domain is defined: DHCP entry, ipsets and the rules of its tap in place. Undefined: no interface. */
  prepare(spec: InstanceSpec): Promise<InstanceInterface | undefined>;
  /** After the domain is gone: its DHCP entry and rules removed (best effort). */
  release(instanceId: string): Promise<void>;
}

/**
 * Reconciles this node to the zone's desired network state. Applies run one at a time; the
 * newest state received wins and an older one is ignored; a failed apply is retried with
 * backoff, and the newest state is re-applied periodically and after libvirtd reconnects. Each
 * apply reads the host and libvirt first and changes only what differs, so re-applying an
 * applied state changes nothing.
 */
export class NetworkAgent implements NetworkStateView, InstanceNetworking {
  private desired?: ZoneNetworkState;
  private applied?: ZoneNetworkState;
  private appliedPlan?: NetworkPlan;
  private readonly listeners = new Set<(s: ZoneNetworkState) => void>();
  /** Launches the state does not know yet (their interface comes from the spec). */
  private readonly launching = new Map<string, NetworkInterfaceState>();
  /** Terminated here while the state still lists them. */
  private readonly released = new Set<string>();
  /** Legacy nwfilters are looked for once per connection to libvirtd (they only ever go). */
  private legacyChecked = false;
  private readonly sync: HostNetSync;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting?: Promise<void>;
  private dirty = false;
  private retryTimer?: NodeJS.Timeout;
  private reapplyTimer?: NodeJS.Timeout;
  private failures = 0;
  /** The next pass reads the host even when its plan is the one in place (periodic pass, libvirtd reconnected). */
  private mustRead = true;
  private stopped = false;
  private warnedDisabled = false;
  private warnedRelease = false;

  constructor(private readonly o: NetworkAgentOptions) {
    this.sync = new HostNetSync(o.host);
  }

  get enabled(): boolean {
    return this.o.enabled;
  }

  // --- NetworkStateView ------------------------------------------------------------------------

  current(): ZoneNetworkState | undefined {
    return this.applied;
  }

  onApplied(listener: (state: ZoneNetworkState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Version of the state applied completely (heartbeat). */
  appliedVersion(): number | undefined {
    return this.applied?.version;
  }

  // --- lifecycle ------------------------------------------------------------------------------

  /** Asks for the current state (in the background until one comes) and starts the periodic re-apply. */
  start(): void {
    if (!this.o.enabled) return;
    this.o.libvirt.onConnected(() => {
      this.legacyChecked = false;
      this.mustRead = true;
      this.poke();
    });
    void this.fetchUntilKnown();
    const period = this.o.reapplyMs ?? 60_000;
    this.reapplyTimer = setInterval(() => {
      this.mustRead = true; // drift: an operator's edit, a restarted daemon
      this.poke();
    }, period);
    this.reapplyTimer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.reapplyTimer);
    clearTimeout(this.retryTimer);
    await this.queue.catch(() => undefined);
  }

  private async fetchUntilKnown(): Promise<void> {
    for (let delay = 1000; !this.stopped && !this.desired; delay = Math.min(delay * 2, this.o.reapplyMs ?? 60_000)) {
      try {
        this.receive(await this.o.fetchState());
        return;
      } catch (err) {
        this.o.logger?.debug({ err: (err as Error).message, zone: this.o.zone }, 'network state not available yet');
      }
      await new Promise((r) => setTimeout(r, delay).unref?.());
    }
  }

  // --- states ---------------------------------------------------------------------------------

  /** A state from the bus (or a request). Older than the newest known: ignored. Returns whether it was taken. */
  receive(state: ZoneNetworkState): boolean {
    if (!this.o.enabled || state.zone !== this.o.zone) return false;
    if (this.desired && state.version < this.desired.version) return false;
    if (this.desired && state.version === this.desired.version && this.applied?.version === state.version && !this.dirty) return false;
    this.desired = state;
    // Local overrides end once the state has caught up.
    for (const id of [...this.launching.keys()]) if (state.interfaces.some((i) => i.instanceId === id)) this.launching.delete(id);
    for (const id of [...this.released]) if (!state.interfaces.some((i) => i.instanceId === id && i.node === this.o.config.node)) this.released.delete(id);
    this.poke();
    return true;
  }

  /** Schedules an apply of the newest state (coalesced: one runs, at most one waits); rejects if that apply fails. */
  kick(): Promise<void> {
    if (!this.o.enabled || this.stopped) return Promise.resolve();
    if (this.waiting) return this.waiting;
    const run = this.queue.then(() => {
      this.waiting = undefined;
      return this.applyNewest();
    });
    this.waiting = run;
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** kick() from timers and events: failures are logged and retried by applyNewest. */
  private poke(): void {
    this.kick().catch(() => undefined);
  }

  /** Applies the newest state now (serialised); rejects when the apply fails. */
  private async applyNewest(): Promise<void> {
    const state = this.desired;
    if (!state || this.stopped) return;
    try {
      // A state whose plan is exactly what is in place (the launch path wrote a guest's entries,
      // then the CLC published the state holding it) needs no pass: reading the host costs a
      // dozen processes that would compete with the launch for the CPU. Drift is the periodic
      // pass's, which reads.
      const plan = this.plan(state);
      const inPlace = !this.mustRead && !this.dirty && !!plan && !!this.appliedPlan && samePlan(plan, this.appliedPlan);
      if (!inPlace) this.mustRead = false;
      const changes = inPlace ? [] : await this.apply(state, plan);
      this.failures = 0;
      this.dirty = false;
      clearTimeout(this.retryTimer);
      const first = this.applied?.version !== state.version;
      this.applied = state;
      if (changes.length) this.o.logger?.info({ version: state.version, changes }, 'network state applied');
      else if (first) this.o.logger?.debug({ version: state.version }, 'network state applied (nothing to change)');
      if (!first && !changes.length) return; // a periodic pass that found everything in place
      for (const l of this.listeners) {
        try {
          l(state);
        } catch (err) {
          this.o.logger?.error({ err }, 'network onApplied listener failed');
        }
      }
    } catch (err) {
      this.failures++;
      this.dirty = true;
      const delay = Math.min((this.o.retryMs ?? 1000) * 2 ** (this.failures - 1), this.o.reapplyMs ?? 60_000);
      this.o.logger?.error({ err, version: state.version, retryInMs: delay }, 'network apply failed; will retry');
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.poke(), delay);
      this.retryTimer.unref?.();
      throw err;
    }
  }

  /** The plan of a state with this node's local knowledge on top. */
  plan(state: ZoneNetworkState): NetworkPlan | undefined {
    return planNetwork(state, this.o.config, { extra: [...this.launching.values()], exclude: this.released });
  }

  /**
   * One reconcile pass. Returns the changes made (empty: everything was in place). Independent
   * strands run side by side (each host command or libvirt call costs a process or a round trip):
   * sysctls; sets and the mangle chains (security groups, hop limit: after the sets they name,
   * before stale sets go); the L2 chains; network and uplink (the bridge before its uplink); NAT
   * and public addresses.
   */
  async apply(state: ZoneNetworkState, plan = this.plan(state)): Promise<Change[]> {
    if (!plan) return []; // this node has no address in the zone yet: nothing to hold
    this.appliedPlan = undefined; // until this pass has completed, nothing is known to be in place
    const { uplink, bridge, publicIf } = this.o.config;
    const strands = await settleAll([
      this.sync.sysctls(),
      (async () => [
        ...(await this.sync.syncIpsets(plan.ipsets)),
        ...(await this.sync.syncMangle(plan)),
        ...(await this.sync.removeStaleIpsets(plan.ipsets, (name, err) => this.o.logger?.debug({ ipset: name, err: (err as Error).message }, 'stale ipset still in use; next apply'))),
      ])(),
      this.sync.syncL2(plan),
      (async () => [...(await this.syncNetwork(plan.network)), ...(uplink ? await this.sync.enslaveUplink(uplink, bridge) : []), ...(await this.removeLegacyFilters())])(),
      (async () => [...(await this.sync.syncNat(plan)), ...(publicIf ? await this.sync.syncPublicAddresses(publicIf, plan.publicAddresses) : [])])(),
    ] as const);
    this.appliedPlan = plan;
    return strands.flat();
  }

  private async syncNetwork(want: PlannedNetwork): Promise<Change[]> {
    const lv = this.o.libvirt;
    const changes: Change[] = [];
    let have = await lv.getNetwork(want.name);
    if (!have || !sameShape(have, want)) {
      // Something updateNetwork cannot change (bridge, address, mode): redefine. Guests on the
      // old bridge lose their port until restarted: only a changed node address or bridge does this.
      if (have?.active) {
        this.o.logger?.warn(
          { network: want.name, have: { ...have, hosts: have.hosts.length }, want: { bridge: want.bridge, address: want.address, prefix: want.prefix } },
          'network differs beyond DHCP hosts: redefining it',
        );
        await lv.stopNetwork(want.name);
      }
      await lv.defineNetwork(want.xml);
      changes.push(have ? `network ${want.name} redefined` : `network ${want.name} defined`);
      have = await lv.getNetwork(want.name);
      if (!have) throw new Error(`network ${want.name} vanished after define`);
    }
    if (!have.active || !have.autostart) {
      await lv.startNetwork(want.name);
      changes.push(`network ${want.name} started`);
      have = (await lv.getNetwork(want.name)) ?? have;
    }
    const key = (h: { mac: string; ip: string; name: string }) => `${h.mac}|${h.ip}|${h.name}`;
    const wantKeys = new Set(want.hosts.map(key));
    const haveKeys = new Set(have.hosts.map(key));
    // Removals first: a MAC or IP moving to another entry must not clash with the old one.
    for (const h of have.hosts) {
      if (wantKeys.has(key(h))) continue;
      changes.push(...(await this.releaseLease(want.bridge, h)));
      await lv.removeDhcpHost(want.name, h);
      changes.push(`dhcp -${h.ip}`);
    }
    for (const h of want.hosts) {
      if (haveKeys.has(key(h))) continue;
      await lv.addDhcpHost(want.name, h);
      changes.push(`dhcp +${h.ip}`);
    }
    return changes;
  }

  /**
   * Ends a guest's lease; before its DHCP entry goes: dnsmasq ignores the release of a client it
   * no longer knows (`dhcp-ignore=tag:!known`). Best effort: a lease left running only delays
   * the address's next guest (its DHCP lease time).
   */
  private async releaseLease(bridge: string, h: DhcpHost): Promise<Change[]> {
    try {
      return await this.sync.releaseLease(bridge, h.ip, h.mac);
    } catch (err) {
      if (!this.warnedRelease)
        this.o.logger?.warn(
          { err: (err as Error).message, ip: h.ip },
          'could not release the DHCP lease of a removed guest (dhcp_release from dnsmasq-utils missing?); its address waits for the lease to run out',
        );
      this.warnedRelease = true;
      return [];
    }
  }

  /**
   * Removes the per-instance nwfilters an earlier Koala defined (before its own chains). One a
   * guest still uses stays until that guest goes; looked for once per connection to libvirtd.
   */
  private async removeLegacyFilters(): Promise<Change[]> {
    if (this.legacyChecked) return [];
    const changes: Change[] = [];
    let busy = false;
    for (const name of await this.o.libvirt.listFilters(LEGACY_FILTER_PREFIX)) {
      try {
        await this.o.libvirt.undefineFilter(name);
        changes.push(`legacy filter -${name}`);
      } catch (err) {
        busy = true;
        this.o.logger?.debug({ filter: name, err: (err as Error).message }, 'legacy filter still in use; next apply');
      }
    }
    this.legacyChecked = !busy;
    return changes;
  }

  // --- the launch path ------------------------------------------------------------------------

  async prepare(spec: InstanceSpec): Promise<InstanceInterface | undefined> {
    const net = spec.network;
    if (!net) return undefined;
    if (!this.o.enabled) {
      if (!this.warnedDisabled) this.o.logger?.warn({ instanceId: spec.instanceId }, 'launch with a network but guest networking is off on this node: no interface');
      this.warnedDisabled = true;
      return undefined;
    }
    const iface: NetworkInterfaceState = {
      instanceId: spec.instanceId,
      node: this.o.config.node,
      mac: net.mac,
      privateIp: net.privateIp,
      ...(net.publicIp ? { publicIp: net.publicIp } : {}),
      groupIds: net.groups.map((g) => g.groupId),
    };
    this.released.delete(spec.instanceId);
    if (!this.desired?.interfaces.some((i) => i.instanceId === spec.instanceId)) this.launching.set(spec.instanceId, iface);
    if (!this.desired) {
      try {
        this.receive(await this.o.fetchState());
      } catch (err) {
        this.launching.delete(spec.instanceId);
        throw codedError('Server.InternalError', `the network state of zone ${this.o.zone} is not available: ${(err as Error).message}`);
      }
    }
    const state = this.desired;
    if (!state || !state.nodes.some((n) => n.node === this.o.config.node)) {
      this.launching.delete(spec.instanceId);
      throw codedError('Server.InternalError', `node ${this.o.config.node} has no address in zone ${this.o.zone}'s network yet`);
    }
    try {
      await this.exclusive(() =>
        this.applyOwn(spec.instanceId).catch((err: unknown) => {
          // Part of it may be written: what is in place is unknown until a whole apply.
          this.appliedPlan = undefined;
          this.dirty = true;
          throw err;
        }),
      );
    } catch (err) {
      this.launching.delete(spec.instanceId);
      throw codedError('Server.InternalError', `could not set up the network of ${spec.instanceId}: ${(err as Error).message}`);
    }
    return { network: networkName(this.o.zone), mac: net.mac, ip: net.privateIp, tap: tapName(net.mac) };
  }

  /** Runs `work` between applies (the agent changes the host one pass at a time). */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * The launch path: only what the new guest needs before its domain is defined — the sets of
   * its groups with its address in them, its DHCP entry, the chains with its tap's rules, NAT of
   * its public address —
   * written on top of what the last complete apply left, without reading the host again.
   * Everything else the new state implies (stale entries, a public interface's addresses) is the
   * next whole apply's: the CLC publishes that state right after the launch.
   * Without a complete apply to build on (first launch, last apply failed) it runs a whole one.
   */
  private async applyOwn(instanceId: string): Promise<Change[]> {
    const base = this.appliedPlan;
    const next = this.desired && this.plan(this.desired);
    const own = next?.interfaces.find((i) => i.instanceId === instanceId);
    const host = own && next?.network.hosts.find((h) => h.ip === own.privateIp);
    if (!base || !next || !own || !host || this.dirty || !sameNetwork(base.network, next.network)) {
      await this.applyNewest();
      if (!this.appliedPlan?.interfaces.some((i) => i.instanceId === instanceId)) throw new Error(`the network apply did not set up ${instanceId}`);
      return [];
    }
    const haveSets = new Map(base.ipsets.map((x) => [x.name, x.members]));
    // Independent strands, each a process or a libvirt call: the sets, then the iptables chains
    // naming them; the L2 chains; the DHCP entry.
    const [tables, l2, dhcp] = await settleAll([
      (async () => [...(await this.sync.writeIpsets(next.ipsets.filter((x) => !sameMembers(haveSets.get(x.name), x.members)))), ...(await this.sync.writeChanged(next, base))])(),
      this.sync.writeChangedL2(next, base),
      this.addOwnDhcpHost(next.network, base.network.hosts, host),
    ] as const);
    const changes: Change[] = [...tables, ...l2, ...dhcp.changes];
    const hosts = dhcp.hosts;
    let publicAddresses = base.publicAddresses;
    const publicIp = own.publicIp;
    if (this.o.config.publicIf && publicIp && !publicAddresses.includes(publicIp)) {
      changes.push(...(await this.sync.addPublicAddress(this.o.config.publicIf, publicIp)));
      publicAddresses = [...publicAddresses, publicIp];
    }
    // What is now in place: the last apply's with this guest's entries on top.
    const sets = new Map(base.ipsets.map((x) => [x.name, x]));
    for (const x of next.ipsets) sets.set(x.name, x);
    this.appliedPlan = {
      ...base,
      network: { ...base.network, hosts },
      ipsets: [...sets.values()],
      nat: next.nat,
      natRestore: next.natRestore,
      firewall: next.firewall,
      firewallRestore: next.firewallRestore,
      l2: next.l2,
      l2Restore: next.l2Restore,
      interfaces: [...base.interfaces.filter((i) => i.instanceId !== instanceId), own],
      mangle: next.mangle,
      mangleRestore: next.mangleRestore,
      publicAddresses,
    };
    if (changes.length) this.o.logger?.info({ instanceId, changes }, 'network of a launch set up');
    return changes;
  }

  /** The launch's DHCP entry on top of `hosts` (what is in place); returns the entries now in place. */
  private async addOwnDhcpHost(network: PlannedNetwork, hosts: readonly DhcpHost[], host: DhcpHost): Promise<{ changes: Change[]; hosts: DhcpHost[] }> {
    if (hosts.some((h) => h.mac === host.mac && h.ip === host.ip && h.name === host.name)) return { changes: [], hosts: [...hosts] };
    const lv = this.o.libvirt;
    const changes: Change[] = [];
    // An entry holding its address or MAC (a guest gone meanwhile) would make the add fail.
    for (const h of hosts.filter((h) => h.mac === host.mac || h.ip === host.ip)) {
      changes.push(...(await this.releaseLease(network.bridge, h)));
      await lv.removeDhcpHost(network.name, h);
      changes.push(`dhcp -${h.ip}`);
    }
    await lv.addDhcpHost(network.name, host);
    changes.push(`dhcp +${host.ip}`);
    return { changes, hosts: [...hosts.filter((h) => h.mac !== host.mac && h.ip !== host.ip), host] };
  }

  async release(instanceId: string): Promise<void> {
    if (!this.o.enabled) return;
    const known = this.launching.delete(instanceId) || this.desired?.interfaces.some((i) => i.instanceId === instanceId && i.node === this.o.config.node);
    if (!known) return;
    this.released.add(instanceId);
    this.dirty = true;
    await this.kick().catch((err) => this.o.logger?.warn({ err, instanceId }, 'network clean-up after terminate failed; the next apply retries'));
  }
}

/** Two plans holding the same things (lists in any order). */
function samePlan(a: NetworkPlan, b: NetworkPlan): boolean {
  const hosts = (p: NetworkPlan) => p.network.hosts.map((h) => `${h.mac}|${h.ip}|${h.name}`).sort();
  const sets = (p: NetworkPlan) => [...p.ipsets].sort((x, y) => (x.name < y.name ? -1 : 1)).map((x) => `${x.name} ${x.type} ${[...x.members].sort().join(' ')}`);
  const key = (p: NetworkPlan) => JSON.stringify([hosts(p), sets(p), p.natRestore, p.mangleRestore, p.firewallRestore, p.l2Restore, [...p.publicAddresses].sort()]);
  return sameNetwork(a.network, b.network) && key(a) === key(b);
}

/** Two plans of the same libvirt network but for its DHCP hosts. */
function sameNetwork(a: PlannedNetwork, b: PlannedNetwork): boolean {
  return a.name === b.name && a.bridge === b.bridge && a.address === b.address && a.prefix === b.prefix && a.domain === b.domain && a.dnsmasqOptions.join('\n') === b.dnsmasqOptions.join('\n');
}

function sameShape(have: LibvirtNetworkFacts, want: PlannedNetwork): boolean {
  return (
    have.forwardMode === 'open' &&
    have.bridge === want.bridge &&
    have.address === want.address &&
    have.prefix === want.prefix &&
    (have.domain ?? '') === want.domain &&
    have.dnsmasqOptions.join('\n') === want.dnsmasqOptions.join('\n')
  );
}
