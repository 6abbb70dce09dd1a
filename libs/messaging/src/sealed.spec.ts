import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SealKey, sealFor } from './sealed.js';

describe('sealed secrets', () => {
  it('opens only for its recipient and its context, and never shows the secret', () => {
    const nc = SealKey.generate();
    const other = SealKey.generate();
    const sealed = sealFor(nc.publicKey, 'chap-secret-123456', 'vol-1');
    expect(sealed).not.toContain('chap-secret');
    expect(sealFor(nc.publicKey, 'chap-secret-123456', 'vol-1')).not.toBe(sealed); // fresh ephemeral key each time
    expect(nc.open(sealed, 'vol-1')).toBe('chap-secret-123456');
    expect(() => other.open(sealed, 'vol-1')).toThrow(/does not open/);
    expect(() => nc.open(sealed, 'vol-2')).toThrow(/does not open/);
    const [v, e, iv, ct, tag] = sealed.split('.');
    const flipped = Buffer.from(ct, 'base64url');
    flipped[0] ^= 1;
    expect(() => nc.open([v, e, iv, flipped.toString('base64url'), tag].join('.'), 'vol-1')).toThrow(/does not open/);
    expect(() => nc.open('chap-secret-123456', 'vol-1')).toThrow(/not a sealed secret/);
    expect(() => sealFor('AAAA', 'x', 'c')).toThrow();
  });

  it('keeps its key pair in a root-only file across restarts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'koala-seal-'));
    try {
      const file = join(dir, 'keys', 'nc-n1.pem');
      const a = SealKey.loadOrCreate(file);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);
      const b = SealKey.loadOrCreate(file);
      expect(b.publicKey).toBe(a.publicKey);
      expect(b.open(sealFor(a.publicKey, 's', 'c'), 'c')).toBe('s');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
