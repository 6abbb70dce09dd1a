import { Inject, Injectable } from '@nestjs/common';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { readMetadataOptions } from './network-params.js';
import { NetworkPublisher } from './network-publisher.js';
import { NetworkService } from './network.service.js';

/** ModifyInstanceMetadataOptions: parse -> NetworkService -> EC2's answer (the NCs get it through the zone's network state). */
@Injectable()
export class NetworkHandlers {
  constructor(
    @Inject(NetworkService) private readonly network: NetworkService,
    @Inject(NetworkPublisher) private readonly publisher: NetworkPublisher,
  ) {}

  @Ec2Action('ModifyInstanceMetadataOptions', { params: ['InstanceId', 'HttpTokens', 'HttpPutResponseHopLimit', 'HttpEndpoint', 'HttpProtocolIpv6', 'InstanceMetadataTags', 'DryRun'] })
  async modifyMetadataOptions(ctx: Ec2Context) {
    const p = ctx.params;
    const instanceId = p.str('InstanceId', { required: true });
    const input = readMetadataOptions(p);
    p.enum('HttpProtocolIpv6', ['disabled'] as const);
    p.enum('InstanceMetadataTags', ['disabled'] as const);
    const { zone, options } = await this.network.modifyMetadataOptions(ctx.account, instanceId, input, p.bool('DryRun') === true);
    this.publisher.changed([zone]);
    return {
      instanceId,
      instanceMetadataOptions: { state: 'pending', ...options, httpProtocolIpv6: 'disabled', instanceMetadataTags: 'disabled' },
    };
  }
}
