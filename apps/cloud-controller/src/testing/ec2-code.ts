import { isEc2Error } from '@koala/ec2-query';

/**
 * For specs: the EC2 error code a call fails with (anything else thrown: its text), or
 * undefined when it succeeds. `expect(await codeOf(service.delete(...))).toBe('InvalidVolume.NotFound')`.
 */
export async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return isEc2Error(e) ? e.code : String(e);
  }
  return undefined;
}
