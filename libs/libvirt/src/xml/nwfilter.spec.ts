import { buildDomainXml, buildNwFilterXml, parseDomainXml, parseNwFilterXml, type DomainSpec, type NwFilterRule, type NwFilterSpec } from './index.js';

const UUID = '6b4a5f2e-0c1d-4e8f-9a7b-3c2d1e0f9a8b';

const instanceFilter: NwFilterSpec = {
  name: 'koala-i-0000000001',
  uuid: UUID,
  chain: 'root',
  priority: -500,
  filterrefs: [{ filter: 'clean-traffic', parameters: { IP: '172.31.0.10', MAC: '02:00:00:00:00:01' } }],
  rules: [
    { action: 'accept', direction: 'in', priority: 100, protocol: 'tcp', attributes: { srcipaddr: '198.51.100.0', srcipmask: 24, dstportstart: 22, dstportend: 22, state: 'NEW' } },
    { action: 'accept', direction: 'in', protocol: 'udp', attributes: { dstportstart: 1000, dstportend: 2000, state: 'NEW', comment: 'sg-1 udp' } },
    { action: 'accept', direction: 'in', protocol: 'all', attributes: { ipset: 'koala-sg-1', ipsetflags: 'src', state: 'NEW' } },
    { action: 'accept', direction: 'in', protocol: 'icmp', attributes: { type: 8, code: 0, state: 'NEW' } },
    { action: 'accept', direction: 'inout', priority: -100, protocol: 'all', attributes: { state: 'ESTABLISHED,RELATED' } },
    { action: 'accept', direction: 'out', protocol: 'all', attributes: { state: 'NEW' } },
    { action: 'drop', direction: 'in', priority: 1000, statematch: false, protocol: 'all' },
  ],
};

