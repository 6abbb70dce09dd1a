import { Ec2Error } from './errors.js';
import { readFilters } from './filters.js';
import { Params, parseQueryParams, readActionAndVersion, readPermissionChange, readTagSpecifications, readTags } from './params.js';

function err(fn: () => unknown): Ec2Error {
  try {
    fn();
  } catch (e) {
    if (e instanceof Ec2Error) return e;
    throw e;
  }
  throw new Error('expected an Ec2Error');
}

describe('parseQueryParams', () => {
  it('decodes form bodies, query strings and buffers; first duplicate wins', () => {
    expect(parseQueryParams('Action=RunInstances&A=x+y%2Bz&A=second')).toEqual({ Action: 'RunInstances', A: 'x y+z' });
    expect(parseQueryParams('?a=1')).toEqual({ a: '1' });
    expect(parseQueryParams(Buffer.from('K=%E2%9C%93'))).toEqual({ K: '✓' });
    expect(parseQueryParams(new URLSearchParams({ b: '2' }))).toEqual({ b: '2' });
    expect(parseQueryParams('')).toEqual({});
  });
});

describe('Params', () => {
  const p = Params.from(
    [
      'Action=AuthorizeSecurityGroupIngress',
      'GroupId=sg-1',
      'Count=7',
      'Neg=-3',
      'Bad=7x',
      'DryRun=TRUE',
      'No=false',
      'InstanceId.10=i-c',
      'InstanceId.2=i-b',
      'InstanceId.1=i-a',
      'IpPermissions.2.IpProtocol=udp',
      'IpPermissions.1.IpProtocol=tcp',
      'IpPermissions.1.FromPort=22',
      'IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0/8',
      'IpPermissions.1.IpRanges.3.CidrIp=192.168.0.0/16',
      'IpPermissions.1.IpRanges.3.Description=home',
      'BlockDeviceMapping.1.DeviceName=/dev/sda1',
      'BlockDeviceMapping.1.Ebs.VolumeSize=20',
      'BlockDeviceMapping.1.Ebs.DeleteOnTermination=true',
      'UserData=' + encodeURIComponent(Buffer.from('#!/bin/sh\necho hi').toString('base64')),
      'Weird=abc$',
      'Type=t1.micro',
    ].join('&'),
  );

  it('reads strings, required and missing', () => {
    expect(p.str('GroupId', { required: true })).toBe('sg-1');
    expect(p.str('Nope')).toBeUndefined();
    const e = err(() => p.str('GroupName', { required: true }));
    expect(e.code).toBe('MissingParameter');
    expect(e.httpStatus).toBe(400);
    expect(e.message).toBe('The request must contain the parameter GroupName');
  });

  it('reads integers with bounds', () => {
    expect(p.int('Count')).toBe(7);
    expect(p.int('Neg')).toBe(-3);
    expect(p.int('Nope')).toBeUndefined();
    const bad = err(() => p.int('Bad'));
    expect(bad.code).toBe('InvalidParameterValue');
    expect(bad.message).toContain('Bad');
    expect(err(() => p.int('Count', { max: 5 })).message).toContain('Count');
    expect(err(() => p.int('Count', { min: 10 })).code).toBe('InvalidParameterValue');
    expect(err(() => p.int('MaxCount', { required: true })).code).toBe('MissingParameter');
  });

  it('reads booleans, enums, base64', () => {
    expect(p.bool('DryRun')).toBe(true);
    expect(p.bool('No')).toBe(false);
    expect(err(() => p.bool('Type')).code).toBe('InvalidParameterValue');
    expect(p.enum('Type', ['t1.micro', 'm1.small'] as const)).toBe('t1.micro');
    const e = err(() => p.enum('Type', ['m1.small'] as const));
    expect(e.code).toBe('InvalidParameterValue');
    expect(e.message).toContain('Type');
    expect(p.base64('UserData')!.toString()).toBe('#!/bin/sh\necho hi');
    expect(err(() => p.base64('Weird')).message).toContain('Weird');
  });

  it('lists in numeric order with gaps', () => {
    expect(p.list('InstanceId')).toEqual(['i-a', 'i-b', 'i-c']);
    expect(p.list('Missing')).toEqual([]);
    expect(err(() => p.list('ImageId', { required: true })).message).toBe('The request must contain the parameter ImageId.1');
  });

  it('scopes nested members and names full parameters in errors', () => {
    const perms = p.members('IpPermissions');
    expect(perms.map((m) => m.str('IpProtocol'))).toEqual(['tcp', 'udp']);
    expect(perms[0]!.int('FromPort')).toBe(22);
    const ranges = perms[0]!.members('IpRanges');
    expect(ranges.map((r) => r.str('CidrIp'))).toEqual(['10.0.0.0/8', '192.168.0.0/16']);
    expect(ranges[1]!.str('Description')).toBe('home');
    expect(perms[1]!.members('IpRanges')).toEqual([]);
    const e = err(() => perms[1]!.int('FromPort', { required: true }));
    expect(e.message).toBe('The request must contain the parameter IpPermissions.2.FromPort');

    const bdm = p.members('BlockDeviceMapping')[0]!;
    expect(bdm.str('DeviceName')).toBe('/dev/sda1');
    const ebs = bdm.child('Ebs')!;
    expect(ebs.int('VolumeSize')).toBe(20);
    expect(ebs.bool('DeleteOnTermination')).toBe(true);
    expect(ebs.fullName('VolumeSize')).toBe('BlockDeviceMapping.1.Ebs.VolumeSize');
    expect(bdm.child('VirtualName')).toBeUndefined();
    expect(p.hasAny('BlockDeviceMapping')).toBe(true);
    expect(ebs.entries().sort()).toEqual([
      ['DeleteOnTermination', 'true'],
      ['VolumeSize', '20'],
    ]);
  });
});

