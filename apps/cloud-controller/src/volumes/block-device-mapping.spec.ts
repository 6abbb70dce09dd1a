import { planBlockDevices, type BlockDeviceMappingInput } from './block-device-mapping.js';

const root = { rootDeviceName: '/dev/sda1' };
const m = (deviceName: string, rest: Partial<BlockDeviceMappingInput> = {}, n = 1): BlockDeviceMappingInput => ({ at: `BlockDeviceMapping.${n}`, deviceName, ...rest });
const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'no error';
  } catch (e) {
    return `${(e as { code: string }).code}: ${(e as Error).message}`;
  }
};

describe('planBlockDevices', () => {
  it('returns the EBS mappings with DeleteOnTermination defaulting to true; ephemeral and NoDevice change nothing', () => {
    expect(
      planBlockDevices(
        [
          m('/dev/sdf', { ebs: { volumeSize: 2 } }),
          m('/dev/xvdg', { ebs: { snapshotId: 'snap-0123456789abcdef0', deleteOnTermination: false } }, 2),
          m('/dev/sdb', { virtualName: 'ephemeral0' }, 3),
          m('/dev/sda1', { noDevice: true }, 4),
        ],
        root,
      ),
    ).toEqual([
      { at: 'BlockDeviceMapping.1', deviceName: '/dev/sdf', sizeGiB: 2, snapshotId: undefined, deleteOnTermination: true, volumeType: undefined, iops: undefined },
      { at: 'BlockDeviceMapping.2', deviceName: '/dev/xvdg', sizeGiB: undefined, snapshotId: 'snap-0123456789abcdef0', deleteOnTermination: false, volumeType: undefined, iops: undefined },
    ]);
  });

  it.each([
    ['/dev/sde', { ebs: { volumeSize: 1 } }, 'InvalidParameterValue'],
    ['/dev/xvdq', { ebs: { volumeSize: 1 } }, 'InvalidParameterValue'],
    ['/dev/vda', { ebs: { volumeSize: 1 } }, 'InvalidParameterValue'],
    ['/dev/sda', { ebs: { volumeSize: 1 } }, 'InvalidParameterValue: Value (/dev/sda) for parameter BlockDeviceMapping.1.DeviceName is invalid. The root device'],
    ['/dev/sdf', { ebs: { volumeSize: 16385 } }, 'InvalidParameterValue'],
    ['/dev/sdf', { ebs: {} }, 'MissingParameter'],
    ['/dev/sdf', { ebs: { volumeSize: 1, encrypted: true } }, 'InvalidParameterValue'],
    ['/dev/sdf', {}, 'MissingParameter'],
    ['/dev/sdf', { ebs: { volumeSize: 1 }, virtualName: 'ephemeral0' }, 'InvalidParameterCombination'],
    ['/dev/sdb', { virtualName: 'ephemeral' }, 'InvalidParameterValue'],
  ] as Array<[string, Partial<BlockDeviceMappingInput>, string]>)('%s %j → %s', (device, rest, code) => {
    expect(codeOf(() => planBlockDevices([m(device, rest)], root))).toContain(code);
  });

  it('refuses a device named twice', () => {
    expect(codeOf(() => planBlockDevices([m('/dev/sdf', { ebs: { volumeSize: 1 } }), m('/dev/sdf', { virtualName: 'ephemeral0' }, 2)], root))).toContain('InvalidParameterValue');
  });
});
