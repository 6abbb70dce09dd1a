import type { DhcpHost } from './network-plan.js';

/** What the agent needs to know of the node's libvirt network (parsed from its live XML). */
export interface LibvirtNetworkFacts {
  active: boolean;
  autostart: boolean;
  forwardMode?: string;
  bridge?: string;
  address?: string;
  prefix?: number;
  domain?: string;
  dnsmasqOptions: string[];
  hosts: DhcpHost[];
}

/**
 * The libvirt side of the network agent: the zone's network (and removing an older Koala's nwfilters).
 * Implemented over the NC's libvirt connection (LibvirtNetworkPort); unit specs use a fake.
 * Removals of things already gone succeed.
 */
export interface NetworkLibvirt {
  getNetwork(name: string): Promise<LibvirtNetworkFacts | undefined>;
  /** Defines (or redefines the persistent config of) a network. */
  defineNetwork(xml: string): Promise<void>;
  /** Starts a defined network and marks it autostarted. */
  startNetwork(name: string): Promise<void>;
  /** Stops a network if it runs. */
  stopNetwork(name: string): Promise<void>;
  /** Live and persistent (virNetworkUpdate LIVE|CONFIG, or CONFIG only while inactive). */
  addDhcpHost(network: string, host: DhcpHost): Promise<void>;
  removeDhcpHost(network: string, host: DhcpHost): Promise<void>;
  /** Names of the defined nwfilters starting with `prefix` (an older Koala's, to remove). */
  listFilters(prefix: string): Promise<string[]>;
  /** Undefines a filter; rejects while a guest still uses it. */
  undefineFilter(name: string): Promise<void>;
  /** Called after every (re)connection to libvirtd. */
  onConnected(listener: () => unknown): void;
}
export const NETWORK_LIBVIRT = Symbol('NETWORK_LIBVIRT');
