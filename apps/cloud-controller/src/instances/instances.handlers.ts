import { Inject, Injectable } from '@nestjs/common';
import { Ec2Error, FILTER_SHAPES, PAGE_SHAPES, type Params, readFilters, readTagSpecifications, TAG_SPECIFICATION_SHAPES, type XmlValue } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { reachability, InstancesService, INSTANCE_ATTRIBUTES, type AttributeChange, type InstanceAttributeName, type StateChange, type StatusView } from './instances.service.js';
import type { BlockDeviceMappingInput } from '../volumes/block-device-mapping.js';
import { blockDeviceItem, reservationItem, stateItem } from './instance-view.js';
import { LAUNCH_NETWORK_SHAPES, readLaunchNetwork, readMetadataOptions } from '../network/network-params.js';

/** RunInstances' `BlockDeviceMapping.N.{DeviceName, Ebs.*, VirtualName, NoDevice}`. */
function readBlockDeviceMappings(p: Params): BlockDeviceMappingInput[] {
  return p.members('BlockDeviceMapping').map((m) => {
    const at = m.prefix.slice(0, -1);
    const e = m.child('Ebs');
    return {
      at,
      deviceName: m.str('DeviceName', { required: true }),
      ebs: e && {
        volumeSize: e.int('VolumeSize'),
        snapshotId: e.str('SnapshotId') || undefined,
        deleteOnTermination: e.bool('DeleteOnTermination'),
        volumeType: e.str('VolumeType') || undefined,
        iops: e.int('Iops'),
        encrypted: e.bool('Encrypted'),
      },
      virtualName: m.str('VirtualName') || undefined,
      noDevice: m.has('NoDevice') || undefined,
    };
  });
}

/**
 * `InstanceId` (AWS) or `InstanceId.1` (boto 2 / euca2ools send the list form): exactly one
 * instance either way.
 */
export function readSingleInstanceId(p: Params): string {
  const list = p.list('InstanceId');
  const single = p.str('InstanceId');
  const all = [...new Set(single === undefined ? list : [single, ...list])];
  if (all.length === 0) throw Ec2Error.missingParameter('InstanceId');
  if (all.length > 1) {
    throw new Ec2Error('InvalidParameterCombination', 'GetConsoleOutput takes exactly one instance id (InstanceId or InstanceId.1).');
  }
  return all[0]!;
}

const changesXml = (changes: StateChange[]) => ({
  instancesSet: changes.map((c) => ({ instanceId: c.instanceId, currentState: c.current, previousState: c.previous })),
});

function statusItem(v: StatusView): Record<string, XmlValue> {
  const i = v.instance;
  const r = reachability(v.status);
  const details = r ? [{ name: 'reachability', status: r, impairedSince: v.status === 'impaired' ? (i.impairedSince ?? undefined) : undefined }] : [];
  return {
    instanceId: i.id,
    availabilityZone: i.zone,
    instanceState: stateItem(i),
    systemStatus: { status: v.status, details },
    instanceStatus: { status: v.status, details },
    eventsSet: [],
  };
}

const ids = (p: Params) => p.list('InstanceId');
const dryRun = (p: Params) => p.bool('DryRun') === true;