describe('shape helpers', () => {
  it('readPermissionChange: both wire forms, one shape', () => {
    const p = Params.from('CreateVolumePermission.Add.1.UserId=111111111111&CreateVolumePermission.Add.2.Group=all&CreateVolumePermission.Remove.1.UserId=222222222222');
    expect(readPermissionChange(p, 'CreateVolumePermission')).toEqual({ add: { accounts: ['111111111111'], all: true }, remove: { accounts: ['222222222222'], all: false } });
    const legacy = Params.from('Attribute=launchPermission&OperationType=remove&UserId.1=333333333333&UserGroup.1=all&LaunchPermission.Add.1.UserId=444444444444');
    expect(readPermissionChange(legacy, 'LaunchPermission')).toEqual({ add: { accounts: ['444444444444'], all: false }, remove: { accounts: ['333333333333'], all: true } });
    expect(readPermissionChange(Params.from('UserId.1=555555555555'), 'LaunchPermission')).toEqual({ add: { accounts: [], all: false }, remove: { accounts: [], all: false } }); // no OperationType: no legacy lists
    expect(err(() => readPermissionChange(Params.from('LaunchPermission.Add.1.Group=everyone'), 'LaunchPermission')).message).toMatch(/LaunchPermission\.Add\.1\.Group/);
    expect(err(() => readPermissionChange(Params.from('OperationType=add&UserGroup.1=friends'), 'CreateVolumePermission')).code).toBe('InvalidParameterValue');
    expect(err(() => readPermissionChange(Params.from('OperationType=grant'), 'LaunchPermission')).code).toBe('InvalidParameterValue');
  });

  it('readFilters', () => {
    const p = Params.from('Filter.2.Name=tag%3AName&Filter.2.Value.1=web*&Filter.1.Name=instance-state-name&Filter.1.Value.2=stopped&Filter.1.Value.1=running');
    expect(readFilters(p)).toEqual([
      { name: 'instance-state-name', values: ['running', 'stopped'] },
      { name: 'tag:Name', values: ['web*'] },
    ]);
    expect(err(() => readFilters(Params.from('Filter.1.Value.1=x'))).message).toBe('The request must contain the parameter Filter.1.Name');
  });

  it('readTagSpecifications and readTags', () => {
    const p = Params.from(
      [
        'TagSpecification.1.ResourceType=instance',
        'TagSpecification.1.Tag.1.Key=Name',
        'TagSpecification.1.Tag.1.Value=web',
        'TagSpecification.1.Tag.2.Key=empty',
        'TagSpecification.2.ResourceType=volume',
        'TagSpecification.2.Tag.1.Key=k',
        'TagSpecification.2.Tag.1.Value=v',
        'Tag.1.Key=a',
        'Tag.1.Value=b',
      ].join('&'),
    );
    expect(readTagSpecifications(p)).toEqual([
      {
        resourceType: 'instance',
        tags: [
          { key: 'Name', value: 'web' },
          { key: 'empty', value: '' },
        ],
      },
      { resourceType: 'volume', tags: [{ key: 'k', value: 'v' }] },
    ]);
    expect(readTags(p)).toEqual([{ key: 'a', value: 'b' }]);
    expect(err(() => readTags(Params.from('Tag.1.Value=x'))).message).toContain('Tag.1.Key');
  });

  it('readActionAndVersion', () => {
    expect(readActionAndVersion(Params.from('Action=DescribeRegions'))).toEqual({ action: 'DescribeRegions', version: '2016-11-15' });
    expect(readActionAndVersion(Params.from('Action=X&Version=2014-06-15')).version).toBe('2014-06-15');
    expect(err(() => readActionAndVersion(Params.from('Version=1'))).code).toBe('MissingAction');
  });
});
