// The network agent's libvirt port against the machine's libvirtd, with the planner's own XML:
// libvirt accepts the network the planner writes, and the facts read back match the plan (so a
// re-apply finds nothing to redefine). On qemu:///system a network is only defined and its
// persistent config updated (never started: no bridge in the machine's namespace); an older
// Koala's nwfilters are found and removed (no guest uses them, no firewall changes). Live
// DHCP updates run on the test driver, whose networks start without touching the host.
import { randomBytes } from 'node:crypto';
import type { Libvirt } from '@koala/libvirt';
import { NodeLibvirt } from '../../apps/node-controller/src/libvirt/node-libvirt.js';
import { LibvirtNetworkPort } from '../../apps/node-controller/src/network/libvirt-network-port.js';
import { nodeA, sampleState } from '../../apps/node-controller/src/network/network-fixtures.js';
import { planNetwork } from '../../apps/node-controller/src/network/network-plan.js';

const tag = randomBytes(4).toString('hex');
const SOCKET = '/var/run/libvirt/libvirt-sock';

/** The sample zone under a unique zone name and instance ids, on a unique bridge. */
function uniquePlan() {
  const s = sampleState();
  s.zone = `t${tag}`;
  s.interfaces = s.interfaces.map((i) => ({ ...i, instanceId: i.instanceId.replace(/^i-0{8}/, `i-${tag}`) }));
  return planNetwork(s, { ...nodeA, bridge: `kt${tag}` })!;
}

async function cleanup(lv: Libvirt) {
  for (const n of await lv.listAllNetworks().catch(() => [])) {
    if (!n.name.includes(tag)) continue;
    if (await lv.isNetworkActive(n).catch(() => false)) await lv.destroyNetwork(n).catch(() => undefined);
    await lv.undefineNetwork(n).catch(() => undefined);
  }
  for (const f of await lv.listAllNwFilters().catch(() => [])) if (f.name.includes(tag)) await lv.undefineNwFilter(f).catch(() => undefined);
}

describe('LibvirtNetworkPort on qemu:///system (define only)', () => {
  let conn: NodeLibvirt;
  let port: LibvirtNetworkPort;
  const plan = uniquePlan();

  beforeAll(async () => {
    conn = new NodeLibvirt({ uri: 'qemu:///system', socketPath: SOCKET });
    expect(await conn.start()).toBe(true);
    port = new LibvirtNetworkPort(conn);
  });
  afterAll(async () => {
    await conn.run(cleanup);
    await conn.close();
  });

  it('defines the planned network and reads back exactly the planned facts', async () => {
    expect(await port.getNetwork(plan.network.name)).toBeUndefined();
    await port.defineNetwork(plan.network.xml);
    const facts = await port.getNetwork(plan.network.name);
    expect(facts).toEqual({
      active: false,
      autostart: false,
      forwardMode: 'open',
      bridge: plan.network.bridge,
      address: '172.31.0.2',
      prefix: 20,
      domain: plan.network.domain,
      // a node's dnsmasq answers only its own guests on the shared segment
      dnsmasqOptions: ['dhcp-ignore=tag:!known'],
      hosts: plan.network.hosts,
    });
    // Redefined (the agent does when the node address or bridge changes): same object, new content.
    await port.defineNetwork(plan.network.xml.replace(/(address=['"])172\.31\.0\.2(['"])/, (_m, open: string, close: string) => `${open}172.31.0.5${close}`));
    expect((await port.getNetwork(plan.network.name))!.address).toBe('172.31.0.5');
    await port.defineNetwork(plan.network.xml);
    expect((await port.getNetwork(plan.network.name))!.address).toBe('172.31.0.2');
  });

  it('adds and removes DHCP hosts (persistent config of an inactive network); removing one twice is fine', async () => {
    const h = { mac: '02:00:00:00:00:a9', ip: '172.31.0.19', name: 'ip-172-31-0-19' };
    await port.addDhcpHost(plan.network.name, h);
    expect((await port.getNetwork(plan.network.name))!.hosts).toContainEqual(h);
    await port.removeDhcpHost(plan.network.name, h);
    expect((await port.getNetwork(plan.network.name))!.hosts).not.toContainEqual(h);
    await port.removeDhcpHost(plan.network.name, h);
    expect((await port.getNetwork(plan.network.name))!.hosts).toEqual(plan.network.hosts);
  });

  it("an older Koala's nwfilters: listed by prefix and undefined; undefining one twice is fine", async () => {
    const name = `koala-i-i-${tag}00000000a1`;
    await conn.run((lv) => lv.defineNwFilter(`<filter name='${name}' chain='root'><rule action='drop' direction='inout' priority='1000'><all/></rule></filter>`));
    expect(await port.listFilters('koala-i-')).toContain(name);
    await port.undefineFilter(name);
    await port.undefineFilter(name);
    expect((await port.listFilters('koala-i-')).filter((n) => n.includes(tag))).toEqual([]);
  });
});

describe('LibvirtNetworkPort on test:///default (started networks, live DHCP updates)', () => {
  let conn: NodeLibvirt;
  let port: LibvirtNetworkPort;
  const plan = uniquePlan();

  beforeAll(async () => {
    conn = new NodeLibvirt({ uri: 'test:///default', socketPath: SOCKET });
    expect(await conn.start()).toBe(true);
    port = new LibvirtNetworkPort(conn);
  });
  afterAll(async () => {
    await conn.run(cleanup);
    await conn.close();
  });

  it('starts the network with autostart; DHCP hosts change live and in the config', async () => {
    await port.defineNetwork(plan.network.xml);
    await port.startNetwork(plan.network.name);
    await port.startNetwork(plan.network.name); // already running: nothing
    expect(await port.getNetwork(plan.network.name)).toMatchObject({ active: true, autostart: true, hosts: plan.network.hosts });
    const h = { mac: '02:00:00:00:00:a9', ip: '172.31.0.19', name: 'ip-172-31-0-19' };
    await port.addDhcpHost(plan.network.name, h);
    expect((await port.getNetwork(plan.network.name))!.hosts).toContainEqual(h);
    const [anchor, first, ...rest] = plan.network.hosts;
    await port.removeDhcpHost(plan.network.name, first!);
    expect((await port.getNetwork(plan.network.name))!.hosts).toEqual([anchor, ...rest, h]);
    await port.stopNetwork(plan.network.name);
    await port.stopNetwork(plan.network.name);
    expect((await port.getNetwork(plan.network.name))!.active).toBe(false);
  });
});
