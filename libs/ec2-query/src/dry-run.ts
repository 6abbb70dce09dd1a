import { Ec2Error } from './errors.js';
import { Params } from './params.js';

/**
 * If `DryRun=true`: throw `DryRunOperation` (412, "Request would have succeeded, but DryRun flag
 * is set.") when `allowed`, else `UnauthorizedOperation` (403). Call after validating the
 * parameters and checking permissions, before any side effect. No-op without DryRun.
 */
export function checkDryRun(params: Params | Readonly<Record<string, string>>, allowed = true): void {
  const p = params instanceof Params ? params : new Params(params);
  if (p.bool('DryRun') !== true) return;
  throw allowed ? Ec2Error.dryRun() : Ec2Error.unauthorized();
}
