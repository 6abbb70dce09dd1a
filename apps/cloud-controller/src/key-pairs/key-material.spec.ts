import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEc2Error } from '@koala/ec2-query';
import { NodeKeyMaterial, sha256Fingerprint } from './key-material.js';

const keys = new NodeKeyMaterial();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'koala-keys-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content, { mode: 0o600 });
  return p;
}
function sh(cmd: string, args: string[], input?: string | Buffer): string {
  return execFileSync(cmd, args, { input, encoding: 'utf8' }).trim();
}
/** `openssl <digest> -c` output → `aa:bb:...`. */
function opensslDigest(digest: 'sha1' | 'md5', der: Buffer): string {
  return sh('openssl', [digest, '-c'], der).split('= ')[1]!.trim();
}
/** `ssh-keygen -l -E sha256` → the base64 part after `SHA256:`. */
function sshKeygenSha256(path: string): string {
  return /SHA256:([A-Za-z0-9+/]+)/.exec(sh('ssh-keygen', ['-l', '-E', 'sha256', '-f', path]))![1]!;
}
function blobOf(line: string): string {
  return line.split(/\s+/)[1]!;
}
function formatErrorOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isEc2Error(e) ? e.code : String(e);
  }
  return undefined;
}

describe('created keys', () => {
  it('RSA: PKCS#1 PEM, 2048 bits, fingerprint = SHA-1 of the DER PKCS#8 private key (openssl)', async () => {
    const k = await keys.generate('rsa', 'k1');
    expect(k.privateKeyPem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n[\s\S]+\n-----END RSA PRIVATE KEY-----$/);
    const pem = file('rsa.pem', k.privateKeyPem + '\n');
    expect(sh('openssl', ['rsa', '-in', pem, '-noout', '-text'])).toMatch(/Private-Key: \(2048 bit/);
    const pkcs8 = execFileSync('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', pem, '-outform', 'DER']);
    expect(k.fingerprint).toBe(opensslDigest('sha1', pkcs8));
    expect(k.fingerprint).toMatch(/^([0-9a-f]{2}:){19}[0-9a-f]{2}$/);
    // the stored public key is the one ssh-keygen derives from the private key
    expect(blobOf(k.publicKey)).toBe(blobOf(sh('ssh-keygen', ['-y', '-f', pem])));
    expect(k.publicKey).toMatch(/^ssh-rsa AAAA\S+ k1$/);
  });

  it('ED25519: OpenSSH private key that ssh-keygen reads; fingerprint = base64 SHA-256 of the blob with padding', async () => {
    const k = await keys.generate('ed25519', 'my-ed');
    expect(k.privateKeyPem).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+\n-----END OPENSSH PRIVATE KEY-----$/);
    for (const line of k.privateKeyPem.split('\n').slice(1, -1)) expect(line.length).toBeLessThanOrEqual(70);
    const path = file('ed', k.privateKeyPem + '\n');
    const derived = sh('ssh-keygen', ['-y', '-f', path]);
    expect(blobOf(derived)).toBe(blobOf(k.publicKey));
    expect(k.fingerprint).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(k.fingerprint.replace(/=+$/, '')).toBe(sshKeygenSha256(path));
    // the comment survives in the private key
    expect(sh('ssh-keygen', ['-l', '-f', path])).toContain('my-ed');
  });

  it('two created keys differ', async () => {
    expect((await keys.generate('ed25519', 'a')).fingerprint).not.toBe((await keys.generate('ed25519', 'a')).fingerprint);
  });

  it('RSA generation leaves the event loop free (runs in the thread pool)', async () => {
    // A 1 ms timer keeps ticking while 8 keys are generated; a synchronous generator would
    // hold the loop for the whole batch (tens of ms per key).
    let worst = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const t = performance.now();
      worst = Math.max(worst, t - last);
      last = t;
    }, 1);
    try {
      const started = performance.now();
      await Promise.all(Array.from({ length: 8 }, (_, i) => keys.generate('rsa', `k${i}`)));
      const total = performance.now() - started;
      await new Promise((r) => setTimeout(r, 5)); // let the timer see a late tick
      expect(worst).toBeLessThan(Math.max(25, total / 4));
    } finally {
      clearInterval(timer);
    }
  });
});

describe('imported keys', () => {
  it('OpenSSH RSA line: fingerprint = MD5 of the DER SubjectPublicKeyInfo (ssh-keygen -e + openssl)', () => {
    const base = join(dir, 'imp_rsa');
    sh('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', 'alice@laptop', '-f', base]);
    const line = readFileSync(base + '.pub', 'utf8');
    const k = keys.parsePublicKey(Buffer.from(line));
    expect(k.keyType).toBe('rsa');
    const spkiPem = sh('ssh-keygen', ['-e', '-m', 'PKCS8', '-f', base + '.pub']);
    const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'DER'], { input: spkiPem });
    expect(k.fingerprint).toBe(opensslDigest('md5', der));
    expect(k.publicKey).toBe(line.trim());
    // the same key as PEM SPKI, PKCS#1 PEM and DER SPKI gives the same fingerprint
    expect(keys.parsePublicKey(Buffer.from(spkiPem)).fingerprint).toBe(k.fingerprint);
    expect(keys.parsePublicKey(der).fingerprint).toBe(k.fingerprint);
    const pkcs1 = sh('ssh-keygen', ['-e', '-m', 'PEM', '-f', base + '.pub']);
    expect(pkcs1).toContain('BEGIN RSA PUBLIC KEY');
    expect(keys.parsePublicKey(Buffer.from(pkcs1)).fingerprint).toBe(k.fingerprint);
    expect(blobOf(keys.parsePublicKey(der).publicKey)).toBe(blobOf(line));
  });

  it('OpenSSH ED25519 line: ssh-keygen -l -E sha256 fingerprint, padded', () => {
    const base = join(dir, 'imp_ed');
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', base]);
    const k = keys.parsePublicKey(readFileSync(base + '.pub'));
    expect(k.keyType).toBe('ed25519');
    expect(k.fingerprint.replace(/=$/, '')).toBe(sshKeygenSha256(base + '.pub'));
    expect(k.fingerprint.endsWith('=')).toBe(true);
  });

  it('sha256Fingerprint is plain base64 of SHA-256', () => {
    expect(sha256Fingerprint(Buffer.from(''))).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  });

  it.each([
    ['garbage', Buffer.from('hello world')],
    ['ssh-dss', Buffer.from('ssh-dss AAAAB3NzaC1kc3MAAACBAP== x')],
    ['type mismatch', Buffer.from(`ssh-rsa ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 1)]).toString('base64')}`)],
    ['truncated ed25519', Buffer.from(`ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), Buffer.alloc(5, 1)]).toString('base64')}`)],
    ['private key', Buffer.from(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string)],
    ['EC key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }) as Buffer],
    ['RSA 512 bits', generateKeyPairSync('rsa', { modulusLength: 512 }).publicKey.export({ type: 'spki', format: 'der' }) as Buffer],
  ])('%s → InvalidKeyPair.Format', (_name, material) => {
    expect(formatErrorOf(() => keys.parsePublicKey(material))).toBe('InvalidKeyPair.Format');
  });
});
