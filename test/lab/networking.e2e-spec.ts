// Guest networking end to end (Koala issue 9): a real CLC (own PostgreSQL database, own NATS
// server), the zone's CC and two NCs on two lab nodes (test/support/lab.ts: a network namespace
// with its own libvirtd each, one L2 segment), three tiny-linux guests under QEMU, driven with
// @aws-sdk/client-ec2. The guests act through `#!` user-data scripts that loop and print markers
// on their consoles (GetConsoleOutput); no ssh.
//   S (group A, httpd :8080)       A: tcp 8080 from members of B
//   B (group B, httpd :8080 :8081) B: tcp 8080-8081 from anywhere; probes S:8080
//   N (group C, httpd :8080)       C: tcp 8080 from anywhere; probes S:8080, B:8080, B:8081
// S also probes the elastic IP (hairpin). Checked: DHCP addresses = privateIpAddress; the
// metadata service (v1, v2 token through a raw PUT, own data only); security groups across
// nodes, a revoke closing a running connection path within seconds, egress rules; an elastic IP
// moved between instances; an NC restart and a libvirtd restart rebuilding exactly the same
// host state; terminate leaving no trace on the nodes.
import { jest } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFileSync } from '@swc/core';
import type { INestApplicationContext } from '@nestjs/common';
import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeInstancesCommand,
  GetConsoleOutputCommand,
  ImportKeyPairCommand,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilInstanceTerminated,
  type EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { listDomains } from '@koala/contracts';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { runAdminCommand } from '../../apps/cloud-controller/src/admin/admin-commands.js';
import { clusterModule } from '../../apps/cluster-controller/src/cluster.module.js';
import { nodeModule } from '../../apps/node-controller/src/node.module.js';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { NODE_NETNS_SCRIPT, startLab, type Lab, type LabNode } from '../support/lab.js';
import { TestNatsServer } from '../support/nats-server.js';
import { until } from '../support/wait.js';

jest.setTimeout(900_000);

/** Addresses the node's dnsmasq has leased (libvirt's lease file of the bridge, in the node's /var/lib/libvirt). */
function leasedIps(node: LabNode): string[] {
  try {
    return (JSON.parse(readFileSync(join(node.stateDir, 'lib/dnsmasq/koala-br0.status'), 'utf8')) as { 'ip-address'?: string }[]).map((l) => l['ip-address'] ?? '');
  } catch {
    return [];
  }
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE_DIR = join(tmpdir(), 'koala-test-images', 'tiny-linux');
const tag = randomBytes(3).toString('hex');
const ZONE = `net-${tag}`;
const SUBNET = '10.77.0.0/24';
const PUBLIC = '203.0.113.0/24';
/** An OpenSSH ed25519 public key line: "ssh-ed25519" then base64(string type, string key). */
const KEY = (() => {
  const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]).toString('base64')} koala-${tag}`;
})();

interface Daemon {
  app: INestApplicationContext;
  config: KoalaConfig;
}

const run = (cmd: string, args: string[], opts: { timeoutMs?: number } = {}) =>
  new Promise<string>((res, rej) =>
    execFile(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? rej(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : res(stdout),
    ),
  );

/** The user-data prelude of every guest: its own metadata, then an httpd serving its id. */
const prelude = (ports: number[]) => `#!/bin/sh
M=http://169.254.169.254/latest
n=0
until timeout 5 wget -q -O /dev/null $M/meta-data/instance-id; do n=$((n + 1)); [ $n -ge 60 ] && break; sleep 1; done
ID=$(timeout 5 wget -q -O - $M/meta-data/instance-id)
echo "MD-ID $ID"
mkdir -p /tmp/www && echo "PAGE $ID" >/tmp/www/index.html
${ports.map((p) => `httpd -p ${p} -h /tmp/www`).join('\n')}
probe() { # NAME URL
  out=$(timeout 3 wget -q -O - "$2" 2>/dev/null) && echo "PROBE $1 ok $out" || echo "PROBE $1 fail"
}
`;

/** S: the whole metadata check (v1, v2 with a token from a raw PUT, own data only), then probes the elastic IP. */
const scriptS = (eip: string) =>
  prelude([8080]) +
  `echo "MD-KEY $(timeout 5 wget -q -O - $M/meta-data/public-keys/0/openssh-key)"
