// Integration tests of the network and nwfilter parts of @koala/libvirt against the machine's
// libvirtd. Networks are started only on the test driver (test:///default); on qemu:///system a
// network is only defined, updated in its persistent config and undefined (never started: that
// would make a bridge in the machine's namespace). Filters are defined, read and undefined there
// (defining a filter no guest uses changes no firewall).
import { randomBytes, randomUUID } from 'node:crypto';
import {
  Libvirt,
  LibvirtError,
  VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER,
  VIR_ERR_NO_NETWORK,
  VIR_ERR_NO_NWFILTER,
  VIR_NETWORK_SECTION_IP_DHCP_HOST,
  VIR_NETWORK_UPDATE_AFFECT_CONFIG,
  VIR_NETWORK_UPDATE_AFFECT_LIVE,
  VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
  VIR_NETWORK_UPDATE_COMMAND_DELETE,
  VIR_NETWORK_XML_INACTIVE,
  buildDhcpHostXml,
  buildDomainXml,
  buildNetworkXml,
  buildNwFilterXml,
  parseDomainXml,
  parseNetworkXml,
  parseNwFilterXml,
  type Network,
} from '@koala/libvirt';

const suffix = randomUUID().slice(0, 8);
const name = (what: string) => `koala-test-${what}-${suffix}`;
const bridge = () => `kt${randomBytes(5).toString('hex')}`; // 12 characters, unique

async function expectCode(p: Promise<unknown>, code: number): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LibvirtError);
  expect((err as LibvirtError).code).toBe(code);
}

async function cleanNetworks(lv: Libvirt): Promise<void> {
  for (const n of await lv.listAllNetworks().catch(() => [])) {
    if (!n.name.startsWith(`koala-test-`) || !n.name.endsWith(suffix)) continue;
    if (await lv.isNetworkActive(n).catch(() => false)) await lv.destroyNetwork(n).catch(() => undefined);
    await lv.undefineNetwork(n).catch(() => undefined);
  }
}

const hostA = { mac: '02:00:00:00:00:0a', ip: '10.99.0.10', name: 'i-000000000a' };
const hostB = { mac: '02:00:00:00:00:0b', ip: '10.99.0.11' };

describe('networks on test:///default', () => {
  let lv: Libvirt;
  beforeAll(async () => {
    lv = await Libvirt.connect({ uri: 'test:///default' });
  });
  afterAll(async () => {
    await cleanNetworks(lv);
    await lv.close();
  });

  it('defines, starts, updates DHCP hosts live, reads, stops and undefines a network, with events', async () => {
    const events = await lv.subscribeNetworkLifecycle();
    const netName = name('net');
    const uuid = randomUUID();
    const net = await lv.defineNetwork(
      buildNetworkXml({ name: netName, uuid, bridge: { name: bridge(), stp: false, delay: 0 }, forward: { mode: 'open' }, ip: { address: '10.99.0.1', prefix: 24, dhcpHosts: [hostA] } }),
    );
    expect(net).toEqual({ name: netName, uuid });
    expect(await lv.lookupNetworkByName(netName)).toEqual(net);
    expect((await lv.listAllNetworks()).map((n) => n.name)).toContain(netName);
    expect(await lv.isNetworkActive(net)).toBe(false);
    await lv.createNetwork(net);
    expect(await lv.isNetworkActive(net)).toBe(true);

    let parsed = parseNetworkXml(await lv.getNetworkXml(net));
    expect(parsed).toMatchObject({ name: netName, uuid, forward: { mode: 'open' }, ip: { address: '10.99.0.1', prefix: 24, dhcpHosts: [hostA] } });

    const both = VIR_NETWORK_UPDATE_AFFECT_LIVE | VIR_NETWORK_UPDATE_AFFECT_CONFIG;
    await lv.updateNetwork(net, VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, buildDhcpHostXml(hostB), both);
    parsed = parseNetworkXml(await lv.getNetworkXml(net));
    expect(parsed.ip?.dhcpHosts).toEqual([hostA, hostB]);
    await lv.updateNetwork(net, VIR_NETWORK_UPDATE_COMMAND_DELETE, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, buildDhcpHostXml(hostA), both);
    expect(parseNetworkXml(await lv.getNetworkXml(net)).ip?.dhcpHosts).toEqual([hostB]);
    // (the test driver has no VIR_NETWORK_XML_INACTIVE; the qemu:///system test reads the config)

    await lv.setNetworkAutostart(net, true);
    expect(await lv.getNetworkAutostart(net)).toBe(true);
    await lv.destroyNetwork(net);
    expect(await lv.isNetworkActive(net)).toBe(false);
    await lv.undefineNetwork(net);
    await expectCode(lv.lookupNetworkByName(netName), VIR_ERR_NO_NETWORK);

    const mine = (e: { network: Network }) => e.network.name === netName;
    for (const eventName of ['defined', 'started', 'stopped', 'undefined']) {
      expect(await events.next((e) => mine(e) && e.eventName === eventName, 5000)).toMatchObject({ network: net });
    }
    await events.close();
  });

  it('rejects a missing network with VIR_ERR_NO_NETWORK', async () => {
    await expectCode(lv.lookupNetworkByName(name('missing')), VIR_ERR_NO_NETWORK);
  });
});

