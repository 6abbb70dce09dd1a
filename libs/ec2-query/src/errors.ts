/**
 * EC2 errors with AWS's codes and HTTP statuses.
 *
 * Throw `Ec2Error` anywhere in the request path; the HTTP layer turns it into the EC2 error
 * document with `renderError()`. Anything else thrown becomes `InternalError` (500) without
 * leaking its message.
 */

/** HTTP status per AWS error code. Codes not listed default to 400. */
export const EC2_ERROR_STATUS: Readonly<Record<string, number>> = Object.freeze({
  // common client errors
  MissingParameter: 400,
  MissingAction: 400,
  InvalidParameter: 400,
  InvalidParameterValue: 400,
  InvalidParameterCombination: 400,
  InvalidAction: 400,
  InvalidQueryParameter: 400,
  MalformedQueryString: 400,
  UnknownParameter: 400,
  UnsupportedOperation: 400,
  UnsupportedProtocol: 400,
  InvalidID: 400,
  InvalidNextToken: 400,
  InvalidPaginationToken: 400,
  IdempotentParameterMismatch: 400,
  // auth
  AuthFailure: 401,
  MissingAuthenticationToken: 401,
  IncompleteSignature: 400,
  SignatureDoesNotMatch: 403,
  RequestExpired: 400,
  UnauthorizedOperation: 403,
  OptInRequired: 403,
  Blocked: 403,
  DryRunOperation: 412,
  // state
  IncorrectState: 400,
  IncorrectInstanceState: 400,
  VolumeInUse: 400,
  InvalidState: 400,
  // capacity / limits
  InsufficientInstanceCapacity: 500,
  InstanceLimitExceeded: 400,
  AddressLimitExceeded: 400,
  VolumeLimitExceeded: 400,
  SecurityGroupLimitExceeded: 400,
  RulesPerSecurityGroupLimitExceeded: 400,
  ResourceLimitExceeded: 400,
  TagLimitExceeded: 400,
  // server
  InternalError: 500,
  InternalFailure: 500,
  ServiceUnavailable: 503,
  Unavailable: 503,
  RequestLimitExceeded: 503,
  Throttling: 400,
});

/** Resource-specific codes with messages worded like AWS's. `{id}` is replaced by the id(s). */
export const NOT_FOUND_MESSAGES = Object.freeze({
  'InvalidInstanceID.NotFound': "The instance ID '{id}' does not exist",
  'InvalidAMIID.NotFound': "The image id '[{id}]' does not exist",
  'InvalidKeyPair.NotFound': "The key pair '{id}' does not exist",
  'InvalidGroup.NotFound': "The security group '{id}' does not exist",
  'InvalidAddress.NotFound': "The address '{id}' does not exist",
  'InvalidAllocationID.NotFound': "The allocation ID '{id}' does not exist",
  'InvalidAssociationID.NotFound': "The association ID '{id}' does not exist",
  'InvalidVolume.NotFound': "The volume '{id}' does not exist.",
  'InvalidSnapshot.NotFound': "The snapshot '{id}' does not exist.",
  'InvalidZone.NotFound': "The zone '{id}' does not exist.",
  'InvalidPermission.NotFound': 'The specified rule does not exist in this security group.',
  'InvalidReservationID.NotFound': "The reservation ID '{id}' does not exist",
  'InvalidInstanceType.NotFound': "The instance type '{id}' does not exist",
} as const);
export type NotFoundCode = keyof typeof NOT_FOUND_MESSAGES;

/** `Invalid<Resource>.Malformed` codes, e.g. for ids with a wrong prefix or length. */
export const MALFORMED_MESSAGES = Object.freeze({
  'InvalidInstanceID.Malformed': 'Invalid id: "{id}"',
  'InvalidAMIID.Malformed': 'Invalid id: "{id}"',
  'InvalidVolumeID.Malformed': 'Invalid id: "{id}"',
  'InvalidSnapshotID.Malformed': 'Invalid id: "{id}"',
  'InvalidGroupId.Malformed': 'Invalid id: "{id}"',
  'InvalidAllocationID.Malformed': 'Invalid id: "{id}"',
  'InvalidKeyPair.Format': 'Key is not in valid OpenSSH public key format',
  InvalidID: "The ID '{id}' is not valid",
} as const);
export type MalformedCode = keyof typeof MALFORMED_MESSAGES;

