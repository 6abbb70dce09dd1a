import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ComponentKind } from '@koala/contracts';
import type { KoalaConfig } from '@koala/config';

/** The repository's node host script (dist/apps/koala/src/supervisor -> repository root). */
export const NODE_NETNS_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..', 'deploy', 'scripts', 'koala-node-netns.sh');

/**
 * The all-in-one's guest networking: a node host namespace (its own libvirtd), the zone's segment
 * and a public side whose bridge holds the "internet router" address, all made by
 * deploy/scripts/koala-node-netns.sh. Only loopback and these namespaces are ever involved.
 */
export interface AllInOneNet {
  netns: string;
  segment: string;
  pub: string;
  uplink: string;
  publicIf: string;
  router: string;
  /** Launch-time and elastic public addresses, on the router's subnet but never the router itself. */
  publicRange: string;
  subnet: string;
}

export function allInOneNet(config: Pick<KoalaConfig, 'aioNetns'>): AllInOneNet | undefined {
  const p = config.aioNetns;
  if (p === 'none') return undefined;
  return {
    netns: `${p}-node1`,
    segment: `${p}-seg`,
    pub: `${p}-pub`,
    uplink: 'koala-up0',
    publicIf: 'koala-pub0',
    router: '198.51.100.1/24',
    publicRange: '198.51.100.128/25',
    subnet: '172.31.0.0/20',
  };
}

/** Facts `koala-node-netns.sh up|status` prints (KEY=VALUE lines). */
export type NodeHostFacts = Record<string, string>;

export function parseFacts(out: string): NodeHostFacts {
  return Object.fromEntries(
    out
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/**
 * What each component of the all-in-one gets on top of the operator's environment: the NC drives
 * the node host's libvirtd and networks its guests there; the CLC allocates from a subnet that
 * exists only inside the namespaces and from public addresses the router reaches. A variable the
 * operator set wins, except the NC's libvirt connection and namespace (they must match the node).
 */
export function componentEnv(kind: ComponentKind, base: NodeJS.ProcessEnv, net: AllInOneNet | undefined, facts: NodeHostFacts | undefined): NodeJS.ProcessEnv {
  if (!net || !facts) return base;
  const keep = (name: string, value: string) => ({ [name]: base[name]?.trim() ? base[name] : value });
  if (kind === 'node-controller') {
    return {
      ...base,
      KOALA_NODE_NETNS: net.netns,
      KOALA_LIBVIRT_URI: 'qemu:///system',
      KOALA_LIBVIRT_SOCKET: facts.LIBVIRT_SOCKET ?? '',
      KOALA_NODE_UPLINK: facts.UPLINK ?? net.uplink,
      KOALA_NODE_PUBLIC_IF: facts.PUBLIC_IF ?? net.publicIf,
    };
  }
  if (kind === 'cloud-controller') {
    return { ...base, ...keep('KOALA_ZONE_SUBNETS', `*=${net.subnet}`), ...keep('KOALA_PUBLIC_IP_RANGE', net.publicRange) };
  }
  return base;
}

function script(config: KoalaConfig, args: string[]) {
  return spawnSync('bash', [NODE_NETNS_SCRIPT, ...args], {
    encoding: 'utf8',
    timeout: 180_000,
    // Per-node state under $KOALA_HOME, so clouds with different homes never share a node's files.
    env: { ...process.env, KOALA_NODES_STATE: nodesState(config) },
  });
}

const nodesState = (config: Pick<KoalaConfig, 'home'>) => join(config.home, 'nodes');

/**
 * Whose node host a namespace of that name is: `ours` when this cloud made it (its state lives
 * under this $KOALA_HOME), `absent`, or `another` cloud's (another home on this machine made it:
 * two all-in-one clouds with the same KOALA_AIO_NETNS, or a test's cloud next to the operator's).
 */
export function nodeHostOwner(config: Pick<KoalaConfig, 'home'>, net: AllInOneNet): 'ours' | 'absent' | 'another' {
  if (existsSync(join(nodesState(config), net.netns))) return 'ours';
  return nodeHostExists(net) ? 'another' : 'absent';
}

/** Makes (or completes) the node host; idempotent. */
export function nodeHostUp(config: KoalaConfig, net: AllInOneNet): { facts: NodeHostFacts } | { error: string } {
  if (process.getuid?.() !== 0) return { error: 'the node host needs root (or set KOALA_AIO_NETNS=none)' };
  if (nodeHostOwner(config, net) === 'another') {
    return { error: `the network namespace ${net.netns} is another cloud's node host on this machine (its state is not under ${config.home}): set KOALA_AIO_NETNS to another prefix` };
  }
  if (!existsSync(NODE_NETNS_SCRIPT)) return { error: `${NODE_NETNS_SCRIPT} is missing` };
  const r = script(config, ['up', net.netns, '--uplink-to', net.segment, '--public-to', net.pub, '--public-if', net.publicIf, '--public-router', net.router, '--iscsi', config.iscsiPortal]);
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
  const facts = parseFacts(r.stdout);
  if (!facts.LIBVIRT_SOCKET || !facts.UPLINK || !facts.PUBLIC_IF) return { error: `unexpected output of ${NODE_NETNS_SCRIPT}:\n${r.stdout}` };
  return { facts };
}

/**
 * Removes this cloud's node host (its guests, daemons, relays, namespaces and state); absent is
 * fine, and another cloud's is left alone (`skipped`).
 */
export function nodeHostDown(config: KoalaConfig, net: AllInOneNet): { ok: true; skipped?: string } | { error: string } {
  if (nodeHostOwner(config, net) === 'another') return { ok: true, skipped: `another cloud's (its state is not under ${config.home}): left alone` };
  const r = script(config, ['down', net.netns]);
  return r.status === 0 ? { ok: true } : { error: (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
}

/** Whether the node host's namespace exists (for `koala status`; no root needed). */
export function nodeHostExists(net: AllInOneNet): boolean {
  return existsSync(`/run/netns/${net.netns}`);
}
