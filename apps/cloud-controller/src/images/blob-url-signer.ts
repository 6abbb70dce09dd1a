/**
 * Signed, expiring URLs of the image store: `GET /images/blobs/sha256/<hex>?expires=<unix>&signature=<hex>`,
 * signature = HMAC-SHA256(key, "GET\n/images/blobs/sha256/<hex>\n<expires>"), key derived from the
 * master key (HKDF, own label, so it is useless for anything else). Checked in constant time.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

export const BLOB_PATH_PREFIX = '/images/blobs/sha256/';

export type SignatureCheck = 'ok' | 'expired' | 'bad-signature';

export class BlobUrlSigner {
  private readonly key: Buffer;

  constructor(masterKey: string) {
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(masterKey, 'utf8'), Buffer.alloc(0), Buffer.from('koala image-store url v1'), 32));
  }

  private mac(sha256: string, expires: number): Buffer {
    return createHmac('sha256', this.key).update(`GET\n${BLOB_PATH_PREFIX}${sha256}\n${expires}`).digest();
  }

  /** Absolute URL on `endpoint` (KOALA_PUBLIC_ENDPOINT) valid until `expires` (unix seconds). */
  url(endpoint: string, sha256: string, expires: number): string {
    const u = new URL(BLOB_PATH_PREFIX.slice(1) + sha256, endpoint.endsWith('/') ? endpoint : endpoint + '/');
    u.search = `expires=${expires}&signature=${this.mac(sha256, expires).toString('hex')}`;
    return u.toString();
  }

  verify(sha256: string, expires: string | undefined, signature: string | undefined, now: Date): SignatureCheck {
    if (!expires || !/^\d{1,12}$/.test(expires) || !signature || !/^[a-f0-9]{64}$/.test(signature)) return 'bad-signature';
    const want = this.mac(sha256, Number(expires));
    if (!timingSafeEqual(want, Buffer.from(signature, 'hex'))) return 'bad-signature';
    return Number(expires) * 1000 < now.getTime() ? 'expired' : 'ok';
  }
}
