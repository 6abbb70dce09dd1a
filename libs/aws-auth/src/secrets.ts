import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomInt } from 'node:crypto';

const VERSION = 'v1';
const INFO = 'koala/aws-auth/secret-access-key/v1';

function deriveKey(masterKey: string, salt: Buffer): Buffer {
  if (typeof masterKey !== 'string' || masterKey.length < 16) {
    throw new Error('master key must be a string of at least 16 characters');
  }
  return Buffer.from(hkdfSync('sha256', Buffer.from(masterKey, 'utf8'), salt, INFO, 32));
}

/**
 * Encrypt a secret (e.g. a secret access key) for storage: AES-256-GCM with a key derived by
 * HKDF-SHA256 from `masterKey` and a random salt. Returns `v1:<base64(salt16|iv12|tag16|ct)>`.
 */
export function encryptSecret(plaintext: string, masterKey: string): string {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(masterKey, salt), iv);
  cipher.setAAD(Buffer.from(VERSION));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${VERSION}:${Buffer.concat([salt, iv, cipher.getAuthTag(), ct]).toString('base64')}`;
}

/** Inverse of `encryptSecret`; throws `Error('cannot decrypt secret')` on a wrong key or a tampered blob. */
export function decryptSecret(blob: string, masterKey: string): string {
  const fail = () => new Error('cannot decrypt secret');
  if (typeof blob !== 'string' || !blob.startsWith(`${VERSION}:`)) throw fail();
  const raw = Buffer.from(blob.slice(VERSION.length + 1), 'base64');
  if (raw.length < 16 + 12 + 16) throw fail();
  const salt = raw.subarray(0, 16);
  const iv = raw.subarray(16, 28);
  const tag = raw.subarray(28, 44);
  const ct = raw.subarray(44);
  try {
    const d = createDecipheriv('aes-256-gcm', deriveKey(masterKey, salt), iv);
    d.setAAD(Buffer.from(VERSION));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ct), d.final()]).toString('utf8');
  } catch {
    throw fail();
  }
}

const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const SECRET_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function randomString(alphabet: string, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

/** A new key pair: `AKIA` + 16 upper-case alphanumerics (20 chars) and a 40-char secret. */
export function generateAccessKey(): { accessKeyId: string; secretAccessKey: string } {
  return { accessKeyId: 'AKIA' + randomString(UPPER_ALNUM, 16), secretAccessKey: randomString(SECRET_CHARS, 40) };
}

/** True if `s` looks like an access key id we issue (20 upper-case alphanumerics). */
export function isAccessKeyId(s: string): boolean {
  return /^[A-Z0-9]{16,128}$/.test(s);
}
