/** IPv4 addresses and CIDRs as the planner needs them (dotted quads, `a.b.c.d/n`). */

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

export const byIp = (a: string, b: string) => ipToInt(a) - ipToInt(b);

export function parseCidr(cidr: string): { base: string; prefix: number } {
  const [base, p] = cidr.split('/');
  return { base: base!, prefix: Number(p) };
}

export function inCidr(ip: string, cidr: string): boolean {
  const { base, prefix } = parseCidr(cidr);
  if (prefix === 0) return true;
  const mask = prefix === 32 ? 0xffffffff : ~((1 << (32 - prefix)) - 1) >>> 0;
  return (ipToInt(ip) & mask) >>> 0 === (ipToInt(base) & mask) >>> 0;
}

/** A CIDR with its host bits cleared (iptables and libvirt print it that way). */
export function normalCidr(cidr: string): string {
  const { base, prefix } = parseCidr(cidr);
  const mask = prefix === 0 ? 0 : prefix === 32 ? 0xffffffff : ~((1 << (32 - prefix)) - 1) >>> 0;
  const n = (ipToInt(base) & mask) >>> 0;
  return `${[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')}/${prefix}`;
}

export const cidrOrder = (a: string, b: string) => {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  return byIp(pa.base, pb.base) || pa.prefix - pb.prefix;
};
