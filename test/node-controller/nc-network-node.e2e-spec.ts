// The node controller as in production (nodeModule) with guest networking on, against a lab node
// host (deploy/scripts/koala-node-netns.sh: libvirtd in a namespace): it asks a stand-in CLC for
// the zone's network state, applies it in the namespace, reports the applied version in its
// heartbeat, and launches a guest on a tap whose rules are in place before it runs (QEMU
// boots a blank disk: the guest never gets far, the network side is what is checked). Everything
// lives in namespaces this test creates and removes.
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { networkState, Subjects, ZoneNetworkState, type InstanceSpec } from '@koala/contracts';
import { NatsBus } from '@koala/messaging';
import { sampleState } from '../../apps/node-controller/src/network/network-fixtures.js';
import { TestNatsServer } from '../support/nats-server.js';
import { BlobServer, ZoneWatcher, ncConfig, newInstanceId, startNc } from './nc-harness.js';

jest.setTimeout(180_000);

const SCRIPT = fileURLToPath(new URL('../../deploy/scripts/koala-node-netns.sh', import.meta.url));
const tag = randomBytes(3).toString('hex');
const NODE = `knn${tag}`;
const SEG = `ksn${tag}`;
const zone = `znn-${tag}`;
const node = `node-nn-${tag}`;
const script = (...args: string[]) => execFileSync('bash', [SCRIPT, ...args], { encoding: 'utf8' });
const inNs = (...argv: string[]) => execFileSync('ip', ['netns', 'exec', NODE, ...argv], { encoding: 'utf8' });
const canRun = process.getuid?.() === 0 && existsSync(SCRIPT) && existsSync('/usr/sbin/libvirtd');
const maybe = canRun ? describe : describe.skip;

/** The sample zone as this node's: node-a renamed, in this test's zone. */
function zoneState(version: number): ZoneNetworkState {
  const s = sampleState(version);
  s.zone = zone;
  s.nodes = s.nodes.map((n) => (n.node === 'node-a' ? { ...n, node } : n));
  s.interfaces = s.interfaces.map((i) => (i.node === 'node-a' ? { ...i, node } : i));
  return s;
}

