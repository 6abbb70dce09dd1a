/** IPv4 arithmetic for the elastic address pool (KOALA_PUBLIC_IP_RANGE). Pure functions. */

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function intToIp(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Usable addresses of a CIDR: network and broadcast excluded (except /31 and /32, which have none). */
export interface PoolRange {
  first: number;
  last: number;
}

export function poolRange(cidr: string): PoolRange {
  const [addr, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (!addr || !Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`not an IPv4 CIDR: ${cidr}`);
  const size = 2 ** (32 - bits);
  const network = Math.floor(ipToInt(addr) / size) * size;
  if (bits >= 31) return { first: network, last: network + size - 1 };
  return { first: network + 1, last: network + size - 2 };
}

export function poolSize(r: PoolRange): number {
  return r.last - r.first + 1;
}

export function inPool(r: PoolRange, ip: string): boolean {
  const n = ipToInt(ip);
  return n >= r.first && n <= r.last;
}

/** The lowest address of `r` not in `used` (any order, may contain addresses outside `r`); undefined when full. */
export function firstFree(r: PoolRange, used: Iterable<string>): string | undefined {
  const taken = [...new Set([...used].map(ipToInt).filter((n) => n >= r.first && n <= r.last))].sort((a, b) => a - b);
  let candidate = r.first;
  for (const n of taken) {
    if (n > candidate) break;
    if (n === candidate) candidate++;
  }
  return candidate <= r.last ? intToIp(candidate) : undefined;
}