describe('nwfilter XML', () => {
  it('builds anti-spoofing, port ranges, CIDR sources, ipsets, states and ICMP (exact XML)', () => {
    expect(buildNwFilterXml(instanceFilter)).toBe(
      [
        '<filter name="koala-i-0000000001" chain="root" priority="-500">',
        `  <uuid>${UUID}</uuid>`,
        '  <filterref filter="clean-traffic">',
        '    <parameter name="IP" value="172.31.0.10"/>',
        '    <parameter name="MAC" value="02:00:00:00:00:01"/>',
        '  </filterref>',
        '  <rule action="accept" direction="in" priority="100">',
        '    <tcp srcipaddr="198.51.100.0" srcipmask="24" dstportstart="22" dstportend="22" state="NEW"/>',
        '  </rule>',
        '  <rule action="accept" direction="in">',
        '    <udp dstportstart="1000" dstportend="2000" state="NEW" comment="sg-1 udp"/>',
        '  </rule>',
        '  <rule action="accept" direction="in">',
        '    <all state="NEW" ipset="koala-sg-1" ipsetflags="src"/>',
        '  </rule>',
        '  <rule action="accept" direction="in">',
        '    <icmp type="8" code="0" state="NEW"/>',
        '  </rule>',
        '  <rule action="accept" direction="inout" priority="-100">',
        '    <all state="ESTABLISHED,RELATED"/>',
        '  </rule>',
        '  <rule action="accept" direction="out">',
        '    <all state="NEW"/>',
        '  </rule>',
        '  <rule action="drop" direction="in" priority="1000" statematch="false">',
        '    <all/>',
        '  </rule>',
        '</filter>',
      ].join('\n'),
    );
  });

  it('writes one <parameter> per list item and accepts filter variables as values', () => {
    const xml = buildNwFilterXml({
      name: 'f',
      filterrefs: [{ filter: 'clean-traffic', parameters: { IP: ['10.0.0.5', '10.0.0.6'] } }],
      rules: [{ action: 'accept', direction: 'in', protocol: 'tcp', attributes: { srcipaddr: '$IP[@1]', dstportstart: '$PORT' } }],
    });
    expect(xml).toContain('<parameter name="IP" value="10.0.0.5"/>\n    <parameter name="IP" value="10.0.0.6"/>');
    expect(xml).toContain('<tcp srcipaddr="$IP[@1]" dstportstart="$PORT"/>');
    expect(buildNwFilterXml({ name: 'empty' })).toBe('<filter name="empty"/>');
  });

  it("parses back what it builds, and a dump of libvirt's clean-traffic", () => {
    const f = parseNwFilterXml(buildNwFilterXml(instanceFilter));
    expect(f).toMatchObject({ name: 'koala-i-0000000001', uuid: UUID, chain: 'root', priority: -500 });
    expect(f.filterrefs).toEqual([{ filter: 'clean-traffic', parameters: { IP: ['172.31.0.10'], MAC: ['02:00:00:00:00:01'] } }]);
    expect(f.rules).toHaveLength(7);
    expect(f.rules[0]).toEqual({
      action: 'accept',
      direction: 'in',
      priority: 100,
      protocol: 'tcp',
      attributes: { srcipaddr: '198.51.100.0', srcipmask: '24', dstportstart: '22', dstportend: '22', state: 'NEW' },
    });
    expect(f.rules[6]).toEqual({ action: 'drop', direction: 'in', priority: 1000, statematch: false, protocol: 'all', attributes: {} });
    const clean = parseNwFilterXml(`<filter name='clean-traffic' chain='root'>
  <uuid>${UUID}</uuid>
  <filterref filter='no-mac-spoofing'/>
  <filterref filter='no-ip-spoofing'/>
  <rule action='accept' direction='out' priority='-650'>
    <mac protocolid='ipv4'/>
  </rule>
  <filterref filter='allow-incoming-ipv4'/>
</filter>`);
    expect(clean.filterrefs.map((r) => r.filter)).toEqual(['no-mac-spoofing', 'no-ip-spoofing', 'allow-incoming-ipv4']);
    expect(clean.rules).toEqual([{ action: 'accept', direction: 'out', priority: -650, protocol: 'mac', attributes: { protocolid: 'ipv4' } }]);
  });

  it('refuses hostile or wrong input with a clear error', () => {
    const rule = (over: Partial<NwFilterRule> & { attributes?: Record<string, unknown> }): NwFilterSpec => ({
      name: 'f',
      rules: [{ action: 'accept', direction: 'in', protocol: 'tcp', ...over } as NwFilterRule],
    });
    const cases: [NwFilterSpec, RegExp][] = [
      [{ name: 'a b' }, /nwfilter.name must not contain white space/],
      [{ name: 'a\u0000' }, /nwfilter.name contains a character/],
      [{ name: 'f', chain: 'root-x' }, /nwfilter.chain must be/],
      [{ name: 'f', chain: 'bogus' }, /nwfilter.chain must be/],
      [{ name: 'f', priority: 1001 }, /nwfilter.priority must be an integer between -1000 and 1000/],
      [{ name: 'f', filterrefs: [{ filter: 'clean-traffic', parameters: { 'I P': 'x' } }] }, /is not a variable name/],
      [{ name: 'f', filterrefs: [{ filter: 'clean-traffic', parameters: { IP: 'a\nb' } }] }, /control characters/],
      [rule({ action: 'allow' as never }), /action must be one of/],
      [rule({ direction: 'both' as never }), /direction must be one of/],
      [rule({ protocol: 'gre' as never }), /protocol must be one of/],
      [rule({ priority: 1.5 }), /priority must be an integer/],
      [rule({ attributes: { srcipaddr: '10.0.0.0/24' } }), /srcipaddr must be an IPv4 or IPv6 address/],
      [rule({ attributes: { srcipaddr: '" onload="x' } }), /srcipaddr must be an IPv4 or IPv6 address/],
      [rule({ attributes: { srcipmask: 129 } }), /srcipmask must be between 0 and 128/],
      [rule({ attributes: { dstportstart: 65536 } }), /dstportstart must be between 0 and 65535/],
      [rule({ attributes: { dstportstart: 100, dstportend: 50 } }), /dstportstart 100 is above dstportend 50/],
      [rule({ attributes: { state: 'NEW,BOGUS' } }), /state must be a comma-separated list/],
      [rule({ attributes: { ipset: 'x'.repeat(32), ipsetflags: 'src' } }), /ipset must be an ipset name/],
      [rule({ attributes: { ipset: 'koala-sg-1' } }), /ipset and ipsetflags go together/],
      [rule({ attributes: { ipset: 'koala-sg-1', ipsetflags: 'source' } }), /ipsetflags must be a comma-separated list/],
      [rule({ attributes: { type: 8 } }), /only icmp\/icmpv6 rules have a type and code/],
      [rule({ protocol: 'icmp', attributes: { type: 256 } }), /type must be between 0 and 255/],
      [rule({ protocol: 'all', attributes: { dstportstart: 22 } }), /protocol all has no ports/],
      [rule({ attributes: { bogus: '1' } }), /bogus is not a supported rule attribute/],
      [rule({ attributes: { comment: 'x'.repeat(257) } }), /comment must be at most 256/],
      [rule({ statematch: 'no' as never }), /statematch must be a boolean/],
    ];
    for (const [spec, err] of cases) expect(() => buildNwFilterXml(spec)).toThrow(err);
  });

  it('escapes free text (comments) in attributes', () => {
    const xml = buildNwFilterXml({ name: 'f', rules: [{ action: 'accept', direction: 'in', protocol: 'all', attributes: { comment: `a<b&c"d'e` } }] });
    expect(xml).toContain('comment="a&lt;b&amp;c&quot;d\'e"');
    expect(parseNwFilterXml(xml).rules[0].attributes.comment).toBe(`a<b&c"d'e`);
  });
});

