/** Injection tokens shared by every Koala daemon. */
export const BUS = Symbol('BUS');
export const LOGGER = Symbol('LOGGER');
export const COMPONENT = Symbol('COMPONENT');
export const CLOCK = Symbol('CLOCK');

/** Time behind an interface so services never call Date.now() directly (tests use a fake). */
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

export interface ComponentIdentity {
  kind: import('@koala/contracts').ComponentKind;
  /** Unique per process: `<kind>@<host>[/<zone>]`. */
  id: string;
  zone?: string;
  startedAt: Date;
  /** false: one of several worker processes of a component that leaves the status answer to another (CLC workers). */
  answersStatus?: boolean;
}
