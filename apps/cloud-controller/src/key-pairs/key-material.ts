/**
 * Key generation, parsing and fingerprints — the one place key pairs touch `node:crypto`
 * (behind `KeyMaterial` so the service can be tested with a fake).
 *
 * Fingerprints exactly as AWS computes them:
 * - RSA key created by EC2: SHA-1 of the DER PKCS#8 private key, colon-separated hex;
 * - RSA key imported: MD5 of the DER SubjectPublicKeyInfo public key, colon-separated hex;
 * - ED25519 (created or imported): base64 SHA-256 of the OpenSSH public key blob, with `=` padding
 *   (`ssh-keygen -l -E sha256` without its `SHA256:` prefix and padding).
 */
import { createHash, createPublicKey, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { Ec2Error } from '@koala/ec2-query';

export type KeyType = 'rsa' | 'ed25519';

export interface GeneratedKey {
  keyType: KeyType;
  /** RSA: `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1); ED25519: `-----BEGIN OPENSSH PRIVATE KEY-----`. */
  privateKeyPem: string;
  /** OpenSSH public key line `ssh-… AAAA… comment`. */
  publicKey: string;
  fingerprint: string;
}

export interface ParsedPublicKey {
  keyType: KeyType;
  publicKey: string;
  fingerprint: string;
}

/** Port: what the key pair service needs from cryptography. */
export interface KeyMaterial {
  /** Async: RSA generation takes tens of milliseconds and must not block the event loop. */
  generate(keyType: KeyType, comment: string): Promise<GeneratedKey>;
  /** Parses ImportKeyPair's PublicKeyMaterial (decoded); `InvalidKeyPair.Format` when not a supported key. */
  parsePublicKey(material: Buffer): ParsedPublicKey;
}
export const KEY_MATERIAL = Symbol('KEY_MATERIAL');

// ---- SSH wire format helpers -------------------------------------------------------------

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
function sshString(s: Buffer | string): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([u32(b.length), b]);
}
/** SSH mpint: big-endian, minimal, with a 0x00 in front when the high bit is set. */
function mpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  let b = unsigned.subarray(i);
  if (b.length && b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return sshString(b);
}

class SshReader {
  private off = 0;
  constructor(private readonly buf: Buffer) {}
  string(): Buffer {
    if (this.off + 4 > this.buf.length) throw new Error('truncated');
    const n = this.buf.readUInt32BE(this.off);
    this.off += 4;
    if (this.off + n > this.buf.length) throw new Error('truncated');
    const s = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return s;
  }
  done(): boolean {
    return this.off === this.buf.length;
  }
}

function b64url(b: Buffer): string {
  return b.toString('base64url');
}
function colonHex(b: Buffer): string {
  return b.toString('hex').match(/../g)!.join(':');
}

/** The OpenSSH public key blob of an RSA or ED25519 public key. */
export function sshPublicBlob(key: KeyObject): { keyType: KeyType; blob: Buffer } {
  const jwk = key.export({ format: 'jwk' }) as { kty?: string; crv?: string; n?: string; e?: string; x?: string };
  if (jwk.kty === 'RSA' && jwk.n && jwk.e) {
    return {
      keyType: 'rsa',
      blob: Buffer.concat([sshString('ssh-rsa'), mpint(Buffer.from(jwk.e, 'base64url')), mpint(Buffer.from(jwk.n, 'base64url'))]),
    };
  }
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && jwk.x) {
    return { keyType: 'ed25519', blob: Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.from(jwk.x, 'base64url'))]) };
  }
  throw new Error('unsupported key type');
}

/** `ssh-keygen -l -E sha256` value (without `SHA256:`), with base64 padding as AWS shows it. */
export function sha256Fingerprint(blob: Buffer): string {
  return createHash('sha256').update(blob).digest('base64');
}
/** AWS fingerprint of an imported RSA key: MD5 of the DER SubjectPublicKeyInfo. */
export function rsaImportedFingerprint(key: KeyObject): string {
  return colonHex(
    createHash('md5')
      .update(key.export({ type: 'spki', format: 'der' }))
      .digest(),
  );
}
/** AWS fingerprint of an RSA key it created: SHA-1 of the DER PKCS#8 private key. */
export function rsaCreatedFingerprint(privateKey: KeyObject): string {
  return colonHex(
    createHash('sha1')
      .update(privateKey.export({ type: 'pkcs8', format: 'der' }))
      .digest(),
  );
}

function publicLine(keyType: KeyType, blob: Buffer, comment: string): string {
  const c = comment.replace(/[\r\n]/g, ' ').trim();
  return `ssh-${keyType} ${blob.toString('base64')}${c ? ' ' + c : ''}`;
}

