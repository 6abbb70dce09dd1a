import { Ec2Error } from '@koala/ec2-query';
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

/**
 * What a zone component's (CC, NC, SC) failure means for the EC2 caller, and the reason to keep
 * on the resource. Components answer EC2 codes for what the caller got wrong (`VolumeInUse`,
 * `InsufficientInstanceCapacity`) and `Server.<Detail>` for their own failures; the caller gets
 * those as `InternalError` (500, as AWS) while the resource keeps the detailed code for the
 * operator. A zone that does not answer is `Unavailable` (503): try again.
 */
export function zoneError(e: unknown, what: string): { error: Ec2Error; reason: ZoneReason } {
  if (e instanceof Ec2Error) return { error: e, reason: { code: e.code, message: e.message } };
  if (e instanceof BusRemoteError) {
    if (EC2_CODE.test(e.code) && !e.code.startsWith('Server.')) return { error: new Ec2Error(e.code, e.message), reason: { code: e.code, message: e.message } };
    const code = e.code.startsWith('Server.') && EC2_CODE.test(e.code) ? e.code : 'Server.InternalError';
    return { error: new Ec2Error('InternalError', `${what} failed in the zone: ${e.message}`), reason: { code, message: e.message } };
  }
  return {
    error: new Ec2Error('Unavailable', `${what}: the zone did not answer; try again later.`),
    reason: { code: 'Server.Unavailable', message: `${what}: the zone did not answer` },
  };
}
