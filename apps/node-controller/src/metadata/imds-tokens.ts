import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '@koala/runtime';

export const TOKEN_PATH = '/latest/api/token';
export const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
export const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
export const MAX_TTL_SECONDS = 21600;

/** The TTL header of a token PUT: a decimal 1..21600, else undefined (400). */
export function parseTtl(raw: string | string[] | undefined): number | undefined {
  if (typeof raw !== 'string' || !/^[0-9]{1,5}$/.test(raw.trim())) return undefined;
  const n = Number(raw.trim());
  return n >= 1 && n <= MAX_TTL_SECONDS ? n : undefined;
}

const NONCE = 16;
const MAC = 32;
const EXP = 8;
const MAX_TOKEN_CHARS = 256;

/**
 * IMDSv2 session tokens: opaque to the guest, `base64url(expiry ‖ nonce ‖ instanceId ‖ hmac)`,
 * signed with a key drawn at random per NC process (a restarted NC invalidates every token, as
 * clients expect to fetch a new one on 401). A token is bound to one instance and expires.
 */
export class ImdsTokens {
  constructor(
    private readonly clock: Clock,
    private readonly key: Buffer = randomBytes(32),
  ) {}

  issue(instanceId: string, ttlSeconds: number): string {
    const exp = Buffer.alloc(EXP);
    exp.writeBigUInt64BE(BigInt(this.clock.now().getTime() + ttlSeconds * 1000));
    const payload = Buffer.concat([exp, randomBytes(NONCE), Buffer.from(instanceId, 'utf8')]);
    return Buffer.concat([payload, this.mac(payload)]).toString('base64url');
  }

  /** Seconds the token has left for `instanceId`, or undefined when invalid, foreign or expired. */
  verify(token: string | string[] | undefined, instanceId: string): number | undefined {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
    const raw = Buffer.from(token, 'base64url');
    if (raw.length <= EXP + NONCE + MAC) return undefined;
    const payload = raw.subarray(0, raw.length - MAC);
    if (!timingSafeEqual(raw.subarray(raw.length - MAC), this.mac(payload))) return undefined;
    if (payload.subarray(EXP + NONCE).toString('utf8') !== instanceId) return undefined;
    const leftMs = Number(payload.readBigUInt64BE(0)) - this.clock.now().getTime();
    return leftMs > 0 ? Math.ceil(leftMs / 1000) : undefined;
  }

  private mac(payload: Buffer): Buffer {
    return createHmac('sha256', this.key).update('koala-imds-token-v1\0').update(payload).digest();
  }
}
