/**
 * RunInstances' `BlockDeviceMapping.N`, as pure rules (no I/O): which mappings a request may
 * give and what each becomes. EBS mappings become volumes (BlockDevicesService); `VirtualName`
 * (`ephemeralN`) names the instance type's ephemeral disk, which every instance of the type gets
 * anyway; `NoDevice` suppresses a mapping of the image, and Koala images (instance-store) map
 * nothing but their root, so both are accepted and change nothing.
 */
import { Ec2Error } from '@koala/ec2-query';
import { MAX_VOLUME_GIB } from './volumes.service.js';

export interface EbsInput {
  volumeSize?: number;
  snapshotId?: string;
  /** Default true (as AWS for RunInstances). */
  deleteOnTermination?: boolean;
  volumeType?: string;
  iops?: number;
  encrypted?: boolean;
}

/** One `BlockDeviceMapping.N` as given. */
export interface BlockDeviceMappingInput {
  /** Wire prefix for error messages, e.g. `BlockDeviceMapping.2`. */
  at: string;
  deviceName: string;
  ebs?: EbsInput;
  virtualName?: string;
  noDevice?: boolean;
}

/** An EBS mapping that passed the request checks: one volume per launched instance. */
export interface EbsMapping {
  at: string;
  deviceName: string;
  sizeGiB?: number;
  snapshotId?: string;
  deleteOnTermination: boolean;
  volumeType?: string;
  iops?: number;
}

/** Device names an EBS mapping may use. */
export const EBS_DEVICE_RE = /^\/dev\/(?:sd[f-p]|xvd[f-p]|vd[b-z])$/;
/** Device names an instance-store (`ephemeralN`) mapping may use. */
export const EPHEMERAL_DEVICE_RE = /^\/dev\/(?:sd[b-p]|xvd[b-p]|vd[b-z])$/;
const VIRTUAL_NAME_RE = /^ephemeral(\d{1,2})$/;

const isRoot = (device: string, root: string) => device === root || root.startsWith(device) || device.startsWith(root);

/**
 * Checks the mappings of a RunInstances request (InvalidParameterValue / MissingParameter, with
 * the wire names) and returns the EBS ones. Snapshot, volume type and zone checks need the
 * database and the zone: BlockDevicesService.validate does those.
 */
export function planBlockDevices(mappings: readonly BlockDeviceMappingInput[], ctx: { rootDeviceName: string }): EbsMapping[] {
  const seen = new Set<string>();
  const out: EbsMapping[] = [];
  for (const m of mappings) {
    const device = m.deviceName;
    if (seen.has(device)) throw Ec2Error.invalidParameterValue(`${m.at}.DeviceName`, device, `The device '${device}' is used in more than one block-device mapping.`);
    seen.add(device);
    const kinds = [m.ebs !== undefined, m.virtualName !== undefined, m.noDevice === true].filter(Boolean).length;
    if (kinds === 0) throw Ec2Error.missingParameter(`${m.at}.Ebs`);
    if (kinds > 1) throw Ec2Error.invalidParameterCombination(`${m.at}: give one of Ebs, VirtualName and NoDevice.`);
    if (m.noDevice) continue;
    if (isRoot(device, ctx.rootDeviceName)) {
      throw Ec2Error.invalidParameterValue(`${m.at}.DeviceName`, device, `The root device ${ctx.rootDeviceName} of a Koala image is an instance-store disk and cannot be remapped.`);
    }
    if (m.virtualName !== undefined) {
      if (!VIRTUAL_NAME_RE.test(m.virtualName)) throw Ec2Error.invalidParameterValue(`${m.at}.VirtualName`, m.virtualName, 'Valid values: ephemeral0 ... ephemeral23.');
      if (!EPHEMERAL_DEVICE_RE.test(device)) throw Ec2Error.invalidParameterValue(`${m.at}.DeviceName`, device, `${device} is not a valid device name for an instance-store volume.`);
      continue; // the type's ephemeral disk (ephemeral0); names beyond the type's disks are ignored, as AWS does
    }
    const e = m.ebs!;
    if (!EBS_DEVICE_RE.test(device)) {
      throw Ec2Error.invalidParameterValue(`${m.at}.DeviceName`, device, `${device} is not a valid EBS device name: use /dev/sd[f-p], /dev/xvd[f-p] or /dev/vd[b-z].`);
    }
    if (e.volumeSize !== undefined && (e.volumeSize < 1 || e.volumeSize > MAX_VOLUME_GIB)) {
      throw Ec2Error.invalidParameterValue(`${m.at}.Ebs.VolumeSize`, String(e.volumeSize), `Volume size must be between 1 and ${MAX_VOLUME_GIB} GiB.`);
    }
    if (e.volumeSize === undefined && !e.snapshotId) throw Ec2Error.missingParameter(`${m.at}.Ebs.VolumeSize`);
    if (e.encrypted) throw Ec2Error.invalidParameterValue(`${m.at}.Ebs.Encrypted`, 'true', 'Encrypted volumes are not supported.');
    out.push({
      at: m.at,
      deviceName: device,
      sizeGiB: e.volumeSize,
      snapshotId: e.snapshotId,
      deleteOnTermination: e.deleteOnTermination ?? true,
      volumeType: e.volumeType,
      iops: e.iops,
    });
  }
  return out;
}
