import { randomUUID } from 'node:crypto';
import { Ec2Error } from '@koala/ec2-query';
import { currentCorrelationId } from '@koala/logging';
import { BusRemoteError } from '@koala/messaging';

/** Why a zone component failed, as kept on a resource (`StateReason` / `stateReason*` columns). */
export interface ZoneReason {
  code: string;
  message: string;
}

/**
 * An AWS-shaped error code a caller can branch on: `UpperCamel` words, dot-separated
 * (`InvalidVolume.ZoneMismatch`). Not `ENOENT`, `ERR_STREAM_...` or anything else a library
 * may have put in an error's `code`.
 */
const EC2_CODE = /^[A-Z][a-z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)*$/;

/** What a caller sees of an internal failure: no component text, a reference to find it in the logs. */
export function internalErrorMessage(ref: string | undefined = currentCorrelationId()): string {
  return ref ? `An internal error has occurred (request id ${ref}).` : 'An internal error has occurred.';
}

/**
 * A reason reported by a component (event or answer), as kept on a resource and shown to its
 * owner: the detail of a `Server.*` failure (host paths, libvirt/tgt/qemu text) goes to `log`
 * under a reference (the request's correlation id, else a new one) and the message becomes
 * generic; client reasons (`Client.*`, EC2 codes) are the caller's own business and stay.
 */
export function publicReason<R extends ZoneReason | null | undefined>(reason: R, log: (ref: string, detail: ZoneReason) => void): R {
  if (!reason || !reason.code.startsWith('Server.')) return reason;
  const ref = currentCorrelationId() ?? randomUUID();
  log(ref, reason);
  const standard = STANDARD_SERVER_REASONS[reason.code];
  return { ...reason, message: standard ? `${reason.code}: ${standard} (request id ${ref}).` : internalErrorMessage(ref) };
}
/** EC2's own wording of the server reasons a caller can act on (anything else reads as an internal error). */
const STANDARD_SERVER_REASONS: Readonly<Record<string, string>> = { 'Server.InsufficientInstanceCapacity': 'Insufficient capacity to satisfy instance request' };

/**
 * What a zone component's (CC, NC, SC) failure means for the EC2 caller, and the reason to keep
 * on the resource. Components answer EC2 codes for what the caller got wrong (`VolumeInUse`,
 * `InsufficientInstanceCapacity`) and `Server.<Detail>` for their own failures; the caller gets
 * those as `InternalError` (500, as AWS) while the resource keeps the detailed code (and a
 * generic message) for the operator. A zone that does not answer is `Unavailable` (503): try again.
 */
export function zoneError(e: unknown, what: string): { error: Ec2Error; reason: ZoneReason } {
  if (e instanceof Ec2Error) return { error: e, reason: { code: e.code, message: e.message } };
  if (e instanceof BusRemoteError) {
    if (EC2_CODE.test(e.code) && !e.code.startsWith('Server.')) return { error: new Ec2Error(e.code, e.message), reason: { code: e.code, message: e.message } };
    const code = e.code.startsWith('Server.') && EC2_CODE.test(e.code) ? e.code : 'Server.InternalError';
    // The error keeps the detail: the EC2 endpoint logs it under the request id and answers a
    // generic message; the resource keeps the generic message with that id.
    return { error: new Ec2Error('InternalError', `${what} failed in the zone: ${e.message}`), reason: { code, message: `${what} failed. ${internalErrorMessage()}` } };
  }
  return {
    error: new Ec2Error('Unavailable', `${what}: the zone did not answer; try again later.`),
    reason: { code: 'Server.Unavailable', message: `${what}: the zone did not answer` },
  };
}
