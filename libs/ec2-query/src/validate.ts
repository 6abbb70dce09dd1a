import { Ec2Error } from './errors.js';
import { isValidId } from './ids.js';

/** Edge limits on the raw parameter map, before any handler (or database) sees it. */
export interface ParamLimits {
  /** Most parameters in one request. */
  maxParams: number;
  /** Longest parameter name (characters). */
  maxNameLength: number;
  /** Longest value (characters) of a name not in `longValues`. */
  maxValueLength: number;
  /** Longer limits for the few parameters that carry documents (base64 user data, public keys). */
  longValues: Readonly<Record<string, number>>;
}

export const DEFAULT_PARAM_LIMITS: ParamLimits = Object.freeze({
  maxParams: 2000,
  maxNameLength: 256,
  maxValueLength: 4096,
  // UserData: 16 KiB decoded (AWS) is 21,848 base64 characters; the handler checks the decoded size.
  longValues: Object.freeze({ UserData: 32768, 'UserData.Value': 32768, PublicKeyMaterial: 16384 }),
});

// NUL and the other C0 controls (tab, LF, CR allowed: descriptions, PEM text), and the two
// non-characters XML 1.0 cannot carry. PostgreSQL refuses NUL in text outright.
const BAD_VALUE_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\uFFFE\uFFFF]/;
const BAD_NAME_CHAR = /[\u0000-\u001F\u007F\uFFFE\uFFFF]/;

/** `InstanceId`, `InstanceId.3`, `IpPermissions.1.Groups.2.GroupId`, `SourceSecurityGroupOwnerId`: ids are short. */
const ID_NAME = /(?:^|\.)[A-Za-z]*Id(?:\.\d+)?$/;
const MAX_ID_LENGTH = 128;
/** Ids no handler checks (stored and echoed as given): their shape is checked here. */
const ID_SHAPES: Readonly<Record<string, string>> = { VpcId: 'vpc', SubnetId: 'subnet' };

function shown(name: string): string {
  return name.length > 100 ? `${name.slice(0, 100)}…` : name;
}

/**
 * Refuses, with `InvalidParameterValue` (400), a request whose parameters no handler should see:
 * too many, names with control characters or too long, values with NUL / control characters, or
 * values longer than the edge limit (ids: 128), and `VpcId`/`SubnetId` that are not ids. The
 * message never echoes a value refused for its characters or length.
 * `Value` of `ModifyInstanceAttribute` is user data when `Attribute=userData` and gets its limit.
 */
export function validateParamMap(map: Readonly<Record<string, string>>, limits: ParamLimits = DEFAULT_PARAM_LIMITS): void {
  const names = Object.keys(map);
  if (names.length > limits.maxParams) {
    throw new Ec2Error('InvalidParameterValue', `The request has ${names.length} parameters; at most ${limits.maxParams} are accepted.`);
  }
  const userDataValue = map.Action === 'ModifyInstanceAttribute' && map.Attribute === 'userData';
  for (const name of names) {
    if (name.length === 0 || name.length > limits.maxNameLength || BAD_NAME_CHAR.test(name)) {
      throw new Ec2Error('InvalidParameterValue', 'A parameter name is empty, too long or contains control characters.');
    }
    const value = map[name]!;
    const max = ID_NAME.test(name) ? MAX_ID_LENGTH : (limits.longValues[name] ?? (userDataValue && name === 'Value' ? limits.longValues.UserData : undefined) ?? limits.maxValueLength);
    if (value.length > max) {
      throw Ec2Error.invalidParameterValue(shown(name), undefined, `The value is longer than ${max} characters.`);
    }
    if (BAD_VALUE_CHAR.test(value)) {
      throw Ec2Error.invalidParameterValue(shown(name), undefined, 'The value contains a NUL or control character.');
    }
    const prefix = ID_SHAPES[name];
    if (prefix && value !== '' && !isValidId(prefix, value)) {
      throw Ec2Error.invalidParameterValue(name, value, `It must be an id of the form ${prefix}-xxxxxxxxxxxxxxxxx.`);
    }
  }
}
