/** How volumes read in EC2 responses. */
import type { XmlValue } from '@koala/ec2-query';
import { tagSet } from '../tags/tags.service.js';
import type { AttachmentView, VolumeStatusView, VolumeView } from './volumes.service.js';

export function volumeItem(v: VolumeView): Record<string, XmlValue> {
  const x = v.volume;
  return {
    volumeId: x.id,
    size: x.sizeGiB,
    snapshotId: x.snapshotId ?? '',
    availabilityZone: x.zone,
    status: x.state,
    createTime: x.createdAt,
    attachmentSet:
      x.attachState && x.attachInstanceId
        ? [{ volumeId: x.id, instanceId: x.attachInstanceId, device: x.attachDevice, status: x.attachState, attachTime: x.attachTime, deleteOnTermination: x.deleteOnTermination }]
        : [],
    volumeType: x.volumeType,
    iops: x.iops ?? undefined,
    encrypted: false,
    multiAttachEnabled: false,
    tagSet: v.tags.length ? tagSet(v.tags) : undefined,
    // Not in AWS's shape (clients ignore it): why the last attach failed, or why the volume is in error.
    stateReason: x.stateReasonCode ? { code: x.stateReasonCode, message: x.stateReasonMessage ?? x.stateReasonCode } : undefined,
  };
}

export const attachmentItem = (a: AttachmentView): Record<string, XmlValue> => ({
  volumeId: a.volumeId,
  instanceId: a.instanceId,
  device: a.device,
  status: a.status,
  attachTime: a.attachTime,
  deleteOnTermination: a.deleteOnTermination,
});

export function volumeStatusItem(s: VolumeStatusView): Record<string, XmlValue> {
  const detail = s.status === 'ok' ? 'passed' : s.status === 'impaired' ? 'failed' : 'insufficient-data';
  return {
    volumeId: s.volume.id,
    availabilityZone: s.volume.zone,
    volumeStatus: {
      status: s.status,
      details: [
        { name: 'io-enabled', status: detail },
        { name: 'io-performance', status: 'not-applicable' },
      ],
    },
    eventsSet: [],
    actionsSet: [],
  };
}
