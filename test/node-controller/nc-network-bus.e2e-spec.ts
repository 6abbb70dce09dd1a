// The network agent's NATS side against the real NATS server: at start it asks the CLC's
// `clc.network-state` for the zone's state, then follows `koala.v1.zone.<zone>.network.state`
// (newest wins, older ignored), and the heartbeat reports the applied version. Host and libvirt
// are the in-memory fakes (the namespace and libvirt specs cover those).
import { randomBytes } from 'node:crypto';
import { networkState, Subjects, ZoneNetworkState, type NodeHeartbeat } from '@koala/contracts';
import { loadConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { HeartbeatService } from '../../apps/node-controller/src/heartbeat/heartbeat.service.js';
import { NetworkAgent } from '../../apps/node-controller/src/network/network-agent.js';
import { FakeHost, FakeNetworkLibvirt } from '../../apps/node-controller/src/network/network-fakes.js';
import { nodeA, sampleState } from '../../apps/node-controller/src/network/network-fixtures.js';
import { NetworkAgentService, networkingEnabled } from '../../apps/node-controller/src/network/network.providers.js';

const NATS = process.env.KOALA_NATS_URL ?? 'nats://127.0.0.1:4222';
const zone = `znet-${randomBytes(4).toString('hex')}`;
const until = async (what: string, probe: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const stateOf = (version: number) => ({ ...sampleState(version), zone });

describe('network agent on the bus', () => {
  let clc: NatsBus;
  let nc: NatsBus;
  let agent: NetworkAgent;
  let service: NetworkAgentService;
  const libvirt = new FakeNetworkLibvirt();
  const asked: string[] = [];

  beforeAll(async () => {
    clc = await NatsBus.connect({ url: NATS, name: 'net-test-clc' });
    nc = await NatsBus.connect({ url: NATS, name: 'net-test-nc' });
    clc.handle(networkState(), (req) => {
      asked.push(`${req.zone}/${req.node}`);
      return stateOf(3);
    });
    await clc.flush();
    agent = new NetworkAgent({
      zone,
      config: nodeA,
      enabled: true,
      host: new FakeHost(),
      libvirt,
      fetchState: () => nc.request(networkState(), { zone, node: nodeA.node }, { timeoutMs: 2000 }),
    });
    const config = loadConfig({ KOALA_ZONE: zone, KOALA_NODE_NAME: nodeA.node, KOALA_LIBVIRT_URI: 'qemu:///system', KOALA_NODE_UPLINK: 'seg0' });
    service = new NetworkAgentService(config, nc, agent);
    service.onModuleInit();
  });

  afterAll(async () => {
    await service.onApplicationShutdown();
    await nc.close();
    await clc.close();
  });

  it('asks for the state at start and applies it', async () => {
    await until('version 3', () => agent.current()?.version === 3);
    expect(asked).toEqual([`${zone}/node-a`]);
    expect(libvirt.networks.get(`koala-${zone}`)?.active).toBe(true);
  });

  it('follows published states: newer applied, older ignored', async () => {
    const seen: number[] = [];
    agent.onApplied((s) => seen.push(s.version));
    clc.publish(Subjects.zoneNetworkState(zone), ZoneNetworkState, stateOf(5));
    await until('version 5', () => agent.current()?.version === 5);
    const older = stateOf(4);
    older.interfaces = [];
    clc.publish(Subjects.zoneNetworkState(zone), ZoneNetworkState, older);
    const newer = stateOf(6);
    newer.interfaces = newer.interfaces.filter((i) => i.instanceId !== 'i-00000000000000a1');
    clc.publish(Subjects.zoneNetworkState(zone), ZoneNetworkState, newer);
    await until('version 6', () => agent.current()?.version === 6);
    expect(agent.current()!.interfaces.map((i) => i.instanceId)).not.toContain('i-00000000000000a1');
    expect(seen).not.toContain(4);
    expect(seen).toContain(6);
  });

  it('the heartbeat carries the applied version', async () => {
    const config = loadConfig({ KOALA_ZONE: zone, KOALA_NODE_NAME: nodeA.node });
    const probe = { describe: async () => ({ uri: 'qemu:///system', hypervisor: 'QEMU' }), total: async () => ({ cores: 2, memoryMiB: 2048, diskGiB: 10 }), domains: async () => [] };
    const status = { setDetails: () => undefined };
    const make = (view?: NetworkAgent) =>
      new HeartbeatService(config, nc, probe as never, { now: () => new Date() } as never, console as never, () => ({ cores: 0, memoryMiB: 0, diskGiB: 0 }), status as never, undefined, view);
    const hb: NodeHeartbeat = await make(agent).build();
    expect(hb.networkVersion).toBe(6);
    expect('networkVersion' in (await make().build())).toBe(false);
  });

  it('networking is on only with an uplink or a namespace, never on the test driver', () => {
    expect(networkingEnabled({ libvirtUri: 'qemu:///system', nodeNetns: undefined, nodeUplink: undefined })).toBe(false);
    expect(networkingEnabled({ libvirtUri: 'qemu:///system', nodeNetns: 'koala-n1', nodeUplink: undefined })).toBe(true);
    expect(networkingEnabled({ libvirtUri: 'qemu:///system', nodeNetns: undefined, nodeUplink: 'eth1' })).toBe(true);
    expect(networkingEnabled({ libvirtUri: 'test:///default', nodeNetns: 'koala-n1', nodeUplink: 'eth1' })).toBe(false);
  });
});