/** An ED25519 private key in OpenSSH's `openssh-key-v1` format (unencrypted), as AWS returns it. */
export function opensshEd25519PrivateKey(privateKey: KeyObject, comment: string, random: (n: number) => Buffer = randomBytes): string {
  const jwk = privateKey.export({ format: 'jwk' }) as { d: string; x: string };
  const seed = Buffer.from(jwk.d, 'base64url');
  const pub = Buffer.from(jwk.x, 'base64url');
  const pubBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = random(4);
  let priv = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), sshString('none'), sshString('none'), sshString(''), u32(1), sshString(pubBlob), sshString(priv)]);
  const lines = body
    .toString('base64')
    .match(/.{1,70}/g)!
    .join('\n');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

const MIN_RSA_BITS = 1024;
const MAX_RSA_BITS = 16384;

function formatError(): Ec2Error {
  return Ec2Error.malformed('InvalidKeyPair.Format', '');
}

const generateKeyPairAsync = promisify(generateKeyPair) as unknown as (
  type: 'rsa' | 'ed25519',
  options: { modulusLength?: number; publicExponent?: number },
) => Promise<{ privateKey: KeyObject; publicKey: KeyObject }>;

/** `node:crypto` implementation of `KeyMaterial`. */
export class NodeKeyMaterial implements KeyMaterial {
  // Generation runs in libuv's thread pool: a synchronous 2048-bit RSA key held the whole
  // CLC event loop (every other account's requests) for tens of milliseconds per key.
  async generate(keyType: KeyType, comment: string): Promise<GeneratedKey> {
    if (keyType === 'rsa') {
      const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
      return {
        keyType,
        privateKeyPem: (privateKey.export({ type: 'pkcs1', format: 'pem' }) as string).trimEnd(),
        publicKey: publicLine('rsa', sshPublicBlob(publicKey).blob, comment),
        fingerprint: rsaCreatedFingerprint(privateKey),
      };
    }
    const { privateKey, publicKey } = await generateKeyPairAsync('ed25519', {});
    const { blob } = sshPublicBlob(publicKey);
    return {
      keyType,
      privateKeyPem: opensshEd25519PrivateKey(privateKey, comment).trimEnd(),
      publicKey: publicLine('ed25519', blob, comment),
      fingerprint: sha256Fingerprint(blob),
    };
  }

  parsePublicKey(material: Buffer): ParsedPublicKey {
    let key: KeyObject;
    let comment = '';
    const text = material.toString('utf8').trim();
    try {
      const ssh = /^(ssh-rsa|ssh-ed25519)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*))?$/s.exec(text);
      if (ssh) {
        comment = (ssh[3] ?? '').split(/\r?\n/)[0]!.trim();
        key = fromSshBlob(ssh[1]!, Buffer.from(ssh[2]!, 'base64'));
      } else if (text.startsWith('-----BEGIN ')) {
        if (!/^-----BEGIN (RSA )?PUBLIC KEY-----/.test(text)) throw formatError();
        key = createPublicKey(text);
      } else {
        key = createPublicKey({ key: material, format: 'der', type: 'spki' });
      }
    } catch (e) {
      if (e instanceof Ec2Error) throw e;
      throw formatError();
    }
    let parsed: { keyType: KeyType; blob: Buffer };
    try {
      parsed = sshPublicBlob(key);
    } catch {
      throw formatError();
    }
    if (parsed.keyType === 'rsa') {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) throw formatError();
      return { keyType: 'rsa', publicKey: publicLine('rsa', parsed.blob, comment), fingerprint: rsaImportedFingerprint(key) };
    }
    return { keyType: 'ed25519', publicKey: publicLine('ed25519', parsed.blob, comment), fingerprint: sha256Fingerprint(parsed.blob) };
  }
}

function fromSshBlob(type: string, blob: Buffer): KeyObject {
  const r = new SshReader(blob);
  if (r.string().toString('latin1') !== type) throw formatError();
  if (type === 'ssh-rsa') {
    const e = r.string();
    const n = r.string();
    if (!r.done()) throw formatError();
    const strip = (b: Buffer) => {
      let i = 0;
      while (i < b.length - 1 && b[i] === 0) i++;
      return b.subarray(i);
    };
    return createPublicKey({ key: { kty: 'RSA', n: b64url(strip(n)), e: b64url(strip(e)) }, format: 'jwk' });
  }
  const pk = r.string();
  if (pk.length !== 32 || !r.done()) throw formatError();
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(pk) }, format: 'jwk' });
}