maybe('node controller with guest networking on a lab node host', () => {
  let nats: TestNatsServer;
  let blobs: BlobServer;
  let clc: NatsBus;
  let watcher: ZoneWatcher;
  let nc: Awaited<ReturnType<typeof startNc>>;
  let home: string;
  let current = zoneState(3);
  let facts: Record<string, string>;
  const hostsFile = () => {
    const f = join(facts.STATE_DIR!, 'lib', 'dnsmasq', `koala-${zone}.hostsfile`);
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  };

  beforeAll(async () => {
    facts = Object.fromEntries(
      script('up', NODE, '--no-iscsi', '--uplink-to', SEG)
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    nats = await TestNatsServer.start();
    blobs = await BlobServer.start();
    clc = await NatsBus.connect({ url: nats.url, name: 'clc-stand-in' });
    clc.handle(networkState(), (req) => {
      if (req.zone !== zone) throw Object.assign(new Error('unknown zone'), { code: 'InvalidParameterValue' });
      return current;
    });
    await clc.flush();
    home = mkdtempSync(join(tmpdir(), 'koala-nc-net-'));
    chmodSync(home, 0o755); // QEMU (libvirt-qemu) reaches the disks in here
    watcher = await ZoneWatcher.open(nats.url, zone, node);
    nc = await startNc(
      ncConfig({
        KOALA_HOME: home,
        KOALA_NATS_URL: nats.url,
        KOALA_ZONE: zone,
        KOALA_NODE_NAME: node,
        KOALA_LIBVIRT_URI: 'qemu:///system',
        KOALA_LIBVIRT_SOCKET: facts.LIBVIRT_SOCKET!,
        KOALA_NODE_NETNS: NODE,
        KOALA_NODE_UPLINK: facts.UPLINK!,
        KOALA_NC_STOP_TIMEOUT_MS: '1000',
      }),
    );
  });

  afterAll(async () => {
    await nc?.close();
    await watcher?.close();
    await clc?.close();
    await blobs?.close();
    await nats?.dispose();
    script('down', NODE);
    script('segment-down', SEG);
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('applies the state it asked for and reports its version; follows a published one', async () => {
    await watcher.heartbeat((h) => h.networkVersion === 3);
    expect(inNs('ip', '-o', '-4', 'addr', 'show', 'dev', 'koala-br0')).toContain('inet 172.31.0.2/20');
    expect(inNs('ip', '-o', 'link', 'show', 'dev', 'koala-up0')).toContain('master koala-br0');
    current = zoneState(4);
    current.interfaces = current.interfaces.filter((i) => i.instanceId !== 'i-00000000000000a1');
    clc.publish(Subjects.zoneNetworkState(zone), ZoneNetworkState, current);
    await watcher.heartbeat((h) => h.networkVersion === 4);
  });

  it('launches a networked guest on a tap its rules already name, and cleans up on terminate', async () => {
    const id = newInstanceId();
    const spec: InstanceSpec = {
      instanceId: id,
      reservationId: 'r-0123456789abcdef0',
      accountId: '111122223333',
      instanceType: 't1.micro',
      resources: { vcpus: 1, memoryMiB: 64, rootDiskGiB: 1, ephemeralGiB: 0 },
      image: { virtualizationType: 'hvm', root: blobs.add('emi-blank', Buffer.alloc(65536)) },
      hostname: 'net-host',
      availabilityZone: zone,
      launchIndex: 0,
      network: { mac: '02:00:00:00:00:c1', privateIp: '172.31.0.41', subnet: '172.31.0.0/20', privateDnsName: 'ip-172-31-0-41.x', groups: [{ groupId: 'sg-0000000a', name: 'default' }] },
    };
    await watcher.run(spec);
    await watcher.waitForStates(id, ['pending', 'running'], 120_000);
    // The domain's tap has the name Koala's chains hold for it: its groups' sets, its anti-spoofing.
    const tap = 'kv0200000000c1';
    expect(inNs('ip', '-o', 'link', 'show', 'dev', tap)).toContain('master koala-br0');
    const mangle = inNs('iptables-save', '-t', 'mangle');
    expect(mangle).toContain(`-A KOALA-BRIDGED-IN -m physdev --physdev-out ${tap} --physdev-is-bridged -m set --match-set koala-sg-0000000a-ai src -j RETURN`);
    expect(mangle).toContain(`-A KOALA-EGRESS -m physdev --physdev-in ${tap} -m set --match-set koala-sg-0000000a-ao dst -j RETURN`);
    expect(inNs('ebtables-save', '-t', 'nat')).toContain(`-A KOALA-L2-IN -p IPv4 -i ${tap} --ip-src 172.31.0.41 -j RETURN`);
    expect(inNs('iptables-save', '-t', 'filter')).not.toMatch(/vnet|kv02/); // no nwfilter rules
    expect(hostsFile()).toContain('02:00:00:00:00:c1,172.31.0.41');
    await watcher.action(id, 'terminate');
    await watcher.waitForStates(id, ['shutting-down', 'terminated'], 60_000);
    expect(hostsFile()).not.toContain('172.31.0.41');
    expect(inNs('iptables-save', '-t', 'mangle')).not.toContain(tap);
    expect(inNs('ebtables-save', '-t', 'nat')).not.toContain(tap);
    const lv = await import('@koala/libvirt');
    const conn = await lv.Libvirt.connect({ uri: 'qemu:///system', socketPath: facts.LIBVIRT_SOCKET! });
    try {
      expect((await conn.listAllNwFilters()).map((f) => f.name).filter((n) => n.startsWith('koala-'))).toEqual([]);
    } finally {
      await conn.close();
    }
  });
});
