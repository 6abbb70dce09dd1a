import { Inject, Injectable } from '@nestjs/common';
import { Ec2Error, FILTER_SHAPES, PAGE_SHAPES, type Params, readFilters, readTagSpecifications, TAG_SPECIFICATION_SHAPES } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { attachmentItem, volumeItem, volumeStatusItem } from './volume-view.js';
import { VolumesService } from './volumes.service.js';

const dryRun = (p: Params) => p.bool('DryRun') === true;
const query = (p: Params) => ({ ids: p.list('VolumeId'), filters: readFilters(p), maxResults: p.int('MaxResults'), nextToken: p.str('NextToken') || undefined });

/** The volume actions: parse -> VolumesService -> output shape. */
@Injectable()
export class VolumesHandlers {
  constructor(@Inject(VolumesService) private readonly volumes: VolumesService) {}

  @Ec2Action('CreateVolume', { params: ['Size', 'SnapshotId', 'AvailabilityZone', 'VolumeType', 'Iops', 'Encrypted', ...TAG_SPECIFICATION_SHAPES, 'ClientToken', 'DryRun'] })
  async create(ctx: Ec2Context) {
    const p = ctx.params;
    const v = await this.volumes.create(ctx.account, ctx.now, {
      sizeGiB: p.int('Size'),
      snapshotId: p.str('SnapshotId') || undefined,
      zone: p.str('AvailabilityZone') || undefined,
      volumeType: p.str('VolumeType') || undefined,
      iops: p.int('Iops'),
      encrypted: p.bool('Encrypted'),
      tagSpecifications: readTagSpecifications(p),
      clientToken: p.str('ClientToken') || undefined,
      dryRun: dryRun(p),
    });
    return volumeItem(v);
  }

  @Ec2Action('DescribeVolumes', { params: ['VolumeId.N', ...FILTER_SHAPES, ...PAGE_SHAPES, 'DryRun'] })
  async describe(ctx: Ec2Context) {
    const q = query(ctx.params);
    if (dryRun(ctx.params)) throw Ec2Error.dryRun();
    const { volumes, nextToken } = await this.volumes.describe(ctx.account, ctx.now, q);
    return { volumeSet: volumes.map(volumeItem), nextToken };
  }

  @Ec2Action('DescribeVolumeStatus', { params: ['VolumeId.N', ...FILTER_SHAPES, ...PAGE_SHAPES, 'DryRun'] })
  async describeStatus(ctx: Ec2Context) {
    const q = query(ctx.params);
    if (dryRun(ctx.params)) throw Ec2Error.dryRun();
    const { statuses, nextToken } = await this.volumes.describeStatus(ctx.account, ctx.now, q);
    return { volumeStatusSet: statuses.map(volumeStatusItem), nextToken };
  }

  @Ec2Action('DeleteVolume', { params: ['VolumeId', 'DryRun'] })
  async delete(ctx: Ec2Context) {
    const p = ctx.params;
    await this.volumes.delete(ctx.account, p.str('VolumeId', { required: true }), dryRun(p));
    return { return: true };
  }

  @Ec2Action('AttachVolume', { params: ['VolumeId', 'InstanceId', 'Device', 'DryRun'] })
  async attach(ctx: Ec2Context) {
    const p = ctx.params;
    const a = await this.volumes.attach(ctx.account, ctx.now, {
      volumeId: p.str('VolumeId', { required: true }),
      instanceId: p.str('InstanceId', { required: true }),
      device: p.str('Device', { required: true }),
      dryRun: dryRun(p),
    });
    return attachmentItem(a);
  }

  @Ec2Action('DetachVolume', { params: ['VolumeId', 'InstanceId', 'Device', 'Force', 'DryRun'] })
  async detach(ctx: Ec2Context) {
    const p = ctx.params;
    const a = await this.volumes.detach(ctx.account, {
      volumeId: p.str('VolumeId', { required: true }),
      instanceId: p.str('InstanceId') || undefined,
      device: p.str('Device') || undefined,
      force: p.bool('Force') ?? false,
      dryRun: dryRun(p),
    });
    return attachmentItem(a);
  }
}
