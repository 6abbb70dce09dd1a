import { Ec2Error } from './errors.js';

/**
 * The parameters an action takes, as shapes: dot-separated segments where `N` stands for a
 * member index (`KeyName.N`, `Filter.N.Name`, `Filter.N.Value.N`, `BlockDeviceMapping.N.Ebs.Iops`).
 * `checkParamShapes` holds a request against them before its handler runs, so an unknown name is
 * refused (`UnknownParameter`, as EC2) instead of being ignored (an ignored `KeyName` once turned
 * DescribeKeyPairs into "list every key").
 */
export type ParamShapes = readonly string[];

/** Names every request may carry (protocol and signature), whatever its action. */
export function isCommonParam(name: string): boolean {
  return COMMON.has(name) || name.startsWith('X-Amz-');
}
const COMMON = new Set(['Action', 'Version', 'AWSAccessKeyId', 'Signature', 'SignatureMethod', 'SignatureVersion', 'Timestamp', 'Expires', 'SecurityToken']);

/** Shapes shared by many actions. */
export const FILTER_SHAPES: ParamShapes = ['Filter.N.Name', 'Filter.N.Value.N'];
export const TAG_SPECIFICATION_SHAPES: ParamShapes = ['TagSpecification.N.ResourceType', 'TagSpecification.N.Tag.N.Key', 'TagSpecification.N.Tag.N.Value'];
export const PAGE_SHAPES: ParamShapes = ['MaxResults', 'NextToken'];

/** The shape of a wire name: every all-digit segment becomes `N` (`Filter.2.Value.10` → `Filter.N.Value.N`). */
export function shapeOf(name: string): string {
  return name
    .split('.')
    .map((s) => (/^\d+$/.test(s) ? 'N' : s))
    .join('.');
}

interface Trie {
  end: boolean;
  next: Map<string, Trie>;
}

/** Shapes compiled once per action (at start), so a request is checked in time linear in its names. */
export class CompiledShapes {
  private readonly root: Trie = { end: false, next: new Map() };

  constructor(readonly shapes: ParamShapes) {
    for (const s of shapes) {
      if (!/^[A-Za-z][A-Za-z0-9]*(\.([A-Za-z][A-Za-z0-9]*|N))*$/.test(s)) throw new Error(`invalid parameter shape ${JSON.stringify(s)}`);
      let t = this.root;
      for (const seg of s.split('.')) {
        let c = t.next.get(seg);
        if (!c) t.next.set(seg, (c = { end: false, next: new Map() }));
        t = c;
      }
      t.end = true;
    }
  }

  /** The node a wire name reaches (digits walk `N`), or undefined. */
  private walk(name: string): Trie | undefined {
    let t: Trie | undefined = this.root;
    for (const seg of name.split('.')) {
      t = t.next.get(seg) ?? (/^\d+$/.test(seg) ? t.next.get('N') : undefined);
      if (!t) return undefined;
    }
    return t;
  }

  /** 'ok': a declared name; 'list': a bare list name (`KeyName` for `KeyName.N`); 'unknown'. */
  classify(name: string): 'ok' | 'list' | 'unknown' {
    const t = this.walk(name);
    if (!t) return 'unknown';
    if (t.end) return 'ok';
    return t.next.get('N')?.end ? 'list' : 'unknown';
  }

  /** True if some shape is `prefixShape` or lies under it (`Filter.N` covers `Filter.N.Name`). */
  covers(prefixShape: string): boolean {
    let t: Trie | undefined = this.root;
    for (const seg of prefixShape.split('.')) {
      t = t.next.get(seg);
      if (!t) return false;
    }
    return true;
  }

  /** True if `shape` is itself declared. */
  declares(shape: string): boolean {
    let t: Trie | undefined = this.root;
    for (const seg of shape.split('.')) {
      t = t.next.get(seg);
      if (!t) return false;
    }
    return t.end;
  }
}

/**
 * Holds a request's parameter map against its action's shapes, before the handler runs: a bare
 * list name (`KeyName` where the action takes `KeyName.N`) means its first member, as Eucalyptus'
 * binding read it and old clients send it (both given → `InvalidParameterCombination`); any other
 * undeclared name, not a common one → `UnknownParameter`. Returns the map to hand to the handler
 * (the same object when nothing was renamed).
 */
export function checkParamShapes(map: Readonly<Record<string, string>>, shapes: CompiledShapes): Readonly<Record<string, string>> {
  let renamed: Array<[string, string]> | undefined;
  for (const name of Object.keys(map)) {
    if (isCommonParam(name)) continue;
    const kind = shapes.classify(name);
    if (kind === 'ok') continue;
    if (kind === 'unknown') throw new Ec2Error('UnknownParameter', `The parameter ${printable(name)} is not recognized`);
    (renamed ??= []).push([name, `${name}.1`]);
  }
  if (!renamed) return map;
  const out: Record<string, string> = Object.create(null);
  const from = new Map(renamed);
  for (const [k, v] of Object.entries(map)) {
    const to = from.get(k);
    if (to === undefined) out[k] = v;
    else if (Object.prototype.hasOwnProperty.call(map, to)) {
      throw Ec2Error.invalidParameterCombination(`The parameters ${printable(k)} and ${printable(to)} name the same member; send one of them.`);
    } else out[to] = v;
  }
  return out;
}

/** A name for an error message: bounded, as it came (control characters were refused at the edge). */
function printable(name: string): string {
  return name.length > 100 ? `${name.slice(0, 100)}…` : name;
}
