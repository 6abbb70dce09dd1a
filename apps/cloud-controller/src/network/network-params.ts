/** EC2 parameters of guest networking shared by several actions (RunInstances, ModifyInstanceMetadataOptions). */
import { Ec2Error, type Params } from '@koala/ec2-query';

export interface MetadataOptionsInput {
  httpTokens?: 'optional' | 'required';
  httpPutResponseHopLimit?: number;
  httpEndpoint?: 'enabled' | 'disabled';
}

/** `<prefix>HttpTokens`, `HttpPutResponseHopLimit` (1-64), `HttpEndpoint`: bad values → InvalidParameterValue. */
export function readMetadataOptions(p: Params, prefix = ''): MetadataOptionsInput {
  return {
    httpTokens: p.enum(`${prefix}HttpTokens`, ['optional', 'required'] as const),
    httpPutResponseHopLimit: p.int(`${prefix}HttpPutResponseHopLimit`, { min: 1, max: 64 }),
    httpEndpoint: p.enum(`${prefix}HttpEndpoint`, ['enabled', 'disabled'] as const),
  };
}

/** What RunInstances says about the instance's one interface (`SubnetId`, `NetworkInterface.1.*`, ...). */
export interface LaunchNetworkInput {
  /** undefined: the cloud's default (KOALA_ASSOCIATE_PUBLIC_IP). */
  associatePublicIp?: boolean;
  subnetId?: string;
  /** `NetworkInterface.1.SecurityGroupId.N` (joined to `SecurityGroupId.N` by the caller). */
  groupIds: string[];
  privateIp?: string;
}

const ONE_INTERFACE = "Instances in Koala's flat zone network have exactly one network interface (device index 0), created and deleted with the instance";

/**
 * RunInstances' network parameters: top-level `SubnetId`, `AssociatePublicIpAddress`,
 * `PrivateIpAddress`, or the same in `NetworkInterface.1.{SubnetId, AssociatePublicIpAddress,
 * PrivateIpAddress, SecurityGroupId.N, DeviceIndex, DeleteOnTermination}` (what boto3 and
 * ansible send). What a flat network cannot do is refused: a second interface, an existing
 * interface, DeleteOnTermination=false, a name given both ways.
 */
export function readLaunchNetwork(p: Params): LaunchNetworkInput {
  const top = { associatePublicIp: p.bool('AssociatePublicIpAddress'), subnetId: p.str('SubnetId') || undefined, privateIp: p.str('PrivateIpAddress') || undefined };
  const nis = p.members('NetworkInterface');
  if (nis.length > 1) throw new Ec2Error('UnsupportedOperation', `${ONE_INTERFACE}: give at most one NetworkInterface.`);
  const ni = nis[0];
  if (!ni) return { ...top, groupIds: [] };
  const index = ni.int('DeviceIndex');
  if (index !== undefined && index !== 0) throw new Ec2Error('UnsupportedOperation', `${ONE_INTERFACE}: ${ni.fullName('DeviceIndex')} must be 0.`);
  if (ni.str('NetworkInterfaceId') !== undefined) throw new Ec2Error('UnsupportedOperation', `${ONE_INTERFACE}: an existing interface cannot be attached.`);
  if (ni.bool('DeleteOnTermination') === false) throw new Ec2Error('UnsupportedOperation', `${ONE_INTERFACE}: ${ni.fullName('DeleteOnTermination')} cannot be false.`);
  const inner = { associatePublicIp: ni.bool('AssociatePublicIpAddress'), subnetId: ni.str('SubnetId') || undefined, privateIp: ni.str('PrivateIpAddress') || undefined };
  for (const [k, name] of [
    ['subnetId', 'SubnetId'],
    ['associatePublicIp', 'AssociatePublicIpAddress'],
    ['privateIp', 'PrivateIpAddress'],
  ] as const) {
    if (top[k] !== undefined && inner[k] !== undefined) {
      throw Ec2Error.invalidParameterCombination(`Network interfaces and an instance-level ${name} may not be specified on the same request`);
    }
  }
  return {
    associatePublicIp: inner.associatePublicIp ?? top.associatePublicIp,
    subnetId: inner.subnetId ?? top.subnetId,
    privateIp: inner.privateIp ?? top.privateIp,
    groupIds: ni.list('SecurityGroupId'),
  };
}

/** RunInstances' network parameter shapes (see `readLaunchNetwork`). */
export const LAUNCH_NETWORK_SHAPES = [
  'AssociatePublicIpAddress',
  'SubnetId',
  'PrivateIpAddress',
  'NetworkInterface.N.DeviceIndex',
  'NetworkInterface.N.NetworkInterfaceId',
  'NetworkInterface.N.DeleteOnTermination',
  'NetworkInterface.N.AssociatePublicIpAddress',
  'NetworkInterface.N.SubnetId',
  'NetworkInterface.N.PrivateIpAddress',
  'NetworkInterface.N.SecurityGroupId.N',
] as const;
