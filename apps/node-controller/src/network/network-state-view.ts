import type { ZoneNetworkState } from '@koala/contracts';

/**
 * Port between the NC's network agent (which receives and applies the zone's desired network
 * state) and its readers, such as the metadata service. The agent implements it.
 */
export interface NetworkStateView {
  /** The last state this node applied completely; undefined before the first one. */
  current(): ZoneNetworkState | undefined;
  /** Called after every state this node applied completely (not for failed applies, nor for periodic re-applies that changed nothing). */
  onApplied(listener: (state: ZoneNetworkState) => void): () => void;
}
export const NETWORK_STATE_VIEW = Symbol('NETWORK_STATE_VIEW');

/**
 * Port the NC uses to run host network commands (`ip`, `iptables-restore`, `ipset`, `sysctl`)
 * in the node's guest-network namespace (`KOALA_NODE_NETNS`, prefixing `ip netns exec NS`), or in
 * its own when none is configured.
 */
export interface HostNetCommands {
  run(argv: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
}
export const HOST_NET_COMMANDS = Symbol('HOST_NET_COMMANDS');
