import { ZoneNetworkState } from '@koala/contracts';
import { buildZoneNetworkState, stateDigest, toNetworkRule, type StoredRule, type ZoneNetworkInputs } from './network-state.js';

const SG_WEB = 'sg-00000000000000001';
const SG_DB = 'sg-00000000000000002';
const SG_OTHER = 'sg-00000000000000003';
const rule = (groupId: string, isEgress: boolean, ipProtocol: string, extra: Partial<StoredRule> = {}): StoredRule => ({
  groupId,
  isEgress,
  ipProtocol,
  fromPort: null,
  toPort: null,
  cidrIpv4: null,
  cidrIpv6: null,
  referencedGroupId: null,
  ...extra,
});
const META = { httpTokens: 'optional' as const, httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' as const };

const inputs = (): ZoneNetworkInputs => ({
  zone: 'koala-1a',
  version: 7,
  subnet: '172.31.0.0/20',
  dnsSuffix: 'koala-1.compute.internal',
  generatedAt: new Date('2026-12-07T01:00:00Z'),
  nodes: [
    { node: 'n2', address: '172.31.0.3' },
    { node: 'n1', address: '172.31.0.2' },
  ],
  interfaces: [
    { instanceId: 'i-00000000000000002', node: 'n2', mac: '02:00:00:00:00:02', privateIp: '172.31.0.5', publicIp: null, groupIds: [SG_DB], metadataOptions: { ...META, httpTokens: 'required' } },
    {
      instanceId: 'i-00000000000000001',
      interfaceId: 'eni-0000000000000000a',
      node: 'n1',
      mac: '02:00:00:00:00:01',
      privateIp: '172.31.0.4',
      publicIp: '198.51.100.1',
      groupIds: [SG_WEB, SG_DB],
      metadataOptions: META,
    },
  ],
  groups: [
    { groupId: SG_DB, name: 'db' },
    { groupId: SG_WEB, name: 'web' },
    { groupId: SG_OTHER, name: 'unused' },
  ],
  rules: [
    rule(SG_WEB, false, 'tcp', { fromPort: 80, toPort: 80, cidrIpv4: '0.0.0.0/0' }),
    rule(SG_WEB, false, 'tcp', { fromPort: 80, toPort: 80, cidrIpv4: '10.0.0.0/8' }),
    rule(SG_WEB, false, 'icmp', { fromPort: 8, toPort: -1, cidrIpv4: '0.0.0.0/0' }),
    rule(SG_WEB, false, 'tcp', { fromPort: 22, toPort: 22, cidrIpv6: '::/0' }),
    rule(SG_WEB, true, '-1', { cidrIpv4: '0.0.0.0/0' }),
    rule(SG_DB, false, 'tcp', { fromPort: 5432, toPort: 5432, referencedGroupId: SG_WEB }),
    rule(SG_DB, false, '-1', { referencedGroupId: SG_DB }),
    rule(SG_DB, false, '47', { cidrIpv4: '10.0.0.0/8' }),
    rule(SG_OTHER, false, '-1', { cidrIpv4: '0.0.0.0/0' }),
  ],
});

describe('buildZoneNetworkState', () => {
  it('builds the whole document: sorted nodes and interfaces, member groups only, rules translated and merged', () => {
    const s = buildZoneNetworkState(inputs());
    expect(s).toEqual({
      zone: 'koala-1a',
      version: 7,
      subnet: '172.31.0.0/20',
      dnsSuffix: 'koala-1.compute.internal',
      nodes: [
        { node: 'n1', address: '172.31.0.2' },
        { node: 'n2', address: '172.31.0.3' },
      ],
      interfaces: [
        {
          instanceId: 'i-00000000000000001',
          interfaceId: 'eni-0000000000000000a',
          node: 'n1',
          mac: '02:00:00:00:00:01',
          privateIp: '172.31.0.4',
          publicIp: '198.51.100.1',
          groupIds: [SG_WEB, SG_DB],
          metadataOptions: META,
        },
        { instanceId: 'i-00000000000000002', node: 'n2', mac: '02:00:00:00:00:02', privateIp: '172.31.0.5', groupIds: [SG_DB], metadataOptions: { ...META, httpTokens: 'required' } },
      ],
      groups: [
        {
          groupId: SG_WEB,
          name: 'web',
          ingress: [
            { protocol: 'tcp', fromPort: 80, toPort: 80, cidrs: ['0.0.0.0/0', '10.0.0.0/8'], groupIds: [] },
            { protocol: 'icmp', fromPort: 8, toPort: -1, cidrs: ['0.0.0.0/0'], groupIds: [] },
          ],
          egress: [{ protocol: 'all', fromPort: -1, toPort: -1, cidrs: ['0.0.0.0/0'], groupIds: [] }],
        },
        {
          groupId: SG_DB,
          name: 'db',
          ingress: [
            { protocol: 'tcp', fromPort: 5432, toPort: 5432, cidrs: [], groupIds: [SG_WEB] },
            { protocol: 'all', fromPort: -1, toPort: -1, cidrs: [], groupIds: [SG_DB] },
          ],
          egress: [],
        },
      ],
      generatedAt: '2026-12-07T01:00:00.000Z',
    });
    expect(() => ZoneNetworkState.parse(s)).not.toThrow();
  });

  it('an empty zone is a valid state', () => {
    const s = buildZoneNetworkState({ ...inputs(), nodes: [], interfaces: [], rules: [] });
    expect(s).toMatchObject({ nodes: [], interfaces: [], groups: [] });
    expect(() => ZoneNetworkState.parse(s)).not.toThrow();
  });

  it('digests the content, not the version or time', () => {
    const a = buildZoneNetworkState(inputs());
    const b = buildZoneNetworkState({ ...inputs(), version: 8, generatedAt: new Date() });
    expect(stateDigest(a)).toBe(stateDigest(b));
    const revoked = inputs();
    revoked.rules.shift();
    expect(stateDigest(buildZoneNetworkState(revoked))).not.toBe(stateDigest(a));
    const moved = inputs();
    moved.interfaces[0]!.node = 'n1';
    expect(stateDigest(buildZoneNetworkState(moved))).not.toBe(stateDigest(a));
  });

  it('translates ports: tcp/udp without ports = every port, icmp type/code, numbers as names', () => {
    expect(toNetworkRule(rule(SG_WEB, false, '6', { cidrIpv4: '1.2.3.0/24' }))).toEqual({ protocol: 'tcp', fromPort: 0, toPort: 65535, cidrs: ['1.2.3.0/24'], groupIds: [] });
    expect(toNetworkRule(rule(SG_WEB, false, '17', { fromPort: 53, toPort: 53, cidrIpv4: '1.2.3.0/24' }))?.protocol).toBe('udp');
    expect(toNetworkRule(rule(SG_WEB, false, 'icmp', { cidrIpv4: '1.2.3.0/24' }))).toMatchObject({ protocol: 'icmp', fromPort: -1, toPort: -1 });
    expect(toNetworkRule(rule(SG_WEB, false, 'icmpv6', { cidrIpv6: '::/0' }))).toBeUndefined();
  });
});
