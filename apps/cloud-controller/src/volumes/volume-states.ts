/**
 * The volume state machine, as pure functions over a volume row (no I/O): what a StorageEvent
 * does to a volume, which states allow which user actions, and the status DescribeVolumeStatus
 * shows. VolumesService applies the patches under a row lock.
 */
import type { StorageEvent, VolumeState } from '@koala/contracts';
import { Ec2Error } from '@koala/ec2-query';
import type { VolumeEntity } from './volume.entity.js';

export type Reason = { code: string; message: string };
export type EventDecision = { kind: 'apply'; patch: Partial<VolumeEntity>; deleted?: boolean } | { kind: 'ignore'; why: string };

/** The columns of "not attached". */
export const DETACHED: Pick<VolumeEntity, 'attachInstanceId' | 'attachDevice' | 'attachNode' | 'attachState' | 'attachTime' | 'deleteOnTermination' | 'guestDevice' | 'chapUser' | 'chapSecretEnc'> = {
  attachInstanceId: null,
  attachDevice: null,
  attachNode: null,
  attachState: null,
  attachTime: null,
  deleteOnTermination: false,
  guestDevice: null,
  chapUser: null,
  chapSecretEnc: null,
};

const reasonCols = (r: Reason | null | undefined) => ({ stateReasonCode: r?.code ?? null, stateReasonMessage: r?.message?.slice(0, 512) ?? null });

/**
 * A volume StorageEvent from the zone's SC:
 *  creating → available | error;  deleting → deleted | error.
 * Anything else (duplicates, an `available` arriving after DeleteVolume, unknown volumes) is ignored.
 */
export function decideVolumeEvent(v: Pick<VolumeEntity, 'state' | 'zone'> | undefined, ev: Pick<StorageEvent, 'state' | 'zone' | 'reason'>, now: Date): EventDecision {
  if (!v) return { kind: 'ignore', why: 'unknown' };
  if (v.zone !== ev.zone) return { kind: 'ignore', why: 'other-zone' };
  const to = ev.state as VolumeState;
  if (v.state === to) return { kind: 'ignore', why: 'same' };
  if (v.state === 'creating' && to === 'available') return { kind: 'apply', patch: { state: 'available', ...reasonCols(null) } };
  if (v.state === 'creating' && to === 'error')
    return { kind: 'apply', patch: { state: 'error', ...reasonCols(ev.reason ?? { code: 'Server.InternalError', message: 'the volume could not be created' }) } };
  if (v.state === 'deleting' && to === 'deleted') return { kind: 'apply', patch: { state: 'deleted', deletedAt: now, ...DETACHED }, deleted: true };
  if (v.state === 'deleting' && to === 'error')
    return { kind: 'apply', patch: { state: 'error', ...reasonCols(ev.reason ?? { code: 'Server.InternalError', message: 'the volume could not be deleted' }) } };
  return { kind: 'ignore', why: `stale ${to} while ${v.state}` };
}

/** DeleteVolume: allowed from available, error and creating (the SC serialises it after the create). */
export function checkDeletable(v: Pick<VolumeEntity, 'id' | 'state' | 'attachState' | 'attachInstanceId'>): 'delete' | 'noop' {
  if (v.attachState) throw new Ec2Error('VolumeInUse', `Volume ${v.id} is currently attached to ${v.attachInstanceId}`);
  if (v.state === 'deleting' || v.state === 'deleted') return 'noop';
  if (v.state === 'in-use') throw new Ec2Error('VolumeInUse', `Volume ${v.id} is in use`);
  return 'delete';
}

/** Device names a user may attach at: /dev/sd[b-z], /dev/xvd[b-z], /dev/vd[b-z], /dev/hd[b-z] (optionally one more letter), or xvd[b-z]. */
export const DEVICE_RE = /^(?:\/dev\/(?:sd|xvd|vd|hd)[b-z][a-z]?|xvd[b-z][a-z]?)$/;

export function checkDevice(device: string, rootDevice?: string): void {
  if (!DEVICE_RE.test(device)) throw new Ec2Error('InvalidParameterValue', `Value (${device}) for parameter device is invalid. ${device} is not a valid EBS device name.`);
  if (rootDevice && (device === rootDevice || rootDevice.startsWith(device))) {
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${device}' for unixDevice. Attachment point ${device} is already in use`);
  }
}

/** AttachVolume preconditions on the volume and instance (both rows locked by the caller). */
export function checkAttachable(v: Pick<VolumeEntity, 'id' | 'state' | 'zone' | 'attachState' | 'attachInstanceId'>, i: { id: string; state: string; zone: string; node: string | null }): void {
  if (v.attachState) throw new Ec2Error('VolumeInUse', `${v.id} is already attached to an instance`);
  if (v.state === 'in-use') throw new Ec2Error('VolumeInUse', `${v.id} is already attached to an instance`);
  if (v.state !== 'available') throw new Ec2Error('IncorrectState', `vol '${v.id}' is not 'available'. Current state: ${v.state}.`);
  if (i.zone !== v.zone) throw new Ec2Error('InvalidVolume.ZoneMismatch', `The volume '${v.id}' is not in the same availability zone as instance '${i.id}'`);
  // As EC2: running (hot-plug) or stopped (the disk joins the domain's config, seen at next start).
  if ((i.state !== 'running' && i.state !== 'stopped') || !i.node) {
    throw new Ec2Error('IncorrectState', `Instance '${i.id}' is not in the 'running' or 'stopped' state. Current state: ${i.state}.`);
  }
}

/** DetachVolume preconditions; `force` also retries an attachment stuck in attaching/detaching. */
export function checkDetachable(v: Pick<VolumeEntity, 'id' | 'state' | 'attachState' | 'attachInstanceId' | 'attachDevice'>, q: { instanceId?: string; device?: string; force: boolean }): void {
  if (!v.attachState || !v.attachInstanceId) throw new Ec2Error('IncorrectState', `Volume '${v.id}' is in the '${v.state}' state.`);
  if (q.instanceId && q.instanceId !== v.attachInstanceId) throw new Ec2Error('InvalidAttachment.NotFound', `The volume '${v.id}' is not attached to instance '${q.instanceId}'.`);
  if (q.device && q.device !== v.attachDevice) throw new Ec2Error('InvalidAttachment.NotFound', `The volume '${v.id}' is not attached at '${q.device}'.`);
  if (v.attachState !== 'attached' && !q.force) throw new Ec2Error('IncorrectState', `Volume '${v.id}' is ${v.attachState}; use Force to detach it anyway.`);
}

/** An attachment that failed: the volume is available again and says why. */
export function rolledBack(reason: Reason): Partial<VolumeEntity> {
  return { state: 'available', ...DETACHED, ...reasonCols(reason) };
}

export function detached(): Partial<VolumeEntity> {
  return { state: 'available', ...DETACHED, ...reasonCols(null) };
}

/** DescribeVolumeStatus' status of a volume. */
export function volumeStatus(v: Pick<VolumeEntity, 'state'>): 'ok' | 'impaired' | 'insufficient-data' {
  if (v.state === 'available' || v.state === 'in-use') return 'ok';
  if (v.state === 'error') return 'impaired';
  return 'insufficient-data';
}
