/**
 * Guest networking costs (not part of the suite):
 *
 * 1. RunInstances -> running and -> booted for tiny-linux with guest networking vs without, on
 *    ONE lab node (test/support/lab.ts: a namespace with its own libvirtd): a real CLC, two zones
 *    each with its CC and an NC on that same libvirtd — one NC with KOALA_NODE_NETNS (network
 *    agent on: DHCP entry, ipsets, the tap's chains, NAT before the domain is defined), one without (no
 *    interface). Rounds alternate. `running` = first DescribeInstances (every 20 ms: at 100 ms
 *    the poll's step was a fifth of a ~450 ms launch and decided the ratio) saying
 *    running; `booted` = first GetConsoleOutput (every 100 ms) holding TINY-LINUX-BOOTED; `NET` =
 *    the guest's `NET:` line (its DHCP address; the plain guest prints `NET: none` at once).
 *    Printed: medians and the ratio networked / plain (goal ≤ 1.10 for running and booted).
 *
 * 2. A security-group rule change on 50 running interfaces: the NC's NetworkAgent (real
 *    LibvirtNetworkPort and host commands on the lab node) holds a zone of 50 instances in one
 *    group (the rule toggled: tcp 8080 from a CIDR); 50 domains on taps named as Koala's chains
 *    name them are started PAUSED on the node (QEMU processes and tap devices exist; no guest
 *    CPU: 50 TCG boots would not fit this machine). Measured: the agent's apply of the state
 *    where the group's ingress rule was revoked or authorized again. The rule is an entry of the
 *    group's `-pi` set, matched by every guest's rules: the apply rewrites that set and no rule.
 *    What it does NOT include: the
 *    CLC building and publishing the state (RevokeSecurityGroupIngress -> NATS, measured end to
 *    end on real guests in test/lab/networking.e2e-spec.ts).
 *
 * 3. The NC's share of a networked launch: the agent's prepare() of a new instance on an applied
 *    state (only its own entries: set, DHCP entry, chains, NAT) against a whole apply of a state
 *    holding one more instance (what the launch path ran once or twice before). No domain.
 *
 * Run (root; PostgreSQL, libvirtd, nats-server):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/network-jest.config.js
 * Knobs: BENCH_ROUNDS=3, BENCH_GUESTS=50; KOALA_TEST_LOG_LEVEL=info shows the NC's launch breakdown (`instance running`).
 */
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFileSync } from '@swc/core';
import type { INestApplicationContext } from '@nestjs/common';
import { DescribeInstancesCommand, GetConsoleOutputCommand, RunInstancesCommand, TerminateInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { listNodes, type InstanceSpec, type ZoneNetworkState } from '@koala/contracts';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { buildDomainXml, type Domain } from '@koala/libvirt';
import { startDaemon } from '@koala/runtime';
import { NatsBus } from '@koala/messaging';
import { clusterModule } from '../apps/cluster-controller/src/cluster.module.js';
import { NodeLibvirt } from '../apps/node-controller/src/libvirt/node-libvirt.js';
import { ExecHostNetCommands } from '../apps/node-controller/src/network/host-net-commands.js';
import { LibvirtNetworkPort } from '../apps/node-controller/src/network/libvirt-network-port.js';
import { NetworkAgent } from '../apps/node-controller/src/network/network-agent.js';
import { nodeModule } from '../apps/node-controller/src/node.module.js';
import { startCloud, type TestCloud } from '../test/support/cloud.js';
import { startLab, type Lab } from '../test/support/lab.js';
import { TestNatsServer } from '../test/support/nats-server.js';
import { fmt, importTinyLinux, stats, until } from './instances-support.js';

jest.setTimeout(3_600_000);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const IMAGE_DIR = join(tmpdir(), 'koala-test-images', 'tiny-linux');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const GUESTS = Number(process.env.BENCH_GUESTS ?? 50);
const tag = randomBytes(3).toString('hex');
const BANNER = 'TINY-LINUX-BOOTED';

let lab: Lab | undefined;
const homes: string[] = [];

beforeAll(async () => {
  execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), IMAGE_DIR], { stdio: 'ignore', timeout: 600_000 });
  lab = await startLab({ nodes: ['b1'] });
}, 900_000);