/** One value of ModifyInstanceAttribute: `<Name>.Value` or the older `Attribute` + `Value`. */
function readChange(p: Params): AttributeChange {
  const attr = p.str('Attribute');
  const plainValue = p.str('Value');
  if (plainValue !== undefined && attr === undefined) throw Ec2Error.missingParameter('Attribute');
  // attributes EC2 can modify and Koala cannot: refused, never ignored
  const unsupported = ['Kernel', 'Ramdisk', 'SourceDestCheck', 'EbsOptimized'].filter((n) => p.has(`${n}.Value`));
  if (p.list('GroupId').length) unsupported.push('GroupId');
  if (unsupported.length)
    throw new Ec2Error(
      'UnsupportedOperation',
      `${unsupported.join(', ')} cannot be modified here: only instanceType, userData, disableApiTermination, instanceInitiatedShutdownBehavior and blockDeviceMapping can.`,
    );
  if (p.hasAny('BlockDeviceMapping')) {
    const value = p.members('BlockDeviceMapping').map((m) => ({
      deviceName: m.str('DeviceName', { required: true }),
      deleteOnTermination: m.bool('Ebs.DeleteOnTermination', { required: true }),
    }));
    if (!value.length) throw Ec2Error.missingParameter('BlockDeviceMapping.1.DeviceName');
    return { attribute: 'blockDeviceMapping', value };
  }
  const value = (name: string): string | undefined => p.str(`${name}.Value`) ?? (attr?.toLowerCase() === name.toLowerCase() ? p.str('Value') : undefined);
  const given = (['InstanceType', 'UserData', 'DisableApiTermination', 'InstanceInitiatedShutdownBehavior'] as const).filter((n) => value(n) !== undefined);
  if (given.length === 0) {
    if (attr && !['instanceType', 'userData', 'disableApiTermination', 'instanceInitiatedShutdownBehavior'].includes(attr)) {
      throw new Ec2Error('UnsupportedOperation', `The attribute '${attr}' cannot be modified.`);
    }
    throw Ec2Error.missingParameter('Attribute');
  }
  if (given.length > 1) throw Ec2Error.invalidParameterCombination('Only one attribute can be modified at a time.');
  const name = given[0]!;
  const raw = value(name)!;
  switch (name) {
    case 'InstanceType':
      return { attribute: 'instanceType', value: raw };
    case 'UserData': {
      const decoded = p.has('UserData.Value') ? p.base64('UserData.Value') : p.base64('Value');
      return { attribute: 'userData', value: decoded ?? Buffer.alloc(0) };
    }
    case 'DisableApiTermination': {
      const v = raw.trim().toLowerCase();
      if (v !== 'true' && v !== 'false') throw Ec2Error.invalidParameterValue('DisableApiTermination', raw);
      return { attribute: 'disableApiTermination', value: v === 'true' };
    }
    case 'InstanceInitiatedShutdownBehavior':
      if (raw !== 'stop' && raw !== 'terminate') throw Ec2Error.invalidParameterValue('InstanceInitiatedShutdownBehavior', raw, 'Valid values: stop, terminate.');
      return { attribute: 'instanceInitiatedShutdownBehavior', value: raw };
  }
}

/** The instance actions: parse -> InstancesService -> output shape. */
@Injectable()
export class InstancesHandlers {
  constructor(@Inject(InstancesService) private readonly instances: InstancesService) {}

