import { Inject, Injectable } from '@nestjs/common';
import { checkDryRun, Ec2Error, FILTER_SHAPES, PAGE_SHAPES, type PermissionSide, readFilters, readPermissionChange, readTagSpecifications, TAG_SPECIFICATION_SHAPES } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { tagSet } from '../tags/tags.service.js';
import { ARCHITECTURES, checkImageId, HYPERVISOR, IMAGE_TYPES, ImagesService, VIRTUALIZATION_TYPES, type ImageView } from './images.service.js';

function imageItem(v: ImageView) {
  const i = v.image;
  return {
    imageId: i.id,
    imageLocation: i.imageLocation,
    imageState: i.state,
    imageOwnerId: i.accountId,
    creationDate: i.createdAt,
    isPublic: i.isPublic,
    architecture: i.architecture,
    imageType: i.imageType,
    kernelId: i.kernelId ?? undefined,
    ramdiskId: i.ramdiskId ?? undefined,
    imageOwnerAlias: v.ownerAlias,
    name: i.name,
    description: i.description ?? undefined,
    rootDeviceType: i.rootDeviceType,
    rootDeviceName: i.rootDeviceName,
    blockDeviceMapping: [],
    virtualizationType: i.virtualizationType,
    hypervisor: HYPERVISOR,
    platformDetails: 'Linux/UNIX',
    usageOperation: 'RunInstances',
    tagSet: tagSet(v.tags),
    stateReason: i.stateReasonCode ? { code: i.stateReasonCode, message: i.stateReasonMessage ?? '' } : undefined,
  };
}

/** RegisterImage, DescribeImages, DeregisterImage, Describe/Modify/ResetImageAttribute. */
@Injectable()
export class ImagesHandlers {
  constructor(@Inject(ImagesService) private readonly images: ImagesService) {}

  @Ec2Action('RegisterImage', {
    params: ['Name', 'Description', 'ImageLocation', 'ImageType', 'Architecture', 'VirtualizationType', 'RootDeviceName', 'KernelId', 'RamdiskId', ...TAG_SPECIFICATION_SHAPES, 'DryRun'],
  })
  async register(ctx: Ec2Context) {
    const p = ctx.params;
    const name = p.str('Name', { required: true });
    const input = {
      name,
      description: p.str('Description'),
      imageLocation: p.str('ImageLocation', { required: true }),
      // Koala extension (Eucalyptus took it from the bundle manifest): register a kernel or ramdisk
      imageType: p.enum('ImageType', IMAGE_TYPES),
      architecture: p.enum('Architecture', ARCHITECTURES),
      virtualizationType: p.enum('VirtualizationType', VIRTUALIZATION_TYPES),
      rootDeviceName: p.str('RootDeviceName') || undefined,
      kernelId: p.str('KernelId') || undefined,
      ramdiskId: p.str('RamdiskId') || undefined,
      tagSpecifications: readTagSpecifications(p),
    };
    checkDryRun(p);
    const image = await this.images.register(ctx.account, ctx.now, input);
    return { imageId: image.id };
  }

  @Ec2Action('DescribeImages', { params: ['ImageId.N', 'Owner.N', 'ExecutableBy.N', ...FILTER_SHAPES, ...PAGE_SHAPES, 'DryRun'], ignored: ['IncludeDeprecated', 'IncludeDisabled'] })
  async describe(ctx: Ec2Context) {
    const p = ctx.params;
    checkDryRun(p);
    const { items, nextToken } = await this.images.describe(ctx.account, {
      imageIds: p.list('ImageId'),
      owners: p.list('Owner'),
      executableBy: p.list('ExecutableBy'),
      filters: readFilters(p),
      maxResults: p.int('MaxResults'),
      nextToken: p.str('NextToken'),
    });
    return { imagesSet: items.map(imageItem), nextToken };
  }

  @Ec2Action('DeregisterImage', { params: ['ImageId', 'DryRun'] })
  async deregister(ctx: Ec2Context) {
    const p = ctx.params;
    const id = checkImageId(p.str('ImageId', { required: true }));
    checkDryRun(p);
    await this.images.deregister(ctx.account, id);
    return { return: true };
  }

  @Ec2Action('DescribeImageAttribute', { params: ['ImageId', 'Attribute', 'DryRun'] })
  async describeAttribute(ctx: Ec2Context) {
    const p = ctx.params;
    const id = checkImageId(p.str('ImageId', { required: true }));
    const attribute = p.enum('Attribute', ['description', 'kernel', 'ramdisk', 'launchPermission', 'productCodes', 'blockDeviceMapping'] as const, { required: true });
    checkDryRun(p);
    const { image, isOwner, permissions } = await this.images.describeAttribute(ctx.account, id);
    switch (attribute) {
      case 'launchPermission':
        if (!isOwner) throw new Ec2Error('AuthFailure', `Not authorized for image:${id}`);
        return { imageId: id, launchPermission: [...(image.isPublic ? [{ group: 'all' }] : []), ...permissions.map((userId) => ({ userId }))] };
      case 'description':
        return { imageId: id, description: { value: image.description ?? undefined } };
      case 'kernel':
        return { imageId: id, kernel: { value: image.kernelId ?? undefined } };
      case 'ramdisk':
        return { imageId: id, ramdisk: { value: image.ramdiskId ?? undefined } };
      case 'productCodes':
        return { imageId: id, productCodes: [] };
      case 'blockDeviceMapping':
        return { imageId: id, blockDeviceMapping: [] };
    }
  }

  @Ec2Action('ModifyImageAttribute', {
    params: [
      'ImageId',
      'Attribute',
      'Value',
      'Description.Value',
      'OperationType',
      'UserId.N',
      'UserGroup.N',
      'LaunchPermission.Add.N.UserId',
      'LaunchPermission.Add.N.Group',
      'LaunchPermission.Remove.N.UserId',
      'LaunchPermission.Remove.N.Group',
      'DryRun',
    ],
  })
  async modifyAttribute(ctx: Ec2Context) {
    const p = ctx.params;
    const id = checkImageId(p.str('ImageId', { required: true }));
    const attribute = p.str('Attribute');
    if (attribute !== undefined && !['launchPermission', 'description'].includes(attribute)) {
      throw Ec2Error.invalidParameterValue('Attribute', attribute, 'Supported attributes: launchPermission, description.');
    }
    const change = readPermissionChange(p, 'LaunchPermission');
    // the older `Attribute=description&Value=…` form; a Value for another attribute is refused, not ignored
    const value = p.str('Value');
    if (value !== undefined && attribute !== 'description') throw Ec2Error.invalidParameterCombination('Value goes with Attribute=description.');
    const description = p.str('Description.Value') ?? (attribute === 'description' ? p.str('Value', { required: true }) : undefined);
    const touched = (s: PermissionSide) => s.accounts.length > 0 || s.all;
    if (!touched(change.add) && !touched(change.remove) && description === undefined) {
      throw Ec2Error.missingParameter('LaunchPermission');
    }
    checkDryRun(p);
    await this.images.modifyAttribute(ctx.account, id, { ...change, description });
    return { return: true };
  }

  @Ec2Action('ResetImageAttribute', { params: ['ImageId', 'Attribute', 'DryRun'] })
  async resetAttribute(ctx: Ec2Context) {
    const p = ctx.params;
    const id = checkImageId(p.str('ImageId', { required: true }));
    p.enum('Attribute', ['launchPermission'] as const, { required: true });
    checkDryRun(p);
    await this.images.resetLaunchPermission(ctx.account, id);
    return { return: true };
  }
}