afterAll(async () => {
  await lab?.stop();
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

it('RunInstances -> running / booted with guest networking vs without (one lab node)', async () => {
  const node = lab!.nodes[0]!;
  const nats = await TestNatsServer.start();
  const daemons: INestApplicationContext[] = [];
  let cloud: TestCloud | undefined;
  let bus: NatsBus | undefined;
  const left: string[] = [];
  let ec2: EC2Client | undefined;
  try {
    const work = mkdtempSync(join(tmpdir(), 'koala-netbench-'));
    homes.push(work);
    chmodSync(work, 0o755);
    const relayEntry = join(work, 'relay-main.mjs');
    writeFileSync(
      relayEntry,
      transformFileSync(join(ROOT, 'apps/node-controller/src/metadata/relay-main.ts'), { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }).code,
    );
    const zNet = `bn-${tag}`;
    const zPlain = `bp-${tag}`;
    cloud = await startCloud({ natsUrl: nats.url, env: { KOALA_ZONE_SUBNETS: `${zNet}=10.66.0.0/24,${zPlain}=10.67.0.0/24`, KOALA_PUBLIC_IP_RANGE: '198.51.100.0/24' } });
    ec2 = cloud.ec2();
    bus = await NatsBus.connect({ url: nats.url, name: 'netbench' });
    const env = (zone: string, extra: Record<string, string>): KoalaConfig => {
      const home = mkdtempSync(join(tmpdir(), 'koala-netbench-'));
      chmodSync(home, 0o755);
      homes.push(home);
      return loadConfig({ KOALA_HOME: home, KOALA_NATS_URL: nats.url, KOALA_ZONE: zone, KOALA_LOG_LEVEL: process.env.KOALA_TEST_LOG_LEVEL ?? 'warn', KOALA_HEARTBEAT_MS: '500', ...extra });
    };
    for (const [zone, net] of [
      [zNet, true],
      [zPlain, false],
    ] as const) {
      daemons.push((await startDaemon('cluster-controller', clusterModule, { zoned: true, config: env(zone, {}) })).app);
      const config = env(zone, {
        KOALA_NODE_NAME: `${zone}-b1`,
        KOALA_LIBVIRT_URI: 'qemu:///system',
        KOALA_LIBVIRT_SOCKET: node.libvirtSocket,
        KOALA_IMAGE_CACHE_POOL: `koala-img-${zone}`,
        KOALA_NC_INSTANCES_POOL: `koala-inst-${zone}`,
        ...(net ? { KOALA_NODE_NETNS: node.netns } : {}),
      });
      daemons.push((await startDaemon('node-controller', (c) => nodeModule(c, { relayEntry }), { zoned: true, config })).app);
      await until(`${zone} node up`, async () => (await bus!.request(listNodes(zone), {}, { timeoutMs: 3000 }).catch(() => ({ nodes: [] }))).nodes.some((n) => n.state === 'up'), 60_000, 500);
    }
    const imageId = await importTinyLinux(cloud.config, `tiny-${tag}`, IMAGE_DIR);
    const text = async (id: string) => {
      const r = await ec2!.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: true }));
      return r.Output ? Buffer.from(r.Output, 'base64').toString('utf8') : '';
    };
    const once = async (zone: string) => {
      const t0 = performance.now();
      const id = (await ec2!.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1, InstanceType: 'm1.small', Placement: { AvailabilityZone: zone } }))).Instances![0]!.InstanceId!;
      left.push(id);
      await until(`${id} running`, async () => (await ec2!.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!.State!.Name === 'running', 300_000, 20);
      const running = performance.now() - t0;
      await until(`${id} booted`, async () => (await text(id)).includes(BANNER), 300_000, 100);
      const booted = performance.now() - t0;
      await until(`${id} NET`, async () => /^NET: /m.test(await text(id)), 300_000, 100);
      const net = performance.now() - t0;
      const line = /^NET: .*$/m.exec(await text(id))![0];
      await ec2!.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
      await until(`${id} terminated`, async () => (await ec2!.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!.State!.Name === 'terminated', 120_000, 200);
      left.splice(left.indexOf(id), 1);
      return { running, booted, net, line };
    };
    // Warm-up (image caches of both NCs), untimed.
    await once(zNet);
    await once(zPlain);
    const r = { net: { running: [] as number[], booted: [] as number[], net: [] as number[] }, plain: { running: [] as number[], booted: [] as number[], net: [] as number[] } };
    let lines = '';
    for (let i = 0; i < ROUNDS; i++) {
      for (const [k, zone] of [
        ['net', zNet],
        ['plain', zPlain],
      ] as const) {
        const x = await once(zone);
        r[k].running.push(x.running);
        r[k].booted.push(x.booted);
        r[k].net.push(x.net);
        if (i === 0) lines += `    ${k}: ${x.line}\n`;
      }
    }
    const ratio = (a: number[], b: number[]) => (stats(a).median / stats(b).median).toFixed(2);
    process.stdout.write(
      `\ntiny-linux on one lab node (QEMU TCG), ${ROUNDS} rounds, median (min, max):\n` +
        `  running  networked ${fmt(r.net.running)}\n  running  plain     ${fmt(r.plain.running)}\n  running  ratio     ${ratio(r.net.running, r.plain.running)}\n` +
        `  booted   networked ${fmt(r.net.booted)}\n  booted   plain     ${fmt(r.plain.booted)}\n  booted   ratio     ${ratio(r.net.booted, r.plain.booted)}\n` +
        `  NET line networked ${fmt(r.net.net)}   (DHCP lease included)\n  NET line plain     ${fmt(r.plain.net)}   (no interface: at once)\n${lines}`,
    );
  } finally {
    if (left.length) await ec2?.send(new TerminateInstancesCommand({ InstanceIds: left })).catch(() => undefined);
    for (const d of daemons.reverse()) await d.close().catch(() => undefined);
    await bus?.close();
    await cloud?.close();
    await nats.dispose();
  }
});