/** HTTP status for an AWS error code (400 for codes not in the table). */
export function statusForCode(code: string): number {
  return EC2_ERROR_STATUS[code] ?? 400;
}

/** An EC2 API error: AWS `code`, human `message`, and the HTTP status to answer with. */
export class Ec2Error extends Error {
  readonly code: string;
  readonly httpStatus: number;

  constructor(code: string, message: string, httpStatus: number = statusForCode(code)) {
    super(message);
    this.name = 'Ec2Error';
    this.code = code;
    this.httpStatus = httpStatus;
  }

  /** Any code; status from `EC2_ERROR_STATUS`. */
  static of(code: string, message: string): Ec2Error {
    return new Ec2Error(code, message);
  }

  /** `MissingParameter` (400): "The request must contain the parameter X". */
  static missingParameter(name: string): Ec2Error {
    return new Ec2Error('MissingParameter', `The request must contain the parameter ${name}`);
  }

  /** `InvalidParameterValue` (400) naming the parameter (and the value when given). */
  static invalidParameterValue(name: string, value?: string, reason?: string): Ec2Error {
    const v = value === undefined ? '' : `Value (${value}) for parameter ${name} is invalid.`;
    const msg = value === undefined ? `Invalid value for parameter ${name}` : v;
    return new Ec2Error('InvalidParameterValue', reason ? `${msg} ${reason}`.trim() : msg);
  }

  /** `InvalidParameterCombination` (400). */
  static invalidParameterCombination(message: string): Ec2Error {
    return new Ec2Error('InvalidParameterCombination', message);
  }

  /** `InvalidAction` (400): unknown or unsupported Action. */
  static invalidAction(action: string): Ec2Error {
    return new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
  }

  /** `Invalid<Resource>.NotFound` with AWS's wording; several ids are joined with ", ". */
  static notFound(code: NotFoundCode, id: string | readonly string[]): Ec2Error {
    const ids = typeof id === 'string' ? id : id.join(', ');
    return new Ec2Error(code, NOT_FOUND_MESSAGES[code].replace('{id}', ids));
  }

  /** `Invalid<Resource>.Malformed` / `InvalidID` / `InvalidKeyPair.Format`. */
  static malformed(code: MalformedCode, id: string): Ec2Error {
    return new Ec2Error(code, MALFORMED_MESSAGES[code].replace('{id}', id));
  }

  /** `<code>.Duplicate`-style errors, e.g. `duplicate('InvalidKeyPair.Duplicate', "The keypair 'k' already exists.")`. */
  static duplicate(code: 'InvalidKeyPair.Duplicate' | 'InvalidGroup.Duplicate' | 'InvalidPermission.Duplicate' | string, message: string): Ec2Error {
    return new Ec2Error(code, message);
  }

  /** `IncorrectInstanceState` (400). */
  static incorrectInstanceState(instanceId: string, state: string, action = 'perform this operation'): Ec2Error {
    return new Ec2Error('IncorrectInstanceState', `The instance '${instanceId}' is not in a state from which it can be ${action}. Current state: ${state}.`);
  }

  /** `IncorrectState` (400). */
  static incorrectState(message: string): Ec2Error {
    return new Ec2Error('IncorrectState', message);
  }

  /** `InsufficientInstanceCapacity` (500, as AWS). */
  static insufficientCapacity(instanceType: string, zone?: string): Ec2Error {
    const where = zone ? ` in the requested Availability Zone (${zone})` : '';
    return new Ec2Error('InsufficientInstanceCapacity', `We currently do not have sufficient ${instanceType} capacity${where}.`);
  }

  /** `DryRunOperation` (412). */
  static dryRun(): Ec2Error {
    return new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.');
  }

  /** `UnauthorizedOperation` (403). */
  static unauthorized(message = 'You are not authorized to perform this operation.'): Ec2Error {
    return new Ec2Error('UnauthorizedOperation', message);
  }

  /** `InternalError` (500) with a generic message. */
  static internal(): Ec2Error {
    return new Ec2Error('InternalError', 'An internal error has occurred');
  }
}

/** True for `Ec2Error` instances (also across duplicated module copies). */
export function isEc2Error(e: unknown): e is Ec2Error {
  return (
    e instanceof Ec2Error ||
    (typeof e === 'object' &&
      e !== null &&
      (e as { name?: unknown }).name === 'Ec2Error' &&
      typeof (e as { code?: unknown }).code === 'string' &&
      typeof (e as { httpStatus?: unknown }).httpStatus === 'number')
  );
}
