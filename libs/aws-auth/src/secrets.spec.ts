import { decryptSecret, encryptSecret, generateAccessKey, isAccessKeyId } from './secrets.js';

const MASTER = 'koala-master-key-for-tests-only';

describe('secret helpers', () => {
  it('round-trips and uses fresh salt/iv each time', () => {
    const a = encryptSecret('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', MASTER);
    const b = encryptSecret('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', MASTER);
    expect(a).not.toBe(b);
    expect(a.startsWith('v1:')).toBe(true);
    expect(a).not.toContain('wJalr');
    expect(decryptSecret(a, MASTER)).toBe('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
  });

  it('refuses a wrong master key and tampered blobs', () => {
    const a = encryptSecret('s3cret', MASTER);
    expect(() => decryptSecret(a, MASTER + 'x')).toThrow('cannot decrypt secret');
    const raw = Buffer.from(a.slice(3), 'base64');
    raw[raw.length - 1]! ^= 1;
    expect(() => decryptSecret('v1:' + raw.toString('base64'), MASTER)).toThrow('cannot decrypt secret');
    expect(() => decryptSecret('v2:abc', MASTER)).toThrow('cannot decrypt secret');
    expect(() => encryptSecret('x', 'short')).toThrow();
  });

  it('generates AWS-shaped access keys', () => {
    const k = generateAccessKey();
    expect(k.accessKeyId).toMatch(/^AKIA[A-Z0-9]{16}$/);
    expect(k.secretAccessKey).toMatch(/^[A-Za-z0-9+/]{40}$/);
    expect(isAccessKeyId(k.accessKeyId)).toBe(true);
    expect(generateAccessKey().accessKeyId).not.toBe(k.accessKeyId);
  });
});