it(`a security-group rule change on ${GUESTS} running interfaces (agent apply: rule sets)`, async () => {
  const node = lab!.nodes[0]!;
  const zone = `bf-${tag}`;
  const sgA = 'sg-0000000a';
  const ids = Array.from({ length: GUESTS }, (_, i) => `i-${tag}${(i + 1).toString(16).padStart(11, '0')}`);
  const state = (version: number, allowB: boolean): ZoneNetworkState => ({
    zone,
    version,
    subnet: '10.55.0.0/24',
    dnsSuffix: 'bench.compute.internal',
    nodes: [{ node: 'b1', address: '10.55.0.2' }],
    interfaces: ids.map((instanceId, i) => ({ instanceId, node: 'b1', mac: `02:00:00:55:00:${(i + 16).toString(16).padStart(2, '0')}`, privateIp: `10.55.0.${i + 10}`, groupIds: [sgA] })),
    groups: [
      {
        groupId: sgA,
        name: 'a',
        ingress: [
          { protocol: 'tcp', fromPort: 22, toPort: 22, cidrs: ['0.0.0.0/0'], groupIds: [] },
          ...(allowB ? [{ protocol: 'tcp' as const, fromPort: 8080, toPort: 8080, cidrs: ['198.51.100.0/24'], groupIds: [] }] : []),
        ],
        egress: [{ protocol: 'all', fromPort: -1, toPort: -1, cidrs: ['0.0.0.0/0'], groupIds: [] }],
      },
    ],
    generatedAt: new Date().toISOString(),
  });
  const conn = new NodeLibvirt({ uri: 'qemu:///system', socketPath: node.libvirtSocket });
  await conn.start();
  const agent = new NetworkAgent({
    zone,
    config: { node: 'b1', bridge: 'koala-bb0', metadataPort: 8775 },
    enabled: true,
    host: new ExecHostNetCommands({ netns: node.netns }),
    libvirt: new LibvirtNetworkPort(conn),
    fetchState: async () => state(1, true),
  });
  const lv = await conn.get();
  const doms: Domain[] = [];
  try {
    await agent.apply(state(1, true));
    const t0 = performance.now();
    const start = async (i: number, id: string) => {
      const xml = buildDomainXml({
        name: `bench-${id}`,
        type: 'qemu',
        memoryMiB: 32,
        vcpus: 1,
        boot: { kind: 'kernel', kernel: join(IMAGE_DIR, 'vmlinuz'), initrd: join(IMAGE_DIR, 'initramfs.img'), cmdline: 'console=ttyS0' },
        disks: [],
        interfaces: [
          {
            type: 'network',
            source: `koala-${zone}`,
            mac: `02:00:00:55:00:${(i + 16).toString(16).padStart(2, '0')}`,
            targetDev: `kv0200005500${(i + 16).toString(16).padStart(2, '0')}`,
          },
        ],
      });
      doms.push(await lv.createDomainXml(xml, 1 /* VIR_DOMAIN_START_PAUSED */));
    };
    // Ten at a time: QEMU start-up dominates, libvirtd takes them in parallel.
    for (let k = 0; k < ids.length; k += 10) await Promise.all(ids.slice(k, k + 10).map((id, j) => start(k + j, id)));
    const startMs = performance.now() - t0;
    // The rule in the kernel: its set entry; every tap's chains match the set.
    const tapRules = async () => (await node.run(['ipset', 'save', 'koala-sg-0000000a-pi'])).split('\n').filter((l) => l.endsWith(',tcp:8080')).length;
    const setMatches = (await node.run(['iptables-save', '-t', 'mangle'])).split('\n').filter((l) => l.includes('--match-set koala-sg-0000000a-pi ')).length;
    expect(setMatches).toBeGreaterThanOrEqual(GUESTS);
    const withRule = await tapRules();
    const times: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Revoke (the rule leaves the set all 50 guests' rules match), then authorize again: each timed.
      for (const allow of [false, true]) {
        const t = performance.now();
        const changes = await agent.apply(state(2 + r * 2 + (allow ? 1 : 0), allow));
        times.push(performance.now() - t);
        expect(changes).toEqual([expect.stringMatching(/^ipset koala-sg-0000000a-pi = /)]);
      }
    }
    await agent.apply(state(100, false));
    const without = await tapRules();
    const noop = performance.now();
    expect(await agent.apply(state(101, false))).toEqual([]);
    const noopMs = performance.now() - noop;
    process.stdout.write(
      `\nsecurity-group rule change on ${GUESTS} running (paused) guests' interfaces on one lab node:\n` +
        `  start of ${GUESTS} paused domains on their taps: ${startMs.toFixed(0)} ms\n` +
        `  agent apply of a rule change (revoke or authorize; one set rewritten, no rule): ${fmt(times)}\n` +
        `  the rule's set entries: ${withRule} with the rule, ${without} without; iptables rules matching the set: ${setMatches}\n` +
        `  re-apply of an applied state (reads only): ${noopMs.toFixed(0)} ms\n`,
    );
    expect(without).toBeLessThan(withRule);
  } finally {
    for (const d of doms) await lv.destroyDomain(d).catch(() => undefined);
    await agent.apply({ ...state(1000, false), interfaces: [] }).catch(() => undefined);
    await agent.stop();
    await conn.close();
  }
});