  @Ec2Action('RunInstances', {
    params: [
      'ImageId',
      'InstanceType',
      'MinCount',
      'MaxCount',
      'KeyName',
      'UserData',
      'SecurityGroup.N',
      'SecurityGroupId.N',
      'Placement.AvailabilityZone',
      ...TAG_SPECIFICATION_SHAPES,
      'ClientToken',
      'DisableApiTermination',
      'InstanceInitiatedShutdownBehavior',
      'BlockDeviceMapping.N.DeviceName',
      'BlockDeviceMapping.N.VirtualName',
      'BlockDeviceMapping.N.NoDevice',
      'BlockDeviceMapping.N.Ebs.VolumeSize',
      'BlockDeviceMapping.N.Ebs.SnapshotId',
      'BlockDeviceMapping.N.Ebs.DeleteOnTermination',
      'BlockDeviceMapping.N.Ebs.VolumeType',
      'BlockDeviceMapping.N.Ebs.Iops',
      'BlockDeviceMapping.N.Ebs.Encrypted',
      ...LAUNCH_NETWORK_SHAPES,
      'MetadataOptions.HttpTokens',
      'MetadataOptions.HttpPutResponseHopLimit',
      'MetadataOptions.HttpEndpoint',
      'DryRun',
    ],
  })
  async run(ctx: Ec2Context) {
    const p = ctx.params;
    const network = readLaunchNetwork(p);
    const groupIds = p.list('SecurityGroupId');
    if (groupIds.length && network.groupIds.length) {
      throw Ec2Error.invalidParameterCombination('Network interfaces and an instance-level security groups may not be specified on the same request');
    }
    const r = await this.instances.run(ctx.account, ctx.now, {
      imageId: p.str('ImageId', { required: true }),
      instanceType: p.str('InstanceType') || undefined,
      minCount: p.int('MinCount', { required: true }),
      maxCount: p.int('MaxCount', { required: true }),
      keyName: p.str('KeyName') || undefined,
      userData: p.base64('UserData'),
      groupNames: p.list('SecurityGroup'),
      groupIds: [...groupIds, ...network.groupIds],
      zone: p.str('Placement.AvailabilityZone') || undefined,
      tagSpecifications: readTagSpecifications(p),
      clientToken: p.str('ClientToken') || undefined,
      disableApiTermination: p.bool('DisableApiTermination') ?? false,
      shutdownBehavior: p.enum('InstanceInitiatedShutdownBehavior', ['stop', 'terminate'] as const) ?? 'stop',
      blockDeviceMappings: readBlockDeviceMappings(p),
      associatePublicIp: network.associatePublicIp,
      subnetId: network.subnetId,
      privateIp: network.privateIp,
      metadataOptions: readMetadataOptions(p, 'MetadataOptions.'),
      dryRun: dryRun(p),
    });
    return reservationItem(r.reservation, r.instances);
  }

  @Ec2Action('DescribeInstances', { params: ['InstanceId.N', ...FILTER_SHAPES, ...PAGE_SHAPES, 'DryRun'] })
  async describe(ctx: Ec2Context) {
    const p = ctx.params;
    const q = { ids: ids(p), filters: readFilters(p), maxResults: p.int('MaxResults'), nextToken: p.str('NextToken') || undefined };
    if (dryRun(p)) throw Ec2Error.dryRun();
    const { reservations, nextToken } = await this.instances.describe(ctx.account, ctx.now, q);
    return { reservationSet: reservations.map((r) => reservationItem(r.reservation, r.instances)), nextToken };
  }

  @Ec2Action('DescribeInstanceStatus', { params: ['InstanceId.N', ...FILTER_SHAPES, ...PAGE_SHAPES, 'IncludeAllInstances', 'DryRun'] })
  async describeStatus(ctx: Ec2Context) {
    const p = ctx.params;
    const q = { ids: ids(p), filters: readFilters(p), includeAll: p.bool('IncludeAllInstances') ?? false, maxResults: p.int('MaxResults'), nextToken: p.str('NextToken') || undefined };
    if (dryRun(p)) throw Ec2Error.dryRun();
    const { statuses, nextToken } = await this.instances.describeStatus(ctx.account, ctx.now, q);
    return { instanceStatusSet: statuses.map(statusItem), nextToken };
  }

  @Ec2Action('TerminateInstances', { params: ['InstanceId.N', 'DryRun'] })
  async terminate(ctx: Ec2Context) {
    return changesXml(await this.instances.terminate(ctx.account, ctx.now, ids(ctx.params), dryRun(ctx.params)));
  }

  @Ec2Action('StopInstances', { params: ['InstanceId.N', 'Force', 'DryRun'] })
  async stop(ctx: Ec2Context) {
    const p = ctx.params;
    return changesXml(await this.instances.stop(ctx.account, ctx.now, ids(p), p.bool('Force') ?? false, dryRun(p)));
  }

  @Ec2Action('StartInstances', { params: ['InstanceId.N', 'DryRun'] })
  async start(ctx: Ec2Context) {
    return changesXml(await this.instances.start(ctx.account, ctx.now, ids(ctx.params), dryRun(ctx.params)));
  }

