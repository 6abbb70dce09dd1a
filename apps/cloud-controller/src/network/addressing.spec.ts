import { defaultSubnetId, instanceMac, nextPrivateIp, nextPrivateIps, parseSubnet, privateDnsName, publicDnsName, routerAddress, zoneSubnet } from './addressing.js';

describe('addressing', () => {
  it('finds the zone subnet, falling back to *', () => {
    const subnets = { a: '10.1.0.0/24', '*': '172.31.0.0/20' };
    expect(zoneSubnet(subnets, 'a')?.cidr).toBe('10.1.0.0/24');
    expect(zoneSubnet(subnets, 'b')?.cidr).toBe('172.31.0.0/20');
    expect(zoneSubnet({ a: '10.1.0.0/24' }, 'b')).toBeUndefined();
    expect(routerAddress(parseSubnet('10.1.0.0/24'))).toBe('10.1.0.1');
  });

  it('skips network, router, broadcast and used addresses; fills gaps; undefined when full', () => {
    const s = parseSubnet('10.0.0.0/29'); // .0 network, .1 router, .7 broadcast: .2-.6 free
    expect(nextPrivateIp(s, [])).toBe('10.0.0.2');
    expect(nextPrivateIp(s, ['10.0.0.2', '10.0.0.4'])).toBe('10.0.0.3');
    expect(nextPrivateIp(s, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'])).toBe('10.0.0.6');
    expect(nextPrivateIp(s, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6'])).toBeUndefined();
    expect(nextPrivateIp(parseSubnet('10.0.0.0/28'), ['192.168.0.2'])).toBe('10.0.0.2');
  });

  it('picks several addresses in one pass as nextPrivateIp would one by one', () => {
    const s = parseSubnet('10.0.0.0/29');
    expect(nextPrivateIps(s, ['10.0.0.3', '10.0.0.5'], 2)).toEqual(['10.0.0.2', '10.0.0.4']);
    expect(nextPrivateIps(s, ['10.0.0.3', '10.0.0.5'], 5)).toEqual(['10.0.0.2', '10.0.0.4', '10.0.0.6']);
    expect(nextPrivateIps(s, [], 0)).toEqual([]);
  });

  it('derives the MAC from the low 40 bits of the id; a clash takes the next value', () => {
    expect(instanceMac('i-0123456789abcdef0', new Set())).toBe('02:78:9a:bc:de:f0');
    expect(instanceMac('i-0123456789abcdef0', new Set(['02:78:9a:bc:de:f0']))).toBe('02:78:9a:bc:de:f1');
    expect(instanceMac('i-00000ffffffffff', new Set(['02:ff:ff:ff:ff:ff']))).toBe('02:00:00:00:00:00');
    expect(instanceMac('i-12345678', new Set())).toBe('02:00:12:34:56:78');
  });

  it('names addresses and ids', () => {
    expect(privateDnsName('172.31.0.5', 'koala-1.compute.internal')).toBe('ip-172-31-0-5.koala-1.compute.internal');
    expect(publicDnsName('198.51.100.7', 'koala-1')).toBe('ec2-198-51-100-7.koala-1.compute.koala');
    expect(defaultSubnetId('koala-1', 'koala-1a')).toMatch(/^subnet-[0-9a-f]{17}$/);
    expect(defaultSubnetId('koala-1', 'koala-1a')).toBe(defaultSubnetId('koala-1', 'koala-1a'));
    expect(defaultSubnetId('koala-1', 'koala-1b')).not.toBe(defaultSubnetId('koala-1', 'koala-1a'));
  });
});
