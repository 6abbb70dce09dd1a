import { Params, isEc2Error } from '@koala/ec2-query';
import { normalizeCidrV4, normalizeCidrV6, normalizePorts, normalizeProtocol, readRuleInputs, ruleIdentity, ruleLabel, toIpPermissions, type RuleLike } from './ip-permissions.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isEc2Error(e) ? e.code : String(e);
  }
  return undefined;
}
const p = (m: Record<string, string>) => new Params(m);

describe('protocols', () => {
  it.each([
    ['tcp', 'tcp'],
    ['TCP', 'tcp'],
    ['6', 'tcp'],
    ['udp', 'udp'],
    ['17', 'udp'],
    ['icmp', 'icmp'],
    ['1', 'icmp'],
    ['-1', '-1'],
    ['all', '-1'],
    ['icmpv6', '58'],
    ['50', '50'],
    ['050', '50'],
  ])('%s → %s', (raw, want) => expect(normalizeProtocol(raw)).toBe(want));

  it.each(['foo', '256', '-2', ''])('%s is refused', (raw) => expect(codeOf(() => normalizeProtocol(raw))).toBe('InvalidParameterValue'));
});

describe('ports', () => {
  it('tcp/udp need both ports within 0-65535, from ≤ to', () => {
    expect(normalizePorts('tcp', 22, 22)).toEqual({ fromPort: 22, toPort: 22 });
    expect(normalizePorts('udp', 0, 65535)).toEqual({ fromPort: 0, toPort: 65535 });
    for (const [f, t] of [
      [undefined, 22],
      [22, undefined],
      [-1, 22],
      [0, 65536],
      [100, 99],
    ] as const) {
      expect(codeOf(() => normalizePorts('tcp', f, t))).toBe('InvalidParameterValue');
    }
  });

  it('icmp type/code within -1..255, default -1; code must be -1 when type is -1', () => {
    expect(normalizePorts('icmp', 8, 0)).toEqual({ fromPort: 8, toPort: 0 });
    expect(normalizePorts('icmp', undefined, undefined)).toEqual({ fromPort: -1, toPort: -1 });
    expect(codeOf(() => normalizePorts('icmp', 256, 0))).toBe('InvalidParameterValue');
    expect(codeOf(() => normalizePorts('icmp', 3, -2))).toBe('InvalidParameterValue');
    expect(codeOf(() => normalizePorts('icmp', -1, 3))).toBe('InvalidParameterValue');
  });

  it('-1 and other protocols carry no ports', () => {
    expect(normalizePorts('-1', 1, 2)).toEqual({ fromPort: null, toPort: null });
    expect(normalizePorts('50', undefined, undefined)).toEqual({ fromPort: null, toPort: null });
  });
});