  @Ec2Action('RebootInstances', { params: ['InstanceId.N', 'DryRun'] })
  async reboot(ctx: Ec2Context) {
    await this.instances.reboot(ctx.account, ctx.now, ids(ctx.params), dryRun(ctx.params));
    return { return: true };
  }

  @Ec2Action('GetConsoleOutput', { params: ['InstanceId', 'InstanceId.N', 'Latest', 'DryRun'] })
  async consoleOutput(ctx: Ec2Context) {
    const p = ctx.params;
    const r = await this.instances.consoleOutput(ctx.account, ctx.now, readSingleInstanceId(p), p.bool('Latest') ?? false, dryRun(p));
    return { instanceId: r.instance.id, timestamp: r.timestamp, output: r.output };
  }

  @Ec2Action('DescribeInstanceAttribute', { params: ['InstanceId', 'Attribute', 'DryRun'] })
  async describeAttribute(ctx: Ec2Context) {
    const p = ctx.params;
    const id = p.str('InstanceId', { required: true });
    const attribute = p.enum('Attribute', INSTANCE_ATTRIBUTES, { required: true }) as InstanceAttributeName;
    const { instance: i, groups, blockDevices } = await this.instances.describeAttribute(ctx.account, ctx.now, id, attribute, dryRun(p));
    const value = (v: XmlValue) => ({ value: v });
    const out: Record<string, XmlValue> = { instanceId: i.id };
    switch (attribute) {
      case 'instanceType':
        out.instanceType = value(i.instanceType);
        break;
      case 'kernel':
        out.kernel = i.kernelId ? value(i.kernelId) : {};
        break;
      case 'ramdisk':
        out.ramdisk = i.ramdiskId ? value(i.ramdiskId) : {};
        break;
      case 'userData':
        out.userData = i.userData ? value(i.userData) : {};
        break;
      case 'disableApiTermination':
        out.disableApiTermination = value(i.disableApiTermination);
        break;
      case 'instanceInitiatedShutdownBehavior':
        out.instanceInitiatedShutdownBehavior = value(i.shutdownBehavior);
        break;
      case 'rootDeviceName':
        out.rootDeviceName = value(i.rootDeviceName);
        break;
      case 'blockDeviceMapping':
        out.blockDeviceMapping = blockDevices.map(blockDeviceItem);
        break;
      case 'productCodes':
        out.productCodes = [];
        break;
      case 'sourceDestCheck':
        out.sourceDestCheck = value(true);
        break;
      case 'groupSet':
        out.groupSet = groups.map((g) => ({ groupId: g.groupId }));
        break;
      case 'ebsOptimized':
        out.ebsOptimized = value(false);
        break;
      case 'enaSupport':
        out.enaSupport = value(false);
        break;
      case 'sriovNetSupport':
        out.sriovNetSupport = {};
        break;
      case 'disableApiStop':
        out.disableApiStop = value(false);
        break;
    }
    return out;
  }

  @Ec2Action('ModifyInstanceAttribute', {
    params: [
      'InstanceId',
      'Attribute',
      'Value',
      'InstanceType.Value',
      'UserData.Value',
      'DisableApiTermination.Value',
      'InstanceInitiatedShutdownBehavior.Value',
      'BlockDeviceMapping.N.DeviceName',
      'BlockDeviceMapping.N.Ebs.DeleteOnTermination',
      'GroupId.N',
      'Kernel.Value',
      'Ramdisk.Value',
      'SourceDestCheck.Value',
      'EbsOptimized.Value',
      'DryRun',
    ],
  })
  async modifyAttribute(ctx: Ec2Context) {
    const p = ctx.params;
    const id = p.str('InstanceId', { required: true });
    await this.instances.modifyAttribute(ctx.account, ctx.now, id, readChange(p), dryRun(p));
    return { return: true };
  }
}
