/**
 * The multi-node lab: node hosts on this machine, for guest-networking tests.
 *
 * Each node is a network namespace with its own libvirtd + virtlogd (made by
 * deploy/scripts/koala-node-netns.sh): its bridges, dnsmasq, iptables/ebtables/ipset state and
 * QEMU guests live in that namespace, and its libvirtd socket is reachable from the test (and an
 * NC) at `node.libvirtSocket`. With `segment: true` every node also gets an uplink `koala-up0`
 * (a veth whose peer sits on one bridge in a segment namespace): the zone's L2 segment. Inside a
 * node, 127.0.0.1:3260 reaches the host's tgtd (a relay), so iSCSI volumes work unchanged.
 *
 *   const lab = await startLab({ nodes: ['n1', 'n2'], segment: true });
 *   try {
 *     const lv = await Libvirt.connect({ socketPath: lab.nodes[0].libvirtSocket, uri: 'qemu:///system' });
 *     await lab.nodes[0].run('ip link set koala-up0 master koala-br0'); // inside the node's namespace
 *   } finally {
 *     await lab.stop(); // always: also removes what a failed test left running in the nodes
 *   }
 *
 * Names get a random prefix (`kl<4 hex>-n1`), so runs side by side do not collide; node names are
 * at most 8 characters so that the namespace names stay ≤ 15 (interface-name sized). Needs root.
 * `startLab` cleans up what it made when it fails halfway; `stop()` is idempotent, tries every
 * part even when one fails (then throws), and also runs at process exit if a test forgot it.
 * Rule: start libvirt networks, bridges and guests only inside the lab's nodes, never on the
 * host's own libvirtd.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The node host script the lab (and the all-in-one cloud) use. */
export const NODE_NETNS_SCRIPT = join(ROOT, 'deploy/scripts/koala-node-netns.sh');

export interface LabOptions {
  /** Short node names (≤ 8 characters, [a-z0-9-]); each becomes a namespace `kl<id>-<name>`. */
  nodes: string[];
  /** Give every node an uplink `koala-up0` into one shared segment namespace (default false). */
  segment?: boolean;
}

export interface LabNode {
  /** The name given in {@link LabOptions.nodes}. */
  name: string;
  /** The node's network namespace (also the name its directories are kept under). */
  netns: string;
  /** The node's libvirtd socket on the host: `Libvirt.connect({ socketPath })`. */
  libvirtSocket: string;
  /** A URI for virsh: `qemu:///system?socket=…`. */
  libvirtUri: string;
  /** The uplink interface in the node's namespace (`koala-up0`), when the lab has a segment. */
  uplink?: string;
  /** The node's run and state directories (removed by stop()). */
  runDir: string;
  stateDir: string;
  /**
   * Runs a command inside the node's network namespace (`ip netns exec`): a string goes through
   * `sh -c`, an array is argv. Resolves with stdout; rejects with stderr on a non-zero exit.
   */
  run(cmd: string | string[], opts?: { input?: string | Buffer; timeoutMs?: number }): Promise<string>;
}

export interface Lab {
  /** The random part of every name of this lab. */
  id: string;
  nodes: LabNode[];
  /** The segment namespace (holds the bridge `koala-seg`), when asked for. */
  segmentNs?: string;
  /** Everything this lab created, for assertions: namespaces and directories. */
  namespaces: string[];
  directories: string[];
  /** Removes the nodes (their guests, networks, daemons, relays, mounts, directories) and the segment. */
  stop(): Promise<void>;
}

function exec(cmd: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((res, rej) => {
    const child = execFile(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${cmd} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else res(stdout);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

const parseFacts = (out: string): Record<string, string> =>
  Object.fromEntries(
    out
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

export async function startLab(opts: LabOptions): Promise<Lab> {
  if (!opts.nodes.length) throw new Error('startLab: at least one node');
  const seen = new Set<string>();
  for (const n of opts.nodes) {
    if (!/^[a-z0-9][a-z0-9-]{0,7}$/.test(n)) throw new Error(`startLab: node name ${JSON.stringify(n)} must be 1-8 characters [a-z0-9-]`);
    if (seen.has(n)) throw new Error(`startLab: node name ${n} given twice`);
    seen.add(n);
  }
  const id = randomBytes(2).toString('hex');
  const prefix = `kl${id}-`;
  const segmentNs = opts.segment ? `${prefix}seg` : undefined;
  const attempted: string[] = [];
  let stopped = false;
  const nodes: LabNode[] = [];

  const downAll = async (): Promise<void> => {
    const errors: string[] = [];
    for (const ns of [...attempted].reverse()) {
      await exec(NODE_NETNS_SCRIPT, ['down', ns], { timeoutMs: 120_000 }).catch((e: Error) => errors.push(e.message));
    }
    if (segmentNs) await exec(NODE_NETNS_SCRIPT, ['segment-down', segmentNs]).catch((e: Error) => errors.push(e.message));
    if (errors.length) throw new Error(`lab ${id}: stop failed:\n${errors.join('\n')}`);
  };
  // A test that forgot stop() (or a crash between start and stop) still leaves nothing behind.
  const atExit = () => {
    if (stopped) return;
    for (const ns of attempted) {
      try {
        execFileSync(NODE_NETNS_SCRIPT, ['down', ns], { stdio: 'ignore', timeout: 60_000 });
      } catch {
        /* best effort */
      }
    }
    if (segmentNs) {
      try {
        execFileSync(NODE_NETNS_SCRIPT, ['segment-down', segmentNs], { stdio: 'ignore', timeout: 60_000 });
      } catch {
        /* best effort */
      }
    }
  };
  process.once('exit', atExit);
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', atExit);
    await downAll();
  };

  try {
    for (const name of opts.nodes) {
      const netns = prefix + name;
      attempted.push(netns);
      const args = ['up', netns, ...(segmentNs ? ['--uplink-to', segmentNs] : [])];
      const facts = parseFacts(await exec(NODE_NETNS_SCRIPT, args, { timeoutMs: 120_000 }));
      const node: LabNode = {
        name,
        netns,
        libvirtSocket: facts.LIBVIRT_SOCKET!,
        libvirtUri: facts.LIBVIRT_URI!,
        runDir: facts.RUN_DIR!,
        stateDir: facts.STATE_DIR!,
        ...(facts.UPLINK ? { uplink: facts.UPLINK } : {}),
        run: (cmd, o) => exec('ip', ['netns', 'exec', netns, ...(typeof cmd === 'string' ? ['sh', '-c', cmd] : cmd)], o),
      };
      if (!node.libvirtSocket || !node.runDir || !node.stateDir) throw new Error(`lab ${id}: unexpected output of ${NODE_NETNS_SCRIPT} up ${netns}`);
      nodes.push(node);
    }
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return {
    id,
    nodes,
    ...(segmentNs ? { segmentNs } : {}),
    namespaces: [...attempted, ...(segmentNs ? [segmentNs] : [])],
    directories: nodes.flatMap((n) => [n.runDir, n.stateDir]),
    stop,
  };
}
