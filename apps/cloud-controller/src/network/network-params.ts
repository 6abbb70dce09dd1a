/** EC2 parameters of guest networking shared by several actions (RunInstances, ModifyInstanceMetadataOptions). */
import type { Params } from '@koala/ec2-query';

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

/** RunInstances' `AssociatePublicIpAddress` (also as `NetworkInterface.1.AssociatePublicIpAddress`); undefined: the cloud's default. */
export function readAssociatePublicIp(p: Params): boolean | undefined {
  return p.bool('NetworkInterface.1.AssociatePublicIpAddress') ?? p.bool('AssociatePublicIpAddress');
}

/** RunInstances' `SubnetId` (also as `NetworkInterface.1.SubnetId`). */
export function readSubnetId(p: Params): string | undefined {
  return p.str('NetworkInterface.1.SubnetId') || p.str('SubnetId') || undefined;
}
