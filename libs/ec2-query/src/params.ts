import { Ec2Error } from './errors.js';
import { QUERY_LIMITS } from './limits.js';
import { shapeOf } from './param-shapes.js';

/**
 * Parse an EC2 Query request (POST form body or GET query string) into a flat map.
 *
 * URLSearchParams semantics (`+` is a space, percent-decoding, no `?` expected but a leading
 * one is ignored). When a name repeats, the FIRST occurrence wins (as Java servlet
 * `getParameter`, which Eucalyptus used); callers that need both the query string and the body
 * should parse each and merge explicitly.
 */
export function parseQueryParams(raw: string | Buffer | URLSearchParams): Record<string, string> {
  let sp: URLSearchParams;
  if (raw instanceof URLSearchParams) sp = raw;
  else {
    const s = typeof raw === 'string' ? raw : raw.toString('utf8');
    sp = new URLSearchParams(s.startsWith('?') ? s.slice(1) : s);
  }
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of sp) if (!(k in out)) out[k] = v;
  return out;
}

export interface StrOptions {
  required?: boolean;
}
export interface IntOptions {
  required?: boolean;
  min?: number;
  max?: number;
}

/**
 * One level of the parameter names, split at dots on first use: `keys` are the names strictly
 * under this node (`<path>.…`, in the map's order), `start` where their remainder begins, `exact`
 * whether `<path>` itself is a name. A level is split once, in time linear in its keys, so a
 * request's parsing is linear however many accessors a handler calls (rescanning every key per
 * call made 20,000 filters take minutes).
 */
class NameNode {
  exact = false;
  private children?: Map<string, NameNode>;
  constructor(
    readonly start: number,
    readonly keys: string[] = [],
  ) {}

  /** Child nodes by their next name segment. */
  level(): Map<string, NameNode> {
    if (this.children) return this.children;
    const m = new Map<string, NameNode>();
    for (const k of this.keys) {
      const dot = k.indexOf('.', this.start);
      const seg = dot < 0 ? k.slice(this.start) : k.slice(this.start, dot);
      let c = m.get(seg);
      if (!c) m.set(seg, (c = new NameNode(this.start + seg.length + 1)));
      if (dot < 0) c.exact = true;
      else c.keys.push(k);
    }
    return (this.children = m);
  }
}

/** One name tree per parameter map (which must not change once read through Params). */
const trees = new WeakMap<object, NameNode>();
function treeOf(map: Readonly<Record<string, string>>): NameNode {
  let t = trees.get(map);
  if (!t) {
    t = new NameNode(0, Object.keys(map)); // not push(...keys): a body holds 300,000 names
    trees.set(map, t);
  }
  return t;
}

/** Limits of one list read: `max` members (default `QUERY_LIMITS.maxListMembers`), `tooMany` the error past it. */
export interface ListLimit {
  max?: number;
  tooMany?: (count: number) => Ec2Error;
}

/**
 * Told the shape (`shapeOf`) of each name a reader reads: `prefix` false for a leaf read
 * (`Filter.N.Name`, `DryRun`), true for a structural one (`Filter.N`, `BlockDeviceMapping.N.Ebs`).
 * Tests use it to prove that each action's declared parameter shapes cover what its handler reads.
 */
export type ParamReadRecorder = (shape: string, prefix: boolean) => void;

/**
 * Typed reader over the flat parameter map, optionally scoped to a prefix such as
 * `Filter.2.` (see `members()`); names in error messages are the full wire names.
 * Names no action declares never get here (`checkParamShapes` refuses them first). Structural reads (`members`,
 * `indexes`, `list`, `child`, `hasAny`, `entries`) cost in proportion to their answer: the
 * names are split into a tree once per map, shared by all scoped readers.
 */
export class Params {
  constructor(
    /** The whole flat map (shared by scoped readers). */
    readonly map: Readonly<Record<string, string>>,
    /** Scope prefix including the trailing dot, e.g. `IpPermissions.1.`; '' at top level. */
    readonly prefix = '',
    /** Told every name read (also by scoped readers); see `ParamReadRecorder`. */
    readonly recorder?: ParamReadRecorder,
  ) {}

