import { Params } from '@koala/ec2-query';
import { parseSubnet } from './addressing.js';
import { availableIpCount, coveringCidr, defaultSubnet, defaultVpc } from './default-vpc.js';
import { readLaunchNetwork } from './network-params.js';

describe('default-VPC face', () => {
  it('the VPC CIDR is the smallest block covering every zone subnet', () => {
    expect(coveringCidr(['172.31.0.0/20'])).toBe('172.31.0.0/20');
    expect(coveringCidr(['10.78.0.0/24', '10.78.1.0/24'])).toBe('10.78.0.0/23');
    expect(coveringCidr(['10.78.1.0/24', '10.78.2.0/24'])).toBe('10.78.0.0/22');
    expect(coveringCidr(['10.0.0.0/24', '192.168.0.0/24'])).toBe('0.0.0.0/0');
    expect(coveringCidr([])).toBeUndefined();
    expect(defaultVpc('koala-1', { '*': '172.31.0.0/20', a: '172.31.16.0/20' }, '1').cidrBlock).toBe('172.31.0.0/19');
  });

  it('free addresses: all but network, router, broadcast and the used ones', () => {
    expect(availableIpCount(parseSubnet('10.0.0.0/24'), 0)).toBe(253);
    expect(availableIpCount(parseSubnet('10.0.0.0/28'), 20)).toBe(0);
    expect(defaultSubnet('koala-1', { z: '10.0.0.0/24' }, { name: 'other', zoneId: 'x' }, '1', 0, true)).toBeUndefined();
    expect(defaultSubnet('koala-1', { '*': '10.0.0.0/24' }, { name: 'other', zoneId: 'x' }, '1', 3, false)).toMatchObject({
      cidrBlock: '10.0.0.0/24',
      availableIpAddressCount: 250,
      mapPublicIpOnLaunch: false,
    });
  });
});

describe('readLaunchNetwork', () => {
  const read = (m: Record<string, string>) => readLaunchNetwork(new Params(m));
  const code = (m: Record<string, string>) => {
    try {
      read(m);
      return 'ok';
    } catch (e) {
      return (e as { code: string }).code;
    }
  };
  it('reads the top-level and the NetworkInterface.1 forms', () => {
    expect(read({ SubnetId: 's', AssociatePublicIpAddress: 'false' })).toEqual({ subnetId: 's', associatePublicIp: false, privateIp: undefined, groupIds: [] });
    expect(
      read({
        'NetworkInterface.1.DeviceIndex': '0',
        'NetworkInterface.1.SubnetId': 's',
        'NetworkInterface.1.SecurityGroupId.1': 'sg-1',
        'NetworkInterface.1.PrivateIpAddress': '10.0.0.9',
        'NetworkInterface.1.DeleteOnTermination': 'true',
      }),
    ).toEqual({
      subnetId: 's',
      associatePublicIp: undefined,
      privateIp: '10.0.0.9',
      groupIds: ['sg-1'],
    });
  });
  it('refuses what one flat interface cannot be', () => {
    expect(code({ 'NetworkInterface.1.DeviceIndex': '0', 'NetworkInterface.2.DeviceIndex': '1' })).toBe('UnsupportedOperation');
    expect(code({ 'NetworkInterface.1.DeviceIndex': '1' })).toBe('UnsupportedOperation');
    expect(code({ 'NetworkInterface.1.NetworkInterfaceId': 'eni-1' })).toBe('UnsupportedOperation');
    expect(code({ 'NetworkInterface.1.DeleteOnTermination': 'false' })).toBe('UnsupportedOperation');
    expect(code({ 'NetworkInterface.1.SubnetId': 's', SubnetId: 's' })).toBe('InvalidParameterCombination');
  });
});
