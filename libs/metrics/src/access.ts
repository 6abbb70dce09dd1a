import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.y.z). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(a) === 4) return a.startsWith('127.');
  return a === '::1';
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Who may read /metrics: anyone on loopback; from elsewhere only with `Authorization: Bearer
 * <KOALA_METRICS_TOKEN>` (no token configured: nobody). Metrics name accounts' activity and
 * hosts, so they are not public on the EC2 port.
 */
export function metricsAccessAllowed(remoteAddress: string | undefined, authorization: string | string[] | undefined, token: string | undefined): boolean {
  if (isLoopback(remoteAddress)) return true;
  if (!token || typeof authorization !== 'string') return false;
  const m = /^Bearer ([^\s]+)$/.exec(authorization.trim());
  return !!m && timingSafeEqual(digest(m[1]!), digest(token));
}