  private record(full: string, prefix: boolean): void {
    this.recorder?.(shapeOf(full), prefix);
  }

  private scoped(prefix: string): Params {
    return new Params(this.map, prefix, this.recorder);
  }

  /** Build from a raw body / query string / URLSearchParams / map. */
  static from(raw: string | Buffer | URLSearchParams | Record<string, string>): Params {
    if (typeof raw === 'string' || Buffer.isBuffer(raw) || raw instanceof URLSearchParams) {
      return new Params(parseQueryParams(raw));
    }
    return new Params(raw);
  }

  /** The tree node of the full wire name `full` (a name present or a prefix of names), if any. */
  private node(full: string): NameNode | undefined {
    let n: NameNode | undefined = treeOf(this.map);
    for (const seg of full.split('.')) {
      n = n.level().get(seg);
      if (!n) return undefined;
    }
    return n;
  }

  /** Full wire name of `name` in this scope. */
  fullName(name: string): string {
    return this.prefix + name;
  }

  /** True if the parameter is present (even if empty). */
  has(name: string): boolean {
    this.record(this.prefix + name, false);
    return Object.prototype.hasOwnProperty.call(this.map, this.prefix + name);
  }

  /** True if any parameter starts with `name` (`name`, `name.x`, `name.1.y`) in this scope. */
  hasAny(name: string): boolean {
    this.record(this.prefix + name, true);
    return this.node(this.prefix + name) !== undefined;
  }

  /** Raw value or undefined. */
  raw(name: string): string | undefined {
    const full = this.prefix + name;
    this.record(full, false);
    return Object.prototype.hasOwnProperty.call(this.map, full) ? this.map[full] : undefined;
  }

  /** String parameter. `required` → `MissingParameter` when absent. */
  str(name: string, opts: { required: true }): string;
  str(name: string, opts?: StrOptions): string | undefined;
  str(name: string, opts: StrOptions = {}): string | undefined {
    const v = this.raw(name);
    if (v === undefined && opts.required) throw Ec2Error.missingParameter(this.fullName(name));
    return v;
  }

  /** Integer parameter (decimal, optional sign); out of range or not an integer → `InvalidParameterValue`. */
  int(name: string, opts: IntOptions & { required: true }): number;
  int(name: string, opts?: IntOptions): number | undefined;
  int(name: string, opts: IntOptions = {}): number | undefined {
    const v = this.str(name, { required: opts.required });
    if (v === undefined) return undefined;
    const t = v.trim();
    if (!/^[+-]?\d{1,15}$/.test(t)) {
      throw Ec2Error.invalidParameterValue(this.fullName(name), v, 'It must be an integer.');
    }
    const n = Number(t);
    if (opts.min !== undefined && n < opts.min) {
      throw Ec2Error.invalidParameterValue(this.fullName(name), v, `Parameter may not be less than ${opts.min}.`);
    }
    if (opts.max !== undefined && n > opts.max) {
      throw Ec2Error.invalidParameterValue(this.fullName(name), v, `Parameter may not be greater than ${opts.max}.`);
    }
    return n;
  }

  /** Boolean parameter: `true`/`false` (case-insensitive), also `1`/`0`. */
  bool(name: string, opts: { required: true }): boolean;
  bool(name: string, opts?: StrOptions): boolean | undefined;
  bool(name: string, opts: StrOptions = {}): boolean | undefined {
    const v = this.str(name, opts);
    if (v === undefined) return undefined;
    const t = v.trim().toLowerCase();
    if (t === 'true' || t === '1') return true;
    if (t === 'false' || t === '0') return false;
    throw Ec2Error.invalidParameterValue(this.fullName(name), v, 'It must be true or false.');
  }