describe('CIDRs', () => {
  it('accepts valid IPv4 / IPv6 blocks', () => {
    expect(normalizeCidrV4('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(normalizeCidrV4('10.1.2.3/32')).toBe('10.1.2.3/32');
    expect(normalizeCidrV4(' 192.168.0.0/16 ')).toBe('192.168.0.0/16');
    expect(normalizeCidrV6('2001:DB8::/32')).toBe('2001:db8::/32');
    expect(normalizeCidrV6('::/0')).toBe('::/0');
  });
  it.each(['10.0.0/8', '10.0.0.0', '10.0.0.0/33', '256.0.0.0/8', '10.0.0.01/32', 'x/8', '::/0'])('IPv4 %s refused', (c) => expect(codeOf(() => normalizeCidrV4(c))).toBe('InvalidParameterValue'));
  it.each(['2001:db8::/129', '2001:db8::', '10.0.0.0/8', 'g::/8'])('IPv6 %s refused', (c) => expect(codeOf(() => normalizeCidrV6(c))).toBe('InvalidParameterValue'));
});

describe('readRuleInputs', () => {
  it('new form: one rule per peer', () => {
    const rules = readRuleInputs(
      p({
        'IpPermissions.1.IpProtocol': 'tcp',
        'IpPermissions.1.FromPort': '22',
        'IpPermissions.1.ToPort': '22',
        'IpPermissions.1.IpRanges.1.CidrIp': '10.0.0.0/8',
        'IpPermissions.1.IpRanges.1.Description': 'office',
        'IpPermissions.1.IpRanges.2.CidrIp': '192.168.0.0/16',
        'IpPermissions.1.Ipv6Ranges.1.CidrIpv6': '2001:db8::/32',
        'IpPermissions.1.Groups.1.GroupId': 'sg-0123456789abcdef0',
        'IpPermissions.2.IpProtocol': 'icmp',
        'IpPermissions.2.FromPort': '-1',
        'IpPermissions.2.ToPort': '-1',
        'IpPermissions.2.Groups.1.GroupName': 'web',
        'IpPermissions.2.Groups.1.UserId': '111122223333',
      }),
    );
    expect(rules).toEqual([
      { ipProtocol: 'tcp', fromPort: 22, toPort: 22, peer: { kind: 'ipv4', cidr: '10.0.0.0/8', description: 'office' } },
      { ipProtocol: 'tcp', fromPort: 22, toPort: 22, peer: { kind: 'ipv4', cidr: '192.168.0.0/16', description: undefined } },
      { ipProtocol: 'tcp', fromPort: 22, toPort: 22, peer: { kind: 'ipv6', cidr: '2001:db8::/32', description: undefined } },
      { ipProtocol: 'tcp', fromPort: 22, toPort: 22, peer: { kind: 'group', groupId: 'sg-0123456789abcdef0', groupName: undefined, userId: undefined, description: undefined } },
      { ipProtocol: 'icmp', fromPort: -1, toPort: -1, peer: { kind: 'group', groupId: undefined, groupName: 'web', userId: '111122223333', description: undefined } },
    ]);
  });

  it('new form without any peer → MissingParameter', () => {
    expect(codeOf(() => readRuleInputs(p({ 'IpPermissions.1.IpProtocol': '-1' })))).toBe('MissingParameter');
  });

  it('old form: CidrIp, default 0.0.0.0/0, source group', () => {
    expect(readRuleInputs(p({ IpProtocol: 'tcp', FromPort: '80', ToPort: '80', CidrIp: '1.2.3.4/32' }))).toEqual([
      { ipProtocol: 'tcp', fromPort: 80, toPort: 80, peer: { kind: 'ipv4', cidr: '1.2.3.4/32' } },
    ]);
    expect(readRuleInputs(p({ IpProtocol: 'udp', FromPort: '53', ToPort: '53' }))[0]!.peer).toEqual({ kind: 'ipv4', cidr: '0.0.0.0/0' });
    const classic = readRuleInputs(p({ SourceSecurityGroupName: 'web', SourceSecurityGroupOwnerId: '111122223333' }));
    expect(classic.map((r) => [r.ipProtocol, r.fromPort, r.toPort])).toEqual([
      ['tcp', 0, 65535],
      ['udp', 0, 65535],
      ['icmp', -1, -1],
    ]);
    expect(codeOf(() => readRuleInputs(p({})))).toBe('MissingParameter');
    expect(codeOf(() => readRuleInputs(p({ IpProtocol: 'tcp', FromPort: '80', ToPort: '80', CidrIp: 'nope' })))).toBe('InvalidParameterValue');
  });
});

describe('grouping and identity', () => {
  const base: RuleLike = { ipProtocol: 'tcp', fromPort: 22, toPort: 22, cidrIpv4: null, cidrIpv6: null, referencedGroupId: null, referencedUserId: null, description: null };
  it('groups rules by protocol and ports, peers in lists; -1 without ports', () => {
    const perms = toIpPermissions(
      [
        { ...base, cidrIpv4: '10.0.0.0/8', description: 'office' },
        { ...base, cidrIpv6: '::/0' },
        { ...base, referencedGroupId: 'sg-0123456789abcdef0', referencedUserId: '111122223333' },
        { ...base, ipProtocol: '-1', fromPort: null, toPort: null, cidrIpv4: '0.0.0.0/0' },
      ],
      new Map([['sg-0123456789abcdef0', 'web']]),
    );
    expect(perms).toEqual([
      {
        ipProtocol: 'tcp',
        fromPort: 22,
        toPort: 22,
        groups: [{ userId: '111122223333', groupId: 'sg-0123456789abcdef0', groupName: 'web', description: undefined }],
        ipRanges: [{ cidrIp: '10.0.0.0/8', description: 'office' }],
        ipv6Ranges: [{ cidrIpv6: '::/0', description: undefined }],
        prefixListIds: [],
      },
      { ipProtocol: '-1', fromPort: undefined, toPort: undefined, groups: [], ipRanges: [{ cidrIp: '0.0.0.0/0', description: undefined }], ipv6Ranges: [], prefixListIds: [] },
    ]);
  });

  it('identity ignores the description; label as AWS words it', () => {
    expect(ruleIdentity({ ...base, cidrIpv4: '1.2.3.4/32' })).toBe(ruleIdentity({ ...base, cidrIpv4: '1.2.3.4/32', description: 'x' } as RuleLike));
    expect(ruleIdentity({ ...base, cidrIpv4: '1.2.3.4/32' })).not.toBe(ruleIdentity({ ...base, cidrIpv4: '1.2.3.5/32' }));
    expect(ruleLabel({ ...base, cidrIpv4: '0.0.0.0/0' })).toBe('peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW');
  });
});