describe('domain network interfaces', () => {
  const base: DomainSpec = { name: 'i-1', type: 'qemu', memoryMiB: 64, vcpus: 1, boot: { kind: 'disk' } };

  it('renders a network interface with MAC, virtio and the instance filter (exact XML)', () => {
    const xml = buildDomainXml({
      ...base,
      interfaces: [{ network: 'koala-koala-1a', mac: '02:00:00:00:00:01', model: 'virtio', filterref: { filter: 'koala-i-1', parameters: { IP: '172.31.0.10', MAC: '02:00:00:00:00:01' } } }],
    });
    expect(xml).toContain(
      [
        '    <interface type="network">',
        '      <mac address="02:00:00:00:00:01"/>',
        '      <source network="koala-koala-1a"/>',
        '      <model type="virtio"/>',
        '      <filterref filter="koala-i-1">',
        '        <parameter name="IP" value="172.31.0.10"/>',
        '        <parameter name="MAC" value="02:00:00:00:00:01"/>',
        '      </filterref>',
        '    </interface>',
      ].join('\n'),
    );
    expect(parseDomainXml(xml).interfaces).toEqual([
      {
        type: 'network',
        source: 'koala-koala-1a',
        mac: '02:00:00:00:00:01',
        model: 'virtio',
        filter: 'koala-i-1',
        filterParameters: [
          { name: 'IP', value: '172.31.0.10' },
          { name: 'MAC', value: '02:00:00:00:00:01' },
        ],
      },
    ]);
    expect(buildDomainXml({ ...base, interfaces: [{ network: 'n', mac: '02:00:00:00:00:02' }] })).toContain(
      '<interface type="network">\n      <mac address="02:00:00:00:00:02"/>\n      <source network="n"/>\n      <model type="virtio"/>\n    </interface>',
    );
  });

  it('refuses a network interface without MAC, with a bad model, network or filter parameter', () => {
    expect(() => buildDomainXml({ ...base, interfaces: [{ network: 'n' } as never] })).toThrow(/interfaces\[0\].mac is required/);
    expect(() => buildDomainXml({ ...base, interfaces: [{ network: 'n', mac: '02:00:00:00:00:01', model: 'e1000' as never }] })).toThrow(/model must be one of virtio/);
    expect(() => buildDomainXml({ ...base, interfaces: [{ network: 'a/b', mac: '02:00:00:00:00:01' }] })).toThrow(/source must not contain/);
    expect(() => buildDomainXml({ ...base, interfaces: [{ network: 'n', mac: '02:00:00:00:00:01', filterref: { filter: 'f', parameters: { 'a-b': 'x' } } }] })).toThrow(/is not a variable name/);
  });
});