  /** One of `values` (case-sensitive) or `InvalidParameterValue`. */
  enum<T extends string>(name: string, values: readonly T[], opts: { required: true }): T;
  enum<T extends string>(name: string, values: readonly T[], opts?: StrOptions): T | undefined;
  enum<T extends string>(name: string, values: readonly T[], opts: StrOptions = {}): T | undefined {
    const v = this.str(name, opts);
    if (v === undefined) return undefined;
    if (!(values as readonly string[]).includes(v)) {
      throw Ec2Error.invalidParameterValue(this.fullName(name), v, `Valid values: ${values.join(', ')}.`);
    }
    return v as T;
  }

  /** Base64 parameter decoded to bytes (e.g. `UserData`, `PublicKeyMaterial`). */
  base64(name: string, opts: { required: true }): Buffer;
  base64(name: string, opts?: StrOptions): Buffer | undefined;
  base64(name: string, opts: StrOptions = {}): Buffer | undefined {
    const v = this.str(name, opts);
    if (v === undefined) return undefined;
    const t = v.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(t) || t.replace(/=+$/, '').length % 4 === 1) {
      throw Ec2Error.invalidParameterValue(this.fullName(name), undefined, 'Invalid BASE64 encoding.');
    }
    return Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
  }

  /**
   * Sorted member indexes N present under `prefix.N` or `prefix.N.*` in this scope. More than
   * `limit.max` members (default `QUERY_LIMITS.maxListMembers`) → `limit.tooMany` or
   * `InvalidParameterValue`; an index past `QUERY_LIMITS.maxMemberIndex` → `InvalidParameterValue`.
   */
  indexes(prefix: string, limit: ListLimit = {}): number[] {
    const full = this.prefix + prefix;
    this.record(`${full}.N`, true);
    const node = this.node(full);
    if (!node) return [];
    const seen = new Set<number>();
    for (const seg of node.level().keys()) {
      if (!/^\d+$/.test(seg)) continue; // not a member: an unknown parameter, ignored
      const n = seg.length > 9 ? Infinity : Number(seg);
      if (n > QUERY_LIMITS.maxMemberIndex) {
        throw Ec2Error.invalidParameterValue(`${full}.${seg.slice(0, 20)}`, undefined, `(member indexes go up to ${QUERY_LIMITS.maxMemberIndex}).`);
      }
      seen.add(n);
    }
    const max = limit.max ?? QUERY_LIMITS.maxListMembers;
    if (seen.size > max) {
      throw limit.tooMany?.(seen.size) ?? new Ec2Error('InvalidParameterValue', `The list ${full}.N has ${seen.size} members; at most ${max} are allowed.`);
    }
    return [...seen].sort((a, b) => a - b);
  }

  /** Values of `prefix.1`, `prefix.2`, ... in numeric order; gaps tolerated; at most `opts.max` (see `indexes`). */
  list(prefix: string, opts: StrOptions & ListLimit = {}): string[] {
    const out: string[] = [];
    for (const n of this.indexes(prefix, opts)) {
      const v = this.raw(`${prefix}.${n}`);
      if (v !== undefined) out.push(v);
    }
    if (opts.required && out.length === 0) throw Ec2Error.missingParameter(this.fullName(`${prefix}.1`));
    return out;
  }

  /** Readers scoped to each `prefix.N.` (numeric order, gaps tolerated); at most `limit.max` (see `indexes`). */
  members(prefix: string, limit: ListLimit = {}): Params[] {
    const ns = this.indexes(prefix, limit);
    if (!ns.length) return [];
    const level = this.node(this.prefix + prefix)!.level();
    return ns.filter((n) => (level.get(String(n))?.keys.length ?? 0) > 0).map((n) => this.scoped(`${this.prefix}${prefix}.${n}.`));
  }

  /** Reader scoped to `name.` (e.g. `Ebs` inside `BlockDeviceMapping.1.`); undefined when nothing is under it. */
  child(name: string): Params | undefined {
    this.record(this.prefix + name, true);
    return (this.node(this.prefix + name)?.keys.length ?? 0) > 0 ? this.scoped(`${this.prefix}${name}.`) : undefined;
  }

  /** All (name, value) pairs in this scope, names relative to the scope, in the map's order. */
  entries(): Array<[string, string]> {
    const p = this.prefix;
    this.record(p === '' ? '*' : p.slice(0, -1), true);
    if (p === '') return Object.entries(this.map);
    const keys = p.endsWith('.') ? (this.node(p.slice(0, -1))?.keys ?? []) : Object.keys(this.map).filter((k) => k.startsWith(p));
    return keys.map((k) => [k.slice(p.length), this.map[k]!]);
  }
}

