import { BlobUrlSigner } from './blob-url-signer.js';

const D = 'a'.repeat(64);
const now = new Date('2026-01-01T00:00:00Z');
const t = now.getTime() / 1000;

describe('BlobUrlSigner', () => {
  const signer = new BlobUrlSigner('0123456789abcdef0123456789abcdef');
  const parts = (url: string) => {
    const u = new URL(url);
    return { path: u.pathname, expires: u.searchParams.get('expires') ?? undefined, signature: u.searchParams.get('signature') ?? undefined };
  };

  it('builds URLs on the public endpoint (with or without a path and trailing slash)', () => {
    expect(signer.url('http://127.0.0.1:8773/', D, t + 60)).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:8773/images/blobs/sha256/${D}\\?expires=${t + 60}&signature=[a-f0-9]{64}$`));
    expect(parts(signer.url('https://cloud.example/koala', D, t)).path).toBe(`/koala/images/blobs/sha256/${D}`);
  });

  it('accepts its own signature until it expires', () => {
    const p = parts(signer.url('http://h/', D, t + 60));
    expect(signer.verify(D, p.expires, p.signature, now)).toBe('ok');
    expect(signer.verify(D, p.expires, p.signature, new Date(now.getTime() + 61_000))).toBe('expired');
  });

  it('refuses tampered digests, expiries and signatures, and other keys', () => {
    const p = parts(signer.url('http://h/', D, t + 60));
    expect(signer.verify('b'.repeat(64), p.expires, p.signature, now)).toBe('bad-signature');
    expect(signer.verify(D, String(t + 6000), p.signature, now)).toBe('bad-signature');
    const flipped = (p.signature![0] === '0' ? '1' : '0') + p.signature!.slice(1);
    expect(signer.verify(D, p.expires, flipped, now)).toBe('bad-signature');
    expect(signer.verify(D, p.expires, p.signature!.slice(2), now)).toBe('bad-signature');
    expect(signer.verify(D, undefined, p.signature, now)).toBe('bad-signature');
    expect(signer.verify(D, p.expires, undefined, now)).toBe('bad-signature');
    expect(new BlobUrlSigner('another master key, quite long').verify(D, p.expires, p.signature, now)).toBe('bad-signature');
  });
});
