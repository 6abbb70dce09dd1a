import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { busInboxPrefix } from '@koala/contracts';

/**
 * KOALA_NATS_URL as connection options. When NATS spans hosts (CHAP secrets and image URLs cross
 * it) operators use `tls://` and credentials in the URL, as NATS tools do:
 *   nats://127.0.0.1:4222                 plain, no auth (the all-in-one default)
 *   nats://USER:PASSWORD@host:4222        user and password
 *   nats://TOKEN@host:4222                token
 *   tls://USER:PASSWORD@host:4222         the same over TLS (server verified against `caFile`, or
 *                                         the system's CAs)
 * User, password and token are percent-decoded (`%40` for `@`).
 */
export interface NatsEndpoint {
  servers: string;
  user?: string;
  pass?: string;
  token?: string;
  /** `_INBOX.<user>`: replies to this user arrive below its own prefix (the server lets only it read them). */
  inboxPrefix?: string;
  tls?: { caFile?: string; checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined };
}

export function natsEndpoint(url: string, caFile?: string): NatsEndpoint {
  const u = new URL(url);
  if (u.protocol !== 'nats:' && u.protocol !== 'tls:') throw new Error(`NATS URL must use nats: or tls:, got ${u.protocol}`);
  const out: NatsEndpoint = { servers: `${u.hostname}:${u.port || 4222}` };
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  if (user && pass) Object.assign(out, { user, pass }, /^[A-Za-z0-9_-]+$/.test(user) && { inboxPrefix: busInboxPrefix(user) });
  else if (user) out.token = user;
  // The certificate must name the host of the URL. (nats.js gives Node no server name for an IP
  // address, and Node then checks the certificate against "localhost".)
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (u.protocol === 'tls:' || caFile) out.tls = { ...(caFile && { caFile }), checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert) };
  return out;
}

/** The URL with its password or token replaced by `***`, for logs and messages. */
export function redactNatsUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(invalid NATS URL)';
  }
  if (u.password) u.password = '***';
  else if (u.username) u.username = '***';
  return u.toString();
}
