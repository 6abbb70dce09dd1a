import { randomBytes } from 'node:crypto';

/** The one table of resource id prefixes. */
export const ID_PREFIXES = Object.freeze({
  instance: 'i',
  reservation: 'r',
  volume: 'vol',
  snapshot: 'snap',
  image: 'emi',
  kernel: 'eki',
  ramdisk: 'eri',
  ami: 'ami',
  securityGroup: 'sg',
  securityGroupRule: 'sgr',
  keyPair: 'key',
  allocation: 'eipalloc',
  association: 'eipassoc',
  volumeAttachment: 'vola',
  networkInterface: 'eni',
  vpc: 'vpc',
  subnet: 'subnet',
  placementGroup: 'pg',
  launchTemplate: 'lt',
  importTask: 'import-i',
  exportTask: 'export-i',
  request: 'req',
} as const);
export type IdKind = keyof typeof ID_PREFIXES;
export type IdPrefix = (typeof ID_PREFIXES)[IdKind];

/** Source of random bytes (injectable for tests). */
export type RandomSource = (n: number) => Buffer;

/** `prefix-` + 17 lowercase hex digits, e.g. `newId('i')` → `i-0123456789abcdef0`. */
export function newId(prefix: IdPrefix | string, random: RandomSource = randomBytes): string {
  return `${prefix}-${random(9).toString('hex').slice(0, 17)}`;
}

/** Matches `prefix-` + 17 hex (current form) or 8 hex (legacy AWS / Eucalyptus form), lowercase. */
export function isValidId(prefix: IdPrefix | string, s: string): boolean {
  if (typeof s !== 'string' || !s.startsWith(prefix + '-')) return false;
  const rest = s.slice(prefix.length + 1);
  return /^(?:[0-9a-f]{8}|[0-9a-f]{17})$/.test(rest);
}

/** The prefix of an id (`vol-…` → `vol`), or undefined if it has no known prefix. */
export function idPrefixOf(s: string): IdPrefix | undefined {
  let best: IdPrefix | undefined;
  for (const p of Object.values(ID_PREFIXES)) {
    if (s.startsWith(p + '-') && (!best || p.length > best.length)) best = p;
  }
  return best;
}