/** A filter as sent in `Filter.N.Name` / `Filter.N.Value.M`. */
export interface Filter {
  name: string;
  values: string[];
}
/** A tag key/value (value '' when absent). */
export interface Tag {
  key: string;
  value: string;
}
/** A `TagSpecification.N`. */
export interface TagSpecification {
  resourceType: string;
  tags: Tag[];
}

/** `Tag.N.Key` / `Tag.N.Value` (value '' when absent). Empty keys → `InvalidParameterValue`. */
export function readTags(params: Params, prefix = 'Tag'): Tag[] {
  return params.members(prefix).map((m) => {
    const key = m.str('Key', { required: true });
    if (key === '') throw Ec2Error.invalidParameterValue(m.fullName('Key'), key, 'Tag key must not be empty.');
    return { key, value: m.str('Value') ?? '' };
  });
}

/** `TagSpecification.N.ResourceType` + `TagSpecification.N.Tag.M.{Key,Value}`. */
export function readTagSpecifications(params: Params, prefix = 'TagSpecification'): TagSpecification[] {
  return params.members(prefix).map((m) => ({
    resourceType: m.str('ResourceType', { required: true }),
    tags: readTags(m, 'Tag'),
  }));
}

/** Accounts and the `all` group on one side of a permission change. */
export interface PermissionSide {
  accounts: string[];
  all: boolean;
}
export interface PermissionChange {
  add: PermissionSide;
  remove: PermissionSide;
}

/**
 * A permission change of ModifyImageAttribute (`LaunchPermission`) or ModifySnapshotAttribute
 * (`CreateVolumePermission`), in both wire forms: `<attribute>.Add.N.UserId` / `.Group` (and
 * `.Remove`), and the older `OperationType` (add|remove) with `UserId.N` / `UserGroup.N`. The only
 * group EC2 knows is `all`; another is `InvalidParameterValue`.
 */
export function readPermissionChange(params: Params, attribute: 'LaunchPermission' | 'CreateVolumePermission'): PermissionChange {
  const group = (g: string, name: string) => {
    if (g !== 'all') throw Ec2Error.invalidParameterValue(name, g, "The only supported group is 'all'.");
    return true;
  };
  const side = (op: 'Add' | 'Remove'): PermissionSide => {
    const out: PermissionSide = { accounts: [], all: false };
    for (const m of params.members(`${attribute}.${op}`)) {
      const user = m.str('UserId');
      const g = m.str('Group');
      if (user) out.accounts.push(user);
      if (g && group(g, m.fullName('Group'))) out.all = true;
    }
    return out;
  };
  const change = { add: side('Add'), remove: side('Remove') };
  const op = params.enum('OperationType', ['add', 'remove'] as const);
  if (op) {
    const target = op === 'add' ? change.add : change.remove;
    target.accounts.push(...params.list('UserId'));
    for (const g of params.list('UserGroup')) if (group(g, 'UserGroup')) target.all = true;
  }
  return change;
}

/** Default EC2 API version when `Version` is absent. */
export const DEFAULT_EC2_VERSION = '2016-11-15';

/** `Action` (required: `MissingAction`) and `Version` (default `DEFAULT_EC2_VERSION`). */
export function readActionAndVersion(params: Params): { action: string; version: string } {
  const action = params.raw('Action');
  if (!action) throw new Ec2Error('MissingAction', 'The request must contain the parameter Action');
  const version = params.raw('Version') || DEFAULT_EC2_VERSION;
  if (!/^[0-9A-Za-z.-]{1,32}$/.test(version)) throw Ec2Error.invalidParameterValue('Version', version);
  return { action, version };
}
