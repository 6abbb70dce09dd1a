import { SetMetadata } from '@nestjs/common';
import type { ParamShapes, Params, QueryApi } from '@koala/ec2-query';

/** Metadata key under which `@Ec2Action(name)` stores the action name on a handler method. */
export const EC2_ACTION_METADATA = 'koala:ec2-action';

/**
 * Everything a handler needs about one authenticated EC2 request.
 *
 * Admin semantics (`account.isAdmin`), the rule every resource handler follows:
 * - Describe actions: the admin account sees every account's resources (no owner filter); other
 *   accounts see only their own. Show the real owner (e.g. `ownerId`) in the output.
 * - Create, Import, Allocate, Run actions: the new resource always belongs to `ctx.account.id`
 *   (the admin creates in its own account; there is no "act as" another account).
 * - Mutating calls on existing resources (Delete, Modify, Authorize, Revoke, Associate,
 *   CreateTags on an id, Terminate, ...): the admin MAY act on any account's resource when it
 *   names it by a globally unique id (`sg-…`, `eipalloc-…`, `i-…`); name-keyed resources
 *   (key pair names, group names without id) resolve in the caller's own account only, so an
 *   admin never deletes another tenant's `default` group or key `k1` by accident.
 * - Never reveal another account's resource to a non-admin: answer `.NotFound` as if it did
 *   not exist.
 */
export interface Ec2Context {
  /** uuid; also the `<requestId>`, the `x-amzn-requestid` header and the log correlation id. */
  requestId: string;
  /** The `Action` parameter, e.g. `DescribeKeyPairs`. */
  action: string;
  /** The `Version` parameter (default `DEFAULT_EC2_VERSION`). */
  version: string;
  /** Query string + form body, merged (the query string wins for a name in both, as SigV2 verification), held against the action's declared `params` (a bare list name already renamed `Name.1`). */
  params: Params;
  /** The verified caller. */
  account: { id: string; name: string; isAdmin: boolean };
  /** The access key id that signed the request (never the secret). */
  accessKeyId: string;
  /** The request's time, from the runtime CLOCK (use it for timestamps instead of `new Date()`). */
  now: Date;
}

/** What `@Ec2Action` stores on a handler. */
export interface Ec2ActionSpec {
  name: string;
  /**
   * Every parameter the action takes, as shapes (`KeyName.N`, `Filter.N.Value.N`; see
   * `ParamShapes`), besides the common ones (Action, Version, signature). A request with any
   * other name is refused `UnknownParameter` before the handler runs; a bare `Name` where
   * `Name.N` is declared means `Name.1`. test/api/parameters.e2e-spec.ts proves each list
   * covers every name its handler reads.
   */
  params: ParamShapes;
  /**
   * Parameters EC2 defines that Koala accepts and does not honour, only where ignoring them is
   * harmless (README lists them); they are part of the accepted names, not read by the handler.
   */
  ignored?: ParamShapes;
  /**
   * An STS/IAM action answered on the EC2 endpoint: its answers and errors (also a failed
   * authentication) are rendered in that service's Query dialect instead of EC2's.
   */
  dialect?: QueryApi;
}

/**
 * Marks a method of an `@Injectable()` provider as the handler of one EC2 action:
 * `(ctx: Ec2Context) => Promise<Record<string, XmlValue>>`, the returned object being the
 * response members rendered by `renderResponse` (lower-camel keys, arrays become `<item>` lists).
 * Throw `Ec2Error` for EC2 errors. The provider must be in a module imported by the CLC app
 * module; `ActionRegistry` finds it at start and refuses duplicate action names.
 *
 * ```ts
 * @Injectable()
 * export class KeyPairsHandlers {
 *   constructor(private readonly keyPairs: KeyPairsService) {}
 *   @Ec2Action('DescribeKeyPairs', { params: ['KeyName.N', ...FILTER_SHAPES] })
 *   async describe(ctx: Ec2Context) { return { keySet: (await this.keyPairs.list(ctx)).map(toXml) }; }
 * }
 * ```
 */
export function Ec2Action(name: string, spec: Omit<Ec2ActionSpec, 'name'>): MethodDecorator {
  if (!/^[A-Z][A-Za-z0-9]*$/.test(name)) throw new Error(`invalid EC2 action name ${JSON.stringify(name)}`);
  return SetMetadata(EC2_ACTION_METADATA, { name, params: spec.params, ignored: spec.ignored, dialect: spec.dialect } satisfies Ec2ActionSpec);
}
