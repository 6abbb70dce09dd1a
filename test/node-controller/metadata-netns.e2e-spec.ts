/**
 * The metadata relay where it really runs: inside a node's network namespace (started by the
 * supervisor with `ip netns exec`), reached from a "guest" namespace over a veth pair, handing
 * connections to the NC's server over its UNIX socket in the host's filesystem; and the IMDSv2
 * hop limit against a "container" namespace routed behind the guest. Every address lives in the
 * three namespaces this test creates (and removes).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFileSync } from '@swc/core';
import type { ZoneNetworkState } from '@koala/contracts';
import { ImdsTokens } from '../../apps/node-controller/src/metadata/imds-tokens.js';
import { FsLaunchSpecStore, type LaunchRecord } from '../../apps/node-controller/src/metadata/launch-spec-store.js';
import { MetadataServer } from '../../apps/node-controller/src/metadata/metadata-server.js';
import { RelaySupervisor } from '../../apps/node-controller/src/metadata/relay-supervisor.js';
import { imdsHopLimitRules, MANGLE_CHAIN, mangleRestoreText, TOKEN_CONNMARK } from '../../apps/node-controller/src/network/network-plan.js';
import type { NetworkStateView } from '../../apps/node-controller/src/network/network-state-view.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tag = randomBytes(3).toString('hex');
const NODE_NS = `kmd-${tag}-n`;
const GUEST_NS = `kmd-${tag}-g`;
const CONTAINER_NS = `kmd-${tag}-c`;
const CONTAINER_NET = `10.251.${randomBytes(1)[0]}`;
const net = `10.250.${randomBytes(1)[0]}`;
const NODE_ADDR = `${net}.1`;
const GUEST = `${net}.5`;
const STRANGER = `${net}.6`;
const PORT = 8775;
const A = 'i-00000000000000a1';

const run = promisify(execFile);
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * curl run inside the guest namespace, from `from` (an address of the guest's veth); async, as
 * the server answering it runs in this very process.
 */
async function curl(from: string | 'container', path: string, extra: string[] = [], maxTime = 5): Promise<{ status: number; body: string }> {
  const where = from === 'container' ? [CONTAINER_NS] : [GUEST_NS];
  const source = from === 'container' ? [] : ['--interface', from];
  const args = ['netns', 'exec', ...where, 'curl', '-s', '--noproxy', '*', '--max-time', String(maxTime), ...source, '-w', '\n%{http_code}', ...extra, `http://${NODE_ADDR}:${PORT}${path}`];
  const { stdout } = await run('ip', args, { encoding: 'utf8' }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  const nl = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(nl + 1)), body: stdout.slice(0, nl) };
}

const state: ZoneNetworkState = {
  zone: 'koala-1a',
  version: 1,
  subnet: `${net}.0/24`,
  dnsSuffix: 'koala-1.compute.internal',
  nodes: [{ node: 'n1', address: NODE_ADDR }],
  interfaces: [{ instanceId: A, node: 'n1', mac: '02:00:00:00:00:a1', privateIp: GUEST, groupIds: [] }],
  groups: [],
  generatedAt: '2026-12-07T00:00:00Z',
};

/** The node's mangle chain as the network agent writes it, for the guest with this hop limit. */
function setHopLimit(limit: number): void {
  const iface = { ...state.interfaces[0]!, metadataOptions: { httpTokens: 'optional' as const, httpPutResponseHopLimit: limit, httpEndpoint: 'enabled' as const } };
  execFileSync('ip', ['netns', 'exec', NODE_NS, 'iptables-restore', '--noflush'], { input: mangleRestoreText(imdsHopLimitRules([iface], NODE_ADDR, PORT)) });
}

const view: NetworkStateView = { current: () => state, onApplied: () => () => undefined };

