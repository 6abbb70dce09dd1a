/**
 * Secrets sealed for one component (CHAP secrets on their way to the SC that exports a volume
 * and the NC that attaches it): each SC and NC has an X25519 key pair made at its first start
 * (private key in $KOALA_HOME/keys, 0600) and announces the public key; the sender seals with
 * an ephemeral X25519 key, HKDF-SHA256 and AES-256-GCM. `context` (e.g. the volume id) is bound
 * in, so a sealed secret cannot be replayed for another purpose. Neither NATS nor a component
 * in between (the CC) can read it.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const VERSION = 's1';
const b64 = (b: Buffer) => b.toString('base64url');

function derive(shared: Buffer, ephemeral: Buffer, recipient: Buffer, context: string): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), `koala sealed secret ${VERSION}|${context}`, 32));
}

function publicKeyOf(encoded: string): KeyObject {
  const der = Buffer.from(encoded, 'base64url');
  const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'x25519') throw new Error('not an X25519 public key');
  return key;
}

/** Seals `secret` for the holder of `publicKey` (base64url SPKI, as `SealKey.publicKey`). */
export function sealFor(publicKey: string, secret: string, context: string): string {
  const recipient = publicKeyOf(publicKey);
  const eph = generateKeyPairSync('x25519');
  const ephPub = eph.publicKey.export({ format: 'der', type: 'spki' });
  const key = derive(diffieHellman({ privateKey: eph.privateKey, publicKey: recipient }), ephPub, Buffer.from(publicKey, 'base64url'), context);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const ct = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return [VERSION, b64(ephPub), b64(iv), b64(ct), b64(cipher.getAuthTag())].join('.');
}

/** A component's own key pair. */
export class SealKey {
  readonly publicKey: string;
  private constructor(private readonly privateKey: KeyObject) {
    this.publicKey = b64(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }));
  }

  static generate(): SealKey {
    return new SealKey(generateKeyPairSync('x25519').privateKey);
  }

  /** Reads the key pair from `file` (PEM, PKCS#8), creating it (0600, directory 0700) on first start. */
  static loadOrCreate(file: string): SealKey {
    if (existsSync(file)) return new SealKey(createPrivateKey(readFileSync(file)));
    const key = SealKey.generate();
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, key.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    return key;
  }

  /** Opens what `sealFor(this.publicKey, secret, context)` made; throws on anything else. */
  open(sealed: string, context: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 5 || parts[0] !== VERSION) throw new Error('not a sealed secret');
    const [ephPub, iv, ct, tag] = parts.slice(1).map((p) => Buffer.from(p, 'base64url'));
    const key = derive(diffieHellman({ privateKey: this.privateKey, publicKey: publicKeyOf(parts[1]) }), ephPub, Buffer.from(this.publicKey, 'base64url'), context);
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
    } catch {
      throw new Error('sealed secret does not open with this key and context');
    }
  }
}
