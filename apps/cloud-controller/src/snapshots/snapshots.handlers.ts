import { Inject, Injectable } from '@nestjs/common';
import { Ec2Error, FILTER_SHAPES, PAGE_SHAPES, type Params, readFilters, readPermissionChange, readTagSpecifications, TAG_SPECIFICATION_SHAPES, type XmlValue } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { tagSet } from '../tags/tags.service.js';
import { SnapshotsService, type SnapshotView } from './snapshots.service.js';

const dryRun = (p: Params) => p.bool('DryRun') === true;

export function snapshotItem(v: SnapshotView): Record<string, XmlValue> {
  const s = v.snapshot;
  return {
    snapshotId: s.id,
    volumeId: s.volumeId,
    status: s.state,
    startTime: s.startTime,
    progress: `${s.progress}%`,
    ownerId: s.accountId,
    volumeSize: s.volumeSizeGiB,
    description: s.description,
    encrypted: false,
    storageTier: 'standard',
    stateMessage: s.stateReasonMessage ?? undefined,
    tagSet: v.tags.length ? tagSet(v.tags) : undefined,
  };
}

/** The snapshot actions: parse -> SnapshotsService -> output shape. */
@Injectable()
export class SnapshotsHandlers {
  constructor(@Inject(SnapshotsService) private readonly snapshots: SnapshotsService) {}

  @Ec2Action('CreateSnapshot', { params: ['VolumeId', 'Description', ...TAG_SPECIFICATION_SHAPES, 'DryRun'] })
  async create(ctx: Ec2Context) {
    const p = ctx.params;
    const v = await this.snapshots.create(ctx.account, ctx.now, {
      volumeId: p.str('VolumeId', { required: true }),
      description: p.str('Description'),
      tagSpecifications: readTagSpecifications(p),
      dryRun: dryRun(p),
    });
    return snapshotItem(v);
  }

  // SDKs presign a cross-region copy (PresignedUrl, DestinationRegion): the copy stays in this region, so the URL is not needed
  @Ec2Action('CopySnapshot', { params: ['SourceSnapshotId', 'SourceRegion', 'DestinationRegion', 'Description', 'Encrypted', ...TAG_SPECIFICATION_SHAPES, 'DryRun'], ignored: ['PresignedUrl'] })
  async copy(ctx: Ec2Context) {
    const p = ctx.params;
    const v = await this.snapshots.copy(ctx.account, ctx.now, {
      sourceSnapshotId: p.str('SourceSnapshotId', { required: true }),
      sourceRegion: p.str('SourceRegion', { required: true }),
      destinationRegion: p.str('DestinationRegion'),
      description: p.str('Description'),
      encrypted: p.bool('Encrypted'),
      tagSpecifications: readTagSpecifications(p),
      dryRun: dryRun(p),
    });
    return { snapshotId: v.snapshot.id, tagSet: v.tags.length ? tagSet(v.tags) : undefined };
  }

  @Ec2Action('DescribeSnapshots', { params: ['SnapshotId.N', 'Owner.N', 'OwnerId.N', 'RestorableBy.N', ...FILTER_SHAPES, ...PAGE_SHAPES, 'DryRun'] })
  async describe(ctx: Ec2Context) {
    const p = ctx.params;
    const q = {
      ids: p.list('SnapshotId'),
      ownerIds: p.list('Owner').concat(p.list('OwnerId')),
      restorableBy: p.list('RestorableBy'),
      filters: readFilters(p),
      maxResults: p.int('MaxResults'),
      nextToken: p.str('NextToken') || undefined,
    };
    if (dryRun(p)) throw Ec2Error.dryRun();
    const { snapshots, nextToken } = await this.snapshots.describe(ctx.account, q);
    return { snapshotSet: snapshots.map(snapshotItem), nextToken };
  }

  @Ec2Action('DeleteSnapshot', { params: ['SnapshotId', 'DryRun'] })
  async delete(ctx: Ec2Context) {
    const p = ctx.params;
    await this.snapshots.delete(ctx.account, p.str('SnapshotId', { required: true }), dryRun(p));
    return { return: true };
  }

  @Ec2Action('DescribeSnapshotAttribute', { params: ['SnapshotId', 'Attribute', 'DryRun'] })
  async describeAttribute(ctx: Ec2Context) {
    const p = ctx.params;
    const id = p.str('SnapshotId', { required: true });
    const attribute = p.enum('Attribute', ['createVolumePermission', 'productCodes'] as const, { required: true });
    if (dryRun(p)) throw Ec2Error.dryRun();
    const { snapshot, accounts } = await this.snapshots.describePermissions(ctx.account, id);
    if (attribute === 'productCodes') return { snapshotId: snapshot.id, productCodes: [] };
    const perms: XmlValue[] = accounts.map((a) => ({ userId: a }));
    if (snapshot.isPublic) perms.unshift({ group: 'all' });
    return { snapshotId: snapshot.id, createVolumePermission: perms };
  }

  @Ec2Action('ModifySnapshotAttribute', {
    params: [
      'SnapshotId',
      'Attribute',
      'OperationType',
      'UserId.N',
      'UserGroup.N',
      'CreateVolumePermission.Add.N.UserId',
      'CreateVolumePermission.Add.N.Group',
      'CreateVolumePermission.Remove.N.UserId',
      'CreateVolumePermission.Remove.N.Group',
      'DryRun',
    ],
  })
  async modifyAttribute(ctx: Ec2Context) {
    const p = ctx.params;
    const id = p.str('SnapshotId', { required: true });
    const attr = p.str('Attribute');
    if (attr !== undefined && attr !== 'createVolumePermission') throw Ec2Error.invalidParameterValue('Attribute', attr, 'Only createVolumePermission can be modified.');
    await this.snapshots.modifyPermissions(ctx.account, id, readPermissionChange(p, 'CreateVolumePermission'), dryRun(p));
    return { return: true };
  }

  @Ec2Action('ResetSnapshotAttribute', { params: ['SnapshotId', 'Attribute', 'DryRun'] })
  async resetAttribute(ctx: Ec2Context) {
    const p = ctx.params;
    const id = p.str('SnapshotId', { required: true });
    p.enum('Attribute', ['createVolumePermission'] as const, { required: true });
    await this.snapshots.modifyPermissions(ctx.account, id, { add: { accounts: [], all: false }, remove: { accounts: [], all: false }, reset: true }, dryRun(p));
    return { return: true };
  }
}