describe('networks and nwfilters on qemu:///system (define only, never started)', () => {
  let lv: Libvirt;
  beforeAll(async () => {
    lv = await Libvirt.connect({ uri: 'qemu:///system' });
  });
  afterAll(async () => {
    await cleanNetworks(lv);
    for (const d of await lv.listAllDomains().catch(() => [])) {
      if (d.name === name('vm')) await lv.undefineDomain(d).catch(() => undefined);
    }
    for (const f of await lv.listAllNwFilters().catch(() => [])) {
      if (f.name.startsWith('koala-test-') && f.name.endsWith(suffix)) await lv.undefineNwFilter(f).catch(() => undefined);
    }
    await lv.close();
  });

  it('reports whether NETWORK_UPDATE has the corrected argument order', async () => {
    const correct = await lv.supportsFeature(VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER);
    expect(typeof correct).toBe('boolean');
    process.stdout.write(`libvirtd ${await lv.getLibVersion()}: VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER = ${correct}\n`);
  });

  it('adds and deletes DHCP hosts in the persistent config of a defined, inactive network', async () => {
    const netName = name('net');
    const net = await lv.defineNetwork(
      buildNetworkXml({ name: netName, bridge: { name: bridge(), stp: false, delay: 0 }, forward: { mode: 'open' }, ip: { address: '10.99.0.1', prefix: 24, dhcpHosts: [] } }),
    );
    try {
      expect(await lv.isNetworkActive(net)).toBe(false);
      const cfg = VIR_NETWORK_UPDATE_AFFECT_CONFIG;
      await lv.updateNetwork(net, VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, buildDhcpHostXml(hostA), cfg);
      await lv.updateNetwork(net, VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, buildDhcpHostXml(hostB), cfg);
      expect(parseNetworkXml(await lv.getNetworkXml(net, VIR_NETWORK_XML_INACTIVE)).ip?.dhcpHosts).toEqual([hostA, hostB]);
      await lv.updateNetwork(net, VIR_NETWORK_UPDATE_COMMAND_DELETE, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, buildDhcpHostXml(hostA), cfg);
      const parsed = parseNetworkXml(await lv.getNetworkXml(net, VIR_NETWORK_XML_INACTIVE));
      expect(parsed).toMatchObject({ name: netName, forward: { mode: 'open' }, ip: { address: '10.99.0.1', prefix: 24, dhcpHosts: [hostB] } });
      // The words really are read in the order the daemon claims: swapped (ADD_FIRST of the 'ip'
      // section) this daemon refuses the call and the config stays as it was.
      if (await lv.supportsFeature(VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER)) {
        await expect(lv.procedures.networkUpdate(net, VIR_NETWORK_SECTION_IP_DHCP_HOST, VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, -1, buildDhcpHostXml(hostA), cfg)).rejects.toBeInstanceOf(LibvirtError);
        expect(parseNetworkXml(await lv.getNetworkXml(net, VIR_NETWORK_XML_INACTIVE)).ip?.dhcpHosts).toEqual([hostB]);
      }
      // A live update of a network that is not running is refused, and starts nothing.
      await expect(lv.updateNetwork(net, VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, buildDhcpHostXml(hostA), VIR_NETWORK_UPDATE_AFFECT_LIVE)).rejects.toBeInstanceOf(
        LibvirtError,
      );
      expect(await lv.isNetworkActive(net)).toBe(false);
    } finally {
      await lv.undefineNetwork(net);
    }
    await expectCode(lv.lookupNetworkByName(netName), VIR_ERR_NO_NETWORK);
  });

  it('defines, looks up, reads and undefines an instance nwfilter', async () => {
    const filterName = name('filter');
    const xml = buildNwFilterXml({
      name: filterName,
      chain: 'root',
      filterrefs: [{ filter: 'clean-traffic', parameters: { IP: '10.99.0.10', MAC: hostA.mac } }],
      rules: [
        { action: 'accept', direction: 'in', priority: 100, protocol: 'tcp', attributes: { srcipaddr: '198.51.100.0', srcipmask: 24, dstportstart: 22, dstportend: 22, state: 'NEW' } },
        { action: 'accept', direction: 'in', protocol: 'all', attributes: { ipset: `koala-t-${suffix}`, ipsetflags: 'src', state: 'NEW' } },
        { action: 'accept', direction: 'in', protocol: 'icmp', attributes: { type: 8, code: 0, state: 'NEW' } },
        { action: 'accept', direction: 'inout', priority: -100, protocol: 'all', attributes: { state: 'ESTABLISHED,RELATED' } },
        { action: 'drop', direction: 'in', priority: 1000, protocol: 'all' },
      ],
    });
    const f = await lv.defineNwFilter(xml);
    expect(f.name).toBe(filterName);
    expect(await lv.lookupNwFilterByName(filterName)).toEqual(f);
    expect((await lv.listAllNwFilters()).map((x) => x.name)).toEqual(expect.arrayContaining([filterName, 'clean-traffic']));
    const parsed = parseNwFilterXml(await lv.getNwFilterXml(f));
    expect(parsed).toMatchObject({ name: filterName, uuid: f.uuid, chain: 'root' });
    expect(parsed.filterrefs).toEqual([{ filter: 'clean-traffic', parameters: { IP: ['10.99.0.10'], MAC: [hostA.mac] } }]);
    expect(parsed.rules).toHaveLength(5);
    expect(parsed.rules[0]).toMatchObject({ action: 'accept', direction: 'in', priority: 100, protocol: 'tcp' });
    expect(parsed.rules[0].attributes).toMatchObject({ srcipaddr: '198.51.100.0', srcipmask: '24', dstportstart: '22', dstportend: '22', state: 'NEW' });
    expect(parsed.rules[1].attributes).toMatchObject({ ipset: `koala-t-${suffix}`, ipsetflags: 'src' });
    expect(parsed.rules[2].attributes).toMatchObject({ type: '8', code: '0' });
    // A redefinition (how a running guest's rules change) must carry the filter's UUID: without
    // it libvirt refuses ("already exists with uuid ...").
    await expect(lv.defineNwFilter(xml)).rejects.toThrow(/already exists/);
    const again = buildNwFilterXml({ name: filterName, uuid: f.uuid, chain: 'root', rules: [{ action: 'drop', direction: 'in', protocol: 'all' }] });
    expect(await lv.defineNwFilter(again)).toEqual(f);
    expect(parseNwFilterXml(await lv.getNwFilterXml(f)).rules).toEqual([{ action: 'drop', direction: 'in', priority: 500, protocol: 'all', attributes: {} }]);
    await lv.undefineNwFilter(f);
    await expectCode(lv.lookupNwFilterByName(filterName), VIR_ERR_NO_NWFILTER);
  });

  it('accepts a domain (defined only) with an interface on a network, with its MAC and filterref', async () => {
    const filterref = { filter: 'clean-traffic', parameters: { IP: '10.99.0.10', MAC: hostA.mac } };
    const dom = await lv.defineDomain(
      buildDomainXml({ name: name('vm'), type: 'qemu', memoryMiB: 64, vcpus: 1, boot: { kind: 'disk' }, interfaces: [{ network: name('net'), mac: hostA.mac, model: 'virtio', filterref }] }),
    );
    try {
      expect(parseDomainXml(await lv.getDomainXml(dom)).interfaces).toEqual([
        expect.objectContaining({
          type: 'network',
          source: name('net'),
          mac: hostA.mac,
          model: 'virtio',
          filter: 'clean-traffic',
          filterParameters: [
            { name: 'IP', value: '10.99.0.10' },
            { name: 'MAC', value: hostA.mac },
          ],
        }),
      ]);
      expect(await lv.isDomainActive(dom)).toBe(false);
    } finally {
      await lv.undefineDomain(dom);
    }
  });
});