describe('metadata relay in a node namespace', () => {
  let dir: string;
  let server: MetadataServer;
  let sup: RelaySupervisor;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'koala-mdns-'));
    ip('netns', 'add', NODE_NS);
    ip('netns', 'add', GUEST_NS);
    ip('link', 'add', `kmd${tag}n`, 'netns', NODE_NS, 'type', 'veth', 'peer', 'name', `kmd${tag}g`, 'netns', GUEST_NS);
    ip('-n', NODE_NS, 'addr', 'add', `${NODE_ADDR}/24`, 'dev', `kmd${tag}n`);
    ip('-n', GUEST_NS, 'addr', 'add', `${GUEST}/24`, 'dev', `kmd${tag}g`);
    ip('-n', GUEST_NS, 'addr', 'add', `${STRANGER}/24`, 'dev', `kmd${tag}g`);
    for (const [ns, dev] of [
      [NODE_NS, `kmd${tag}n`],
      [GUEST_NS, `kmd${tag}g`],
    ] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
    // The container: its own namespace behind the guest, which routes and masquerades for it.
    ip('netns', 'add', CONTAINER_NS);
    ip('link', 'add', `kmd${tag}c`, 'netns', CONTAINER_NS, 'type', 'veth', 'peer', 'name', `kmd${tag}h`, 'netns', GUEST_NS);
    ip('-n', GUEST_NS, 'addr', 'add', `${CONTAINER_NET}.1/24`, 'dev', `kmd${tag}h`);
    ip('-n', CONTAINER_NS, 'addr', 'add', `${CONTAINER_NET}.2/24`, 'dev', `kmd${tag}c`);
    ip('-n', GUEST_NS, 'link', 'set', `kmd${tag}h`, 'up');
    ip('-n', CONTAINER_NS, 'link', 'set', 'lo', 'up');
    ip('-n', CONTAINER_NS, 'link', 'set', `kmd${tag}c`, 'up');
    ip('-n', CONTAINER_NS, 'route', 'add', 'default', 'via', `${CONTAINER_NET}.1`);
    execFileSync('ip', ['netns', 'exec', GUEST_NS, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    execFileSync('ip', ['netns', 'exec', GUEST_NS, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', `${CONTAINER_NET}.0/24`, '-j', 'SNAT', '--to-source', GUEST]);
    setHopLimit(1);
    execFileSync('ip', ['netns', 'exec', NODE_NS, 'iptables', '-t', 'mangle', '-I', 'OUTPUT', '1', '-j', MANGLE_CHAIN]);
    const entry = join(dir, 'relay-main.mjs');
    writeFileSync(
      entry,
      transformFileSync(join(ROOT, 'apps/node-controller/src/metadata/relay-main.ts'), { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }).code,
    );
    const store = new FsLaunchSpecStore(join(dir, 'records'));
    const record: LaunchRecord = {
      instanceId: A,
      reservationId: 'r-00000000000000001',
      accountId: '000000000042',
      instanceType: 't1.micro',
      virtualizationType: 'hvm',
      imageId: 'emi-000000a1',
      userData: Buffer.from('#cloud-config\n').toString('base64'),
      hostname: A,
      availabilityZone: 'koala-1a',
      launchIndex: 0,
      ephemeral: false,
      pendingTime: '2026-12-07T00:00:00Z',
    };
    await store.put(record);
    const socketPath = join(dir, 'run', 'metadata-n1.sock');
    server = new MetadataServer({ socketPath, node: 'n1', region: 'koala-1', view, store, tokens: new ImdsTokens({ now: () => new Date() }) });
    await server.start();
    sup = new RelaySupervisor({ node: 'n1', view, entry, socketPath, port: PORT, netns: NODE_NS, tokenMark: TOKEN_CONNMARK, restartDelayMs: 50 });
    sup.start();
    await sup.ready();
  }, 30_000);

  afterAll(async () => {
    await sup?.stop();
    await server?.stop();
    for (const ns of [CONTAINER_NS, GUEST_NS, NODE_NS]) spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the relay inside the namespace, on the node address only', () => {
    const listening = execFileSync('ip', ['netns', 'exec', NODE_NS, 'ss', '-Hltn'], { encoding: 'utf8' });
    expect(listening).toContain(`${NODE_ADDR}:${PORT}`);
    expect(execFileSync('ss', ['-Hltn'], { encoding: 'utf8' })).not.toContain(`${NODE_ADDR}:${PORT}`);
  });

  it('answers the guest about itself (v1 and v2) and a stranger on the same segment 404', async () => {
    expect(await curl(GUEST, '/latest/meta-data/instance-id')).toEqual({ status: 200, body: A });
    expect(await curl(GUEST, '/latest/user-data')).toEqual({ status: 200, body: '#cloud-config\n' });
    const token = await curl(GUEST, '/latest/api/token', ['-X', 'PUT', '-H', 'X-aws-ec2-metadata-token-ttl-seconds: 60']);
    expect(token.status).toBe(200);
    expect(await curl(GUEST, '/latest/meta-data/local-ipv4', ['-H', `X-aws-ec2-metadata-token: ${token.body}`])).toEqual({ status: 200, body: GUEST });
    const s = await curl(STRANGER, '/latest/meta-data/instance-id', ['-H', `X-Forwarded-For: ${GUEST}`]);
    expect(s.status).toBe(404);
    expect(s.body).not.toContain(A);
  });

  it('hop limit 1: a container behind the guest reads v1 metadata but gets no token; the guest does', async () => {
    const put = ['-X', 'PUT', '-H', 'X-aws-ec2-metadata-token-ttl-seconds: 60'];
    expect(await curl('container', '/latest/meta-data/instance-id')).toEqual({ status: 200, body: A });
    // The answer leaves the node with TTL 1: the guest, routing it on, drops it.
    expect((await curl('container', '/latest/api/token', put, 3)).status).toBe(0);
    expect((await curl(GUEST, '/latest/api/token', put)).status).toBe(200);
    const counters = execFileSync('ip', ['netns', 'exec', NODE_NS, 'iptables', '-t', 'mangle', '-L', MANGLE_CHAIN, '-v', '-x', '-n'], { encoding: 'utf8' });
    expect(Number(/^\s*(\d+)/m.exec(counters.split('\n').slice(2).join('\n'))![1])).toBeGreaterThan(0);
    setHopLimit(2);
    const t = await curl('container', '/latest/api/token', put);
    expect(t.status).toBe(200);
    expect(await curl('container', '/latest/meta-data/instance-id', ['-H', `X-aws-ec2-metadata-token: ${t.body}`])).toEqual({ status: 200, body: A });
  });

  it('restarts the relay when it dies', async () => {
    const first = sup.pid!;
    process.kill(first, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    await sup.ready();
    expect(sup.pid).not.toBe(first);
    expect((await curl(GUEST, '/latest/meta-data/instance-id')).body).toBe(A);
  });
});