echo "MD-PUBIP $(timeout 5 wget -q -O - $M/meta-data/public-ipv4)"
echo "MD-UD $(timeout 5 wget -q -O - $M/user-data | md5sum | cut -d' ' -f1)"
echo "MD-SPOOF $(timeout 5 wget -q -O - --header 'X-Forwarded-For: 10.77.0.200' $M/meta-data/instance-id)"
# busybox wget cannot PUT: the token request goes out raw (stdin held open: nc half-closes on EOF).
T=$( (printf 'PUT /latest/api/token HTTP/1.0\\r\\nHost: 169.254.169.254\\r\\nX-aws-ec2-metadata-token-ttl-seconds: 120\\r\\n\\r\\n'; sleep 3) | timeout 8 nc 169.254.169.254 80 | tr -d '\\r' | tail -n 1)
echo "MD-TOKEN-LEN \${#T}"
echo "MD2-ID $(timeout 5 wget -q -O - --header "X-aws-ec2-metadata-token: $T" $M/meta-data/instance-id)"
timeout 5 wget -q -O - --header "X-aws-ec2-metadata-token: x$T" $M/meta-data/instance-id >/dev/null 2>&1; echo "MD2-BAD rc=$?"
echo MD-DONE
while true; do probe eip http://${eip}:8080/; sleep 2; done
`;

const scriptB = (sIp: string) => prelude([8080, 8081]) + `while true; do probe s http://${sIp}:8080/; sleep 2; done\n`;
const scriptN = (sIp: string, bIp: string) => prelude([8080]) + `while true; do probe s http://${sIp}:8080/; probe b80 http://${bIp}:8080/; probe b81 http://${bIp}:8081/; sleep 2; done\n`;

/** Host state of a node, in a comparable form (counters removed). */
async function snapshot(node: LabNode, zone: string): Promise<Record<string, string>> {
  const strip = (s: string) =>
    s
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/g, '[]'))
      .join('\n');
  const filters = (await run('virsh', ['-q', '-c', node.libvirtUri, 'nwfilter-list']))
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[1] ?? '')
    .filter((n) => n.startsWith('koala-'))
    .sort();
  const filterXml: string[] = [];
  for (const f of filters) filterXml.push((await run('virsh', ['-q', '-c', node.libvirtUri, 'nwfilter-dumpxml', f])).replace(/<uuid>[^<]*<\/uuid>/, ''));
  return {
    nat: strip(await node.run(['iptables-save', '-t', 'nat'])),
    filter: strip(await node.run(['iptables-save', '-t', 'filter'])),
    mangle: strip(await node.run(['iptables-save', '-t', 'mangle'])),
    ebtables: strip(await node.run(['ebtables-save', '-t', 'nat'])),
    ipset: (await node.run(['ipset', 'save']))
      .split('\n')
      .filter((l) => l.includes('koala-'))
      .sort()
      .join('\n'),
    network: await run('virsh', ['-q', '-c', node.libvirtUri, 'net-dumpxml', `koala-${zone}`]),
    filters: filters.join('\n'),
    filterXml: filterXml.join('\n'),
  };
}

