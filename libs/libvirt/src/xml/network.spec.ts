import { buildDhcpHostXml, buildNetworkXml, parseNetworkXml, type NetworkSpec } from './index.js';

const UUID = '6b4a5f2e-0c1d-4e8f-9a7b-3c2d1e0f9a8b';

const zoneNetwork = (over: Partial<NetworkSpec> = {}): NetworkSpec => ({
  name: 'koala-koala-1a',
  uuid: UUID,
  bridge: { name: 'koala-br0', stp: false, delay: 0 },
  forward: { mode: 'open' },
  mtu: 1500,
  ip: {
    address: '172.31.0.2',
    prefix: 20,
    dhcpHosts: [
      { mac: '02:00:00:00:00:01', ip: '172.31.0.10', name: 'i-0000000001' },
      { mac: '02:00:00:00:00:02', ip: '172.31.0.11' },
    ],
  },
  ...over,
});

describe('network XML', () => {
  it('builds an open-forward network with static DHCP hosts only (exact XML)', () => {
    expect(buildNetworkXml(zoneNetwork())).toBe(
      [
        '<network>',
        '  <name>koala-koala-1a</name>',
        `  <uuid>${UUID}</uuid>`,
        '  <forward mode="open"/>',
        '  <bridge name="koala-br0" stp="off" delay="0"/>',
        '  <mtu size="1500"/>',
        '  <ip address="172.31.0.2" prefix="20">',
        '    <dhcp>',
        '      <host mac="02:00:00:00:00:01" ip="172.31.0.10" name="i-0000000001"/>',
        '      <host mac="02:00:00:00:00:02" ip="172.31.0.11"/>',
        '    </dhcp>',
        '  </ip>',
        '</network>',
      ].join('\n'),
    );
  });

  it('builds an isolated network with DHCP on and no entries yet, and no optional parts', () => {
    expect(buildNetworkXml({ name: 'iso', bridge: { name: 'br1' }, ip: { address: '10.0.0.1', prefix: 24, dhcpHosts: [] } })).toBe(
      ['<network>', '  <name>iso</name>', '  <bridge name="br1"/>', '  <ip address="10.0.0.1" prefix="24">', '    <dhcp/>', '  </ip>', '</network>'].join('\n'),
    );
    expect(buildNetworkXml({ name: 'v6', bridge: { name: 'br3' }, ip: { address: '2001:db8::1', prefix: 64 } })).toContain('<ip family="ipv6" address="2001:db8::1" prefix="64"/>');
    expect(buildNetworkXml({ name: 'bare', bridge: { name: 'br2' }, forward: { mode: 'nat' } })).toBe(
      ['<network>', '  <name>bare</name>', '  <forward mode="nat"/>', '  <bridge name="br2"/>', '</network>'].join('\n'),
    );
  });

  it('builds a <host> with its own lease time (minutes, at least 2)', () => {
    expect(buildDhcpHostXml({ mac: '02:00:00:00:00:01', ip: '172.31.0.10', name: 'a', leaseMinutes: 2 })).toBe(
      ['<host mac="02:00:00:00:00:01" ip="172.31.0.10" name="a">', '  <lease expiry="2" unit="minutes"/>', '</host>'].join('\n'),
    );
    expect(() => buildDhcpHostXml({ mac: '02:00:00:00:00:01', ip: '172.31.0.10', leaseMinutes: 1 })).toThrow(/at least 2/);
    expect(() => buildDhcpHostXml({ mac: '02:00:00:00:00:01', ip: '172.31.0.10', leaseMinutes: -1 })).toThrow(/leaseMinutes/);
  });

  it('builds the <host> fragment for virNetworkUpdate (MAC lower-cased)', () => {
    expect(buildDhcpHostXml({ mac: '02:AB:00:00:00:01', ip: '172.31.0.10', name: 'i-1' })).toBe('<host mac="02:ab:00:00:00:01" ip="172.31.0.10" name="i-1"/>');
    expect(buildDhcpHostXml({ mac: '02:00:00:00:00:01', ip: '172.31.0.10' })).toBe('<host mac="02:00:00:00:00:01" ip="172.31.0.10"/>');
  });

  it('parses back what it builds', () => {
    expect(parseNetworkXml(buildNetworkXml(zoneNetwork()))).toEqual({
      name: 'koala-koala-1a',
      uuid: UUID,
      bridge: { name: 'koala-br0', stp: false, delay: 0 },
      forward: { mode: 'open' },
      mtu: 1500,
      ip: {
        address: '172.31.0.2',
        prefix: 20,
        dhcpHosts: [
          { mac: '02:00:00:00:00:01', ip: '172.31.0.10', name: 'i-0000000001' },
          { mac: '02:00:00:00:00:02', ip: '172.31.0.11' },
        ],
        dhcpRanges: [],
      },
      ips: [expect.objectContaining({ address: '172.31.0.2' })],
      dnsmasqOptions: [],
    });
  });

  it('builds and parses a <domain> and dnsmasq options (namespace declared on the root)', () => {
    const xml = buildNetworkXml(
      zoneNetwork({
        uuid: undefined,
        mtu: undefined,
        ip: { address: '10.9.0.2', prefix: 24, dhcpHosts: [] },
        domain: { name: 'koala.compute.internal', localOnly: true },
        dnsmasqOptions: ['dhcp-ignore=tag:!known'],
      }),
    );
    expect(xml).toBe(
      [
        '<network xmlns:dnsmasq="http://libvirt.org/schemas/network/dnsmasq/1.0">',
        '  <name>koala-koala-1a</name>',
        '  <forward mode="open"/>',
        '  <bridge name="koala-br0" stp="off" delay="0"/>',
        '  <domain name="koala.compute.internal" localOnly="yes"/>',
        '  <ip address="10.9.0.2" prefix="24">',
        '    <dhcp/>',
        '  </ip>',
        '  <dnsmasq:options>',
        '    <dnsmasq:option value="dhcp-ignore=tag:!known"/>',
        '  </dnsmasq:options>',
        '</network>',
      ].join('\n'),
    );
    expect(parseNetworkXml(xml)).toMatchObject({ domain: { name: 'koala.compute.internal', localOnly: true }, dnsmasqOptions: ['dhcp-ignore=tag:!known'] });
    // libvirt's dump may use another prefix for the namespace.
    expect(
      parseNetworkXml("<network xmlns:d='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>n</name><d:options><d:option value='a=1'/><d:option value='b'/></d:options></network>").dnsmasqOptions,
    ).toEqual(['a=1', 'b']);
    expect(() => buildNetworkXml(zoneNetwork({ dnsmasqOptions: ['x\ny'] }))).toThrow(/dnsmasqOptions\[0\]/);
    expect(() => buildNetworkXml(zoneNetwork({ domain: { name: 'bad name' } }))).toThrow(/network.domain.name/);
    expect(buildNetworkXml(zoneNetwork({ dnsmasqOptions: [] }))).toMatch(/^<network>\n/);
  });

  it("parses libvirt's own dump (netmask, single quotes, ranges, default nat, unknown elements)", () => {
    const dumped = `<network connections='1'>
  <name>default</name>
  <uuid>${UUID}</uuid>
  <forward/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:0a:0b:0c'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
      <host mac='52:54:00:00:00:01' name='a' ip='192.168.122.5'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='2001:db8::1' prefix='64'/>
</network>`;
    const n = parseNetworkXml(dumped);
    expect(n).toMatchObject({ name: 'default', uuid: UUID, bridge: { name: 'virbr0', stp: true, delay: 0 }, forward: { mode: 'nat' } });
    expect(n.ip).toEqual({
      address: '192.168.122.1',
      prefix: 24,
      dhcpHosts: [{ mac: '52:54:00:00:00:01', name: 'a', ip: '192.168.122.5' }],
      dhcpRanges: [{ start: '192.168.122.2', end: '192.168.122.254' }],
    });
    expect(n.ips[1]).toMatchObject({ family: 'ipv6', address: '2001:db8::1', prefix: 64 });
    expect(parseNetworkXml('<network><name>x</name></network>')).toEqual({ name: 'x', ips: [], dnsmasqOptions: [] });
    expect(() => parseNetworkXml('<domain/>')).toThrow(/expected a <network>/);
  });

  it('escapes nothing it needs to: hostile values are refused before rendering', () => {
    const cases: [Partial<NetworkSpec>, RegExp][] = [
      [{ name: 'a/b' }, /network.name must not contain '\/'/],
      [{ name: 'x\u0000y' }, /network.name contains a character/],
      [{ name: '' }, /network.name must not be empty/],
      [{ uuid: 'nope' }, /network.uuid must be a UUID/],
      [{ bridge: { name: 'a-very-long-bridge-name' } }, /network.bridge.name must be an interface name/],
      [{ bridge: { name: 'br"0' } }, /network.bridge.name/],
      [{ bridge: { name: 'br0', delay: -1 } }, /delay must be a non-negative integer/],
      [{ forward: { mode: 'evil' as never } }, /forward.mode must be one of/],
      [{ mtu: 10 }, /mtu must be between 68 and 65535/],
      [{ ip: { address: '10.0.0.256', prefix: 24 } }, /ip.address must be an IPv4 or IPv6 address/],
      [{ ip: { address: '10.0.0.1', prefix: 33 } }, /prefix must be at most 32/],
      [{ ip: { address: '10.0.0.1', prefix: 24, dhcpHosts: [{ mac: 'zz', ip: '10.0.0.2' }] } }, /dhcpHosts\[0\].mac must look like/],
      [{ ip: { address: '10.0.0.1', prefix: 24, dhcpHosts: [{ mac: '02:00:00:00:00:01', ip: '2001:db8::5' }] } }, /dhcpHosts\[0\].ip must be an IPv4 address/],
      [{ ip: { address: '10.0.0.1', prefix: 24, dhcpHosts: [{ mac: '02:00:00:00:00:01', ip: '10.0.0.2', name: "a'b<c" }] } }, /name must be a host name/],
      [{ ip: { address: '2001:db8::1', prefix: 64, dhcpHosts: [] } }, /dhcpHosts need an IPv4/],
      [
        {
          ip: {
            address: '10.0.0.1',
            prefix: 24,
            dhcpHosts: [
              { mac: '02:00:00:00:00:01', ip: '10.0.0.2' },
              { mac: '02:00:00:00:00:01', ip: '10.0.0.3' },
            ],
          },
        },
        /MAC 02:00:00:00:00:01 appears twice/,
      ],
      [
        {
          ip: {
            address: '10.0.0.1',
            prefix: 24,
            dhcpHosts: [
              { mac: '02:00:00:00:00:01', ip: '10.0.0.2' },
              { mac: '02:00:00:00:00:02', ip: '10.0.0.2' },
            ],
          },
        },
        /IP 10.0.0.2 appears twice/,
      ],
    ];
    for (const [over, err] of cases) expect(() => buildNetworkXml(zoneNetwork(over))).toThrow(err);
    expect(() => buildDhcpHostXml({ mac: '02:00:00:00:00:01', ip: '10.0.0.2"/><x' })).toThrow(/ip must be an IPv4 address/);
  });

  it('escapes a unicode name safely and keeps it intact', () => {
    const xml = buildNetworkXml(zoneNetwork({ name: `koala-ü-&<>'"` }));
    expect(xml).toContain('<name>koala-ü-&amp;&lt;&gt;\'"</name>');
    expect(parseNetworkXml(xml).name).toBe(`koala-ü-&<>'"`);
  });
});