it("the NC's share of a networked launch: prepare() (own entries) vs a whole apply", async () => {
  const node = lab!.nodes[0]!;
  const zone = `bl-${tag}`;
  const sg = 'sg-0000000c';
  const iface = (i: number) => ({
    instanceId: `i-${tag}${(0x100 + i).toString(16).padStart(11, '0')}`,
    node: 'b1',
    mac: `02:00:00:56:01:${(i + 16).toString(16).padStart(2, '0')}`,
    privateIp: `10.56.1.${i + 10}`,
    publicIp: `198.51.100.${i + 10}`,
    groupIds: [sg],
  });
  const state = (version: number, n: number): ZoneNetworkState => ({
    zone,
    version,
    subnet: '10.56.1.0/24',
    dnsSuffix: 'bench.compute.internal',
    nodes: [{ node: 'b1', address: '10.56.1.2' }],
    interfaces: Array.from({ length: n }, (_, i) => iface(i)),
    groups: [
      {
        groupId: sg,
        name: 'default',
        ingress: [
          { protocol: 'all', fromPort: -1, toPort: -1, cidrs: [], groupIds: [sg] },
          { protocol: 'tcp', fromPort: 22, toPort: 22, cidrs: ['0.0.0.0/0'], groupIds: [] },
        ],
        egress: [{ protocol: 'all', fromPort: -1, toPort: -1, cidrs: ['0.0.0.0/0'], groupIds: [] }],
      },
    ],
    generatedAt: new Date().toISOString(),
  });
  const conn = new NodeLibvirt({ uri: 'qemu:///system', socketPath: node.libvirtSocket });
  await conn.start();
  const base = 10;
  let served = state(1, base);
  const agent = new NetworkAgent({
    zone,
    config: { node: 'b1', bridge: 'koala-bl0', metadataPort: 8775 },
    enabled: true,
    host: new ExecHostNetCommands({ netns: node.netns }),
    libvirt: new LibvirtNetworkPort(conn),
    fetchState: async () => served,
  });
  try {
    agent.receive(served);
    await agent.kick();
    const own: number[] = [];
    const whole: number[] = [];
    for (let r = 0; r < Math.max(ROUNDS, 3); r++) {
      const n = base + r * 2;
      // prepare(): the state does not know the instance yet (as at RunInstances)
      const i = iface(n);
      const t = performance.now();
      await agent.prepare({
        instanceId: i.instanceId,
        network: { mac: i.mac, privateIp: i.privateIp, publicIp: i.publicIp, subnet: '10.56.1.0/24', privateDnsName: 'x', groups: [{ groupId: sg, name: 'default' }] },
      } as unknown as InstanceSpec);
      own.push(performance.now() - t);
      // a whole apply of a state with one more instance (the old launch path's pass)
      served = state(10 + r * 2, n + 2);
      const t2 = performance.now();
      expect(await agent.apply(served)).toEqual(expect.arrayContaining([expect.stringMatching(/^mangle chains /), expect.stringMatching(/^ebtables nat chains /)]));
      whole.push(performance.now() - t2);
      agent.receive(served);
      await agent.kick();
    }
    process.stdout.write(
      `\nthe NC's share of a networked launch (one lab node, ${base}+ instances in the zone):\n  prepare() on an applied state (own entries only): ${fmt(own)}\n  a whole apply adding one instance:                 ${fmt(whole)}\n`,
    );
  } finally {
    await agent.apply({ ...state(1000, 0) }).catch(() => undefined);
    await agent.stop();
    await conn.close();
  }
});