describe('guest networking end to end (CLC + CC + two NCs on lab nodes, QEMU guests)', () => {
  let nats: TestNatsServer;
  let cloud: TestCloud;
  let ec2: EC2Client;
  let bus: NatsBus;
  let lab: Lab;
  let work = '';
  let relayEntry = '';
  const homes: string[] = [];
  const daemons: Daemon[] = [];
  const ncs = new Map<string, Daemon>();
  const launched: string[] = [];

  function env(extra: Record<string, string>): KoalaConfig {
    const home = mkdtempSync(join(tmpdir(), 'koala-net-'));
    chmodSync(home, 0o755); // QEMU runs as libvirt-qemu and must reach $KOALA_HOME/instances
    homes.push(home);
    return loadConfig({
      KOALA_HOME: home,
      KOALA_NATS_URL: nats.url,
      KOALA_ZONE: ZONE,
      KOALA_LOG_LEVEL: process.env.KOALA_TEST_LOG_LEVEL ?? 'warn',
      KOALA_HEARTBEAT_MS: '500',
      KOALA_NODE_TIMEOUT_MS: '5000',
      ...extra,
    });
  }

  async function startNc(node: LabNode, reuse?: KoalaConfig): Promise<Daemon> {
    const config =
      reuse ??
      env({
        KOALA_NODE_NAME: `${ZONE}-${node.name}`,
        KOALA_LIBVIRT_URI: 'qemu:///system',
        KOALA_LIBVIRT_SOCKET: node.libvirtSocket,
        KOALA_NODE_NETNS: node.netns,
        KOALA_NODE_UPLINK: node.uplink!,
        KOALA_IMAGE_CACHE_POOL: `koala-img-${tag}-${node.name}`,
        KOALA_NC_INSTANCES_POOL: `koala-inst-${tag}-${node.name}`,
        KOALA_NC_STOP_TIMEOUT_MS: '20000',
      });
    const { app } = await startDaemon('node-controller', (c) => nodeModule(c, { relayEntry }), { zoned: true, config });
    const d = { app, config };
    daemons.push(d);
    ncs.set(node.name, d);
    return d;
  }

  async function stopDaemon(d: Daemon) {
    await d.app.close();
    daemons.splice(daemons.indexOf(d), 1);
  }

  async function consoleText(id: string): Promise<string> {
    const r = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: true }));
    return r.Output ? Buffer.from(r.Output, 'base64').toString('utf8').replace(/\r/g, '') : '';
  }

  async function describe1(id: string): Promise<Instance> {
    return (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
  }

  async function launch(groupId: string, userData: string): Promise<Instance> {
    const r = await ec2.send(
      new RunInstancesCommand({
        ImageId: imageId,
        MinCount: 1,
        MaxCount: 1,
        InstanceType: 'm1.small',
        KeyName: `k-${tag}`,
        SecurityGroupIds: [groupId],
        Placement: { AvailabilityZone: ZONE },
        UserData: Buffer.from(userData).toString('base64'),
      }),
    );
    const i = r.Instances![0]!;
    launched.push(i.InstanceId!);
    return i;
  }

  /** The node (lab name) of each instance, from the CC's domain listing. */
  async function placement(ids: string[]): Promise<Record<string, string>> {
    return until(
      async () => {
        const out: Record<string, string> = {};
        const { nodes } = await bus.request(listDomains(ZONE), {}, { timeoutMs: 3000 });
        for (const n of nodes) for (const d of n.domains) if (d.instanceId && ids.includes(d.instanceId)) out[d.instanceId] = n.node.slice(`${ZONE}-`.length);
        return Object.keys(out).length === ids.length && out;
      },
      60_000,
      `placement of ${ids.join(',')}`,
      500,
    );
  }

  /** Results of probe `name` in order (the console's latest 64 KiB). */
  const probes = (text: string, name: string) => [...text.matchAll(new RegExp(`^PROBE ${name} (ok|fail)(?: (.*))?$`, 'gm'))].map((m) => (m[1] === 'ok' ? `ok ${m[2] ?? ''}`.trim() : 'fail'));
  /** Waits until the last two results of a probe are `want` (two: one may have started before the change). */
  async function probeIs(id: string, name: string, want: string, ms = 60_000): Promise<number> {
    const t0 = Date.now();
    let last: string[] = [];
    await until(
      async () => {
        last = probes(await consoleText(id), name).slice(-2);
        return last.length === 2 && last.every((r) => r === want);
      },
      ms,
      `probe ${name} of ${id} = ${want}`,
      500,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}; last results: ${JSON.stringify(last)}\n${await diagnostics()}`);
    });
    return Date.now() - t0;
  }

  let imageId = '';

  /** The nodes' filter tables, sets and Koala filters, for a failure message. */
  async function diagnostics(): Promise<string> {
    const out: string[] = [];
    for (const n of lab.nodes) {
      const snap = await snapshot(n, ZONE).catch((e: Error) => ({ error: e.message }));
      out.push(`=== ${n.name}`, ...Object.entries(snap).map(([k, v]) => `--- ${k}\n${v}`));
    }
    return out.join('\n');
  }

  beforeAll(async () => {
    execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), IMAGE_DIR], { stdio: 'ignore', timeout: 600_000 });
    work = mkdtempSync(join(tmpdir(), 'koala-net-work-'));
    // The metadata relay as its own process: relay-main.ts compiled alone (it imports only node:*).
    relayEntry = join(work, 'relay-main.mjs');
    const { code } = transformFileSync(join(ROOT, 'apps/node-controller/src/metadata/relay-main.ts'), { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } });
    writeFileSync(relayEntry, code);
    chmodSync(work, 0o755);

    lab = await startLab({ nodes: ['n1', 'n2'], segment: true });
    nats = await TestNatsServer.start();
    cloud = await startCloud({
      natsUrl: nats.url,
      env: { KOALA_ZONE_SUBNETS: `${ZONE}=${SUBNET}`, KOALA_PUBLIC_IP_RANGE: PUBLIC, KOALA_NETWORK_REPUBLISH_MS: '5000', KOALA_RECONCILE_INTERVAL_MS: '2000', KOALA_RECONCILE_GRACE_MS: '60000' },
    });
    ec2 = cloud.ec2();
    bus = await NatsBus.connect({ url: nats.url, name: 'net-e2e-probe' });
    let out = '';
    let err = '';
    const code2 = await runAdminCommand(
      cloud.config,
      ['image', 'import', '--name', `tiny-linux-${tag}`, '--public', '--kernel', join(IMAGE_DIR, 'vmlinuz'), '--ramdisk', join(IMAGE_DIR, 'initramfs.img'), '--root', join(IMAGE_DIR, 'rootfs.img')],
      { out: (s) => (out += s), err: (s) => (err += s) },
    );
    if (code2 !== 0) throw new Error(`image import failed: ${err}`);
    imageId = out.match(/emi-[0-9a-f]{17}/)![0];

    const { app } = await startDaemon('cluster-controller', clusterModule, { zoned: true, config: env({ KOALA_SCHEDULER_POLICY: 'ROUNDROBIN' }) });
    daemons.push({ app, config: env({}) });
    for (const n of lab.nodes) await startNc(n);
  }, 900_000);

  afterAll(async () => {
    if (launched.length && ec2) {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: launched })).catch(() => undefined);
      await waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 120, minDelay: 1, maxDelay: 2 }, { InstanceIds: launched }).catch(() => undefined);
    }
    for (const d of [...daemons].reverse()) await d.app.close().catch(() => undefined);
    await bus?.close();
    await cloud?.close();
    await nats?.dispose();
    await lab?.stop();
    for (const h of [...homes, work]) if (h) rmSync(h, { recursive: true, force: true });
  });

  it('networks three guests on two nodes: DHCP, metadata, security groups, elastic IP, egress, NC and libvirtd restarts, terminate', async () => {
    // --- groups, key, elastic address --------------------------------------------------------
    const group = async (name: string) => (await ec2.send(new CreateSecurityGroupCommand({ GroupName: `${name}-${tag}`, Description: name }))).GroupId!;
    const [gA, gB, gC] = [await group('a'), await group('b'), await group('c')];
    await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: gA, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, UserIdGroupPairs: [{ GroupId: gB }] }] }));
    await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: gB, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 8080, ToPort: 8081, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] }));
    await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: gC, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] }));
    await ec2.send(new ImportKeyPairCommand({ KeyName: `k-${tag}`, PublicKeyMaterial: Buffer.from(KEY) }));
    const eip = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
    expect(eip.PublicIp).toMatch(/^203\.0\.113\./);

    // --- three guests; ROUNDROBIN spreads them over the two nodes ------------------------------
    const userS = scriptS(eip.PublicIp!);
    const s = await launch(gA, userS);
    const b = await launch(gB, scriptB(s.PrivateIpAddress!));
    const nn = await launch(gC, scriptN(s.PrivateIpAddress!, b.PrivateIpAddress!));
    const ids = [s, b, nn].map((i) => i.InstanceId!);
    for (const i of [s, b, nn]) expect(i.PrivateIpAddress).toMatch(/^10\.77\.0\.\d+$/);
    await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 300, minDelay: 1, maxDelay: 3 }, { InstanceIds: ids });
    const where = await placement(ids);
    expect(where[s.InstanceId!]).not.toBe(where[b.InstanceId!]); // B reaches S across the segment
    const nodeOfS = lab.nodes.find((n) => n.name === where[s.InstanceId!])!;

    // --- DHCP: each guest's address is the one DescribeInstances shows -------------------------
    const described = new Map<string, Instance>();
    for (const id of ids) {
      const d = await describe1(id);
      described.set(id, d);
      const text = await until(
        async () => {
          const t = await consoleText(id);
          return /^NET: /m.test(t) && t;
        },
        240_000,
        `NET line of ${id}`,
        1000,
      );
      expect(text).toContain(`NET: eth0 ${d.PrivateIpAddress}/24 ${d.NetworkInterfaces![0]!.MacAddress}\n`);
    }

    // --- metadata: each guest sees its own data only -------------------------------------------
    for (const id of ids) {
      const text = await until(
        async () => {
          const t = await consoleText(id);
          return /^MD-ID /m.test(t) && t;
        },
        120_000,
        `MD-ID of ${id}`,
        1000,
      );
      expect(text).toContain(`MD-ID ${id}\n`);
    }
    const sText = await until(
      async () => {
        const t = await consoleText(s.InstanceId!);
        return /^MD-DONE$/m.test(t) && t;
      },
      90_000,
      'the metadata checks of S',
      1000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${(await consoleText(s.InstanceId!)).slice(-3000)}`);
    });
    expect(sText).toContain(`MD-KEY ${KEY}\n`);
    expect(sText).toContain(`MD-PUBIP ${described.get(s.InstanceId!)!.PublicIpAddress}\n`);
    expect(sText).toContain(`MD-UD ${createHash('md5').update(userS).digest('hex')}\n`);
    expect(sText).toContain(`MD-SPOOF ${s.InstanceId}\n`); // a claimed address changes nothing
    expect(sText).toMatch(/^MD-TOKEN-LEN [1-9]\d+$/m);
    expect(sText).toContain(`MD2-ID ${s.InstanceId}\n`);
    expect(sText).toMatch(/^MD2-BAD rc=[1-9]\d*$/m);

    // --- security groups across nodes ----------------------------------------------------------
    await probeIs(b.InstanceId!, 's', `ok PAGE ${s.InstanceId}`, 120_000); // B (member of B) on the other node
    await probeIs(nn.InstanceId!, 's', 'fail'); // N: not a member
    await probeIs(nn.InstanceId!, 'b80', `ok PAGE ${b.InstanceId}`);
    await probeIs(nn.InstanceId!, 'b81', `ok PAGE ${b.InstanceId}`);

    // --- the elastic IP: on B, then moved to N; S reaches it by the public address (hairpin) ---
    await ec2.send(new AssociateAddressCommand({ AllocationId: eip.AllocationId, InstanceId: b.InstanceId }));
    await probeIs(s.InstanceId!, 'eip', `ok PAGE ${b.InstanceId}`);
    await ec2.send(new AssociateAddressCommand({ AllocationId: eip.AllocationId, InstanceId: nn.InstanceId, AllowReassociation: true }));
    const eipMoveMs = await probeIs(s.InstanceId!, 'eip', `ok PAGE ${nn.InstanceId}`);

    // --- revoke: closes S to B on the running guests, no restart -------------------------------
    await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: gA, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, UserIdGroupPairs: [{ GroupId: gB }] }] }));
    const revokeMs = await probeIs(b.InstanceId!, 's', 'fail', 30_000);

    // --- egress: C may only reach B:8080 -------------------------------------------------------
    await ec2.send(new RevokeSecurityGroupEgressCommand({ GroupId: gC, IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] }));
    await ec2.send(new AuthorizeSecurityGroupEgressCommand({ GroupId: gC, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, IpRanges: [{ CidrIp: `${b.PrivateIpAddress}/32` }] }] }));
    await probeIs(nn.InstanceId!, 'b81', 'fail', 30_000);
    await probeIs(nn.InstanceId!, 'b80', `ok PAGE ${b.InstanceId}`);
    console.log(`networking e2e: elastic IP move seen by a guest in ${eipMoveMs} ms, revoke in ${revokeMs} ms (console polling included)`);

    // --- NC restart: the same host state, nothing added or removed -----------------------------
    const settle = async (what: string) => {
      // Two equal snapshots 3 s apart: the agents are done.
      let prev: Record<string, string> | undefined;
      await until(
        async () => {
          const now = await snapshot(nodeOfS, ZONE);
          const same = prev !== undefined && JSON.stringify(prev) === JSON.stringify(now);
          prev = now;
          return same;
        },
        60_000,
        `${what}: a settled host state`,
        3000,
      );
      return prev!;
    };
    const before = await settle('before the restarts');
    // No duplicates to begin with: each jump once, each rule of Koala's chains once.
    for (const chain of ['PREROUTING', 'POSTROUTING', 'OUTPUT']) expect(before.nat.split('\n').filter((l) => l === `-A ${chain} -j KOALA-${chain}`)).toHaveLength(1);
    const koalaNat = before.nat.split('\n').filter((l) => l.startsWith('-A KOALA-'));
    expect(new Set(koalaNat).size).toBe(koalaNat.length);
    // No nwfilter: each local guest's tap is named in Koala's chains (iptables and ebtables).
    expect(before.filters).toBe('');
    for (const id of ids.filter((i) => where[i] === nodeOfS.name)) {
      const tap = `kv${described.get(id)!.NetworkInterfaces![0]!.MacAddress!.replace(/:/g, '')}`;
      expect(before.mangle).toContain(`--physdev-in ${tap} `);
      expect(before.ebtables).toContain(`-i ${tap} `);
    }
    expect(before.network).toContain('dhcp-ignore=tag:!known');

    const nc = ncs.get(nodeOfS.name)!;
    await stopDaemon(nc);
    await startNc(nodeOfS, nc.config);
    await new Promise((r) => setTimeout(r, 5000));
    const afterNc = await settle('after the NC restart');
    expect(afterNc).toEqual(before);

    // --- a libvirtd restart (the node's daemon killed and started again) -----------------------
    const pid = readFileSync(join(nodeOfS.runDir, 'libvirtd.pid'), 'utf8').trim();
    process.kill(Number(pid), 'SIGKILL');
    await until(
      () => {
        try {
          process.kill(Number(pid), 0);
          return false;
        } catch {
          return true;
        }
      },
      10_000,
      'libvirtd gone',
      100,
    );
    await run(NODE_NETNS_SCRIPT, ['up', nodeOfS.netns, '--uplink-to', lab.segmentNs!], { timeoutMs: 120_000 });
    await new Promise((r) => setTimeout(r, 5000));
    const afterLibvirtd = await settle('after the libvirtd restart');
    expect(afterLibvirtd).toEqual(before);
    // The guests still work as configured.
    await probeIs(nn.InstanceId!, 'b80', `ok PAGE ${b.InstanceId}`);
    await probeIs(b.InstanceId!, 's', 'fail');

    // --- terminate: no trace of the instances on either node -----------------------------------
    // (their DHCP leases included: released at terminate, so the address can go to a new MAC)
    for (const id of ids) expect(leasedIps(lab.nodes.find((n) => n.name === where[id])!)).toContain(described.get(id)!.PrivateIpAddress);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    await waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 180, minDelay: 1, maxDelay: 2 }, { InstanceIds: ids });
    const addrs = [...described.values()]
      .flatMap((d) => [d.PrivateIpAddress!, d.PublicIpAddress!])
      .concat(eip.PublicIp!)
      .filter(Boolean);
    const taps = [...described.values()].map((d) => `kv${d.NetworkInterfaces![0]!.MacAddress!.replace(/:/g, '')}`);
    for (const node of lab.nodes) {
      await until(
        async () => {
          const snap = await snapshot(node, ZONE);
          const leftovers = [
            ...snap.filters.split('\n').filter((f) => f.startsWith('koala-i-')),
            ...leasedIps(node)
              .filter((ip) => addrs.includes(ip))
              .map((ip) => `lease ${ip}`),
            // every DHCP entry but the node's anchor (docs/NETWORKING.md)
            ...(snap.network.match(/<host [^>]*>/g) ?? []).filter((h) => !h.includes("name='koala-dhcp-anchor'")),
            ...snap.ipset.split('\n').filter((l) => l.startsWith('add ')),
            ...snap.nat.split('\n').filter((l) => addrs.some((a) => l.includes(`${a}/32`) || l.includes(`${a} `) || l.endsWith(a))),
            ...snap.mangle.split('\n').filter((l) => l.startsWith('-A KOALA-') && (addrs.some((a) => l.includes(`${a}/32`)) || taps.some((t) => l.includes(t)))),
            ...snap.ebtables.split('\n').filter((l) => taps.some((t) => l.includes(t))),
          ];
          return leftovers.length === 0 || (console.log(`${node.name} still has: ${leftovers.join(' | ')}`), false);
        },
        60_000,
        `no trace on ${node.name}`,
        2000,
      );
    }
    launched.length = 0;
  });
});
