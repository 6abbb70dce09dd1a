import { natsEndpoint, redactNatsUrl } from './nats-url.js';

describe('natsEndpoint', () => {
  it('reads plain, user/password, token and TLS URLs', () => {
    expect(natsEndpoint('nats://127.0.0.1:4222')).toEqual({ servers: '127.0.0.1:4222' });
    expect(natsEndpoint('nats://nats.example.org')).toEqual({ servers: 'nats.example.org:4222' });
    expect(natsEndpoint('nats://koala:s%40cret@10.0.0.5:4333')).toEqual({ servers: '10.0.0.5:4333', user: 'koala', pass: 's@cret', inboxPrefix: '_INBOX.koala' });
    expect(natsEndpoint('nats://a.b:pw@10.0.0.5:4222').inboxPrefix).toBeUndefined(); // not a subject token: the default inbox
    expect(natsEndpoint('nats://t0ken@10.0.0.5:4222')).toEqual({ servers: '10.0.0.5:4222', token: 't0ken' });
    const anyCheck = { checkServerIdentity: expect.any(Function) };
    expect(natsEndpoint('tls://koala:pw@10.0.0.5:4222')).toEqual({ servers: '10.0.0.5:4222', user: 'koala', pass: 'pw', inboxPrefix: '_INBOX.koala', tls: anyCheck });
    expect(natsEndpoint('tls://10.0.0.5:4222', '/etc/koala/nats-ca.pem')).toEqual({ servers: '10.0.0.5:4222', tls: { caFile: '/etc/koala/nats-ca.pem', ...anyCheck } });
    expect(natsEndpoint('nats://10.0.0.5:4222', '/etc/koala/nats-ca.pem').tls).toEqual({ caFile: '/etc/koala/nats-ca.pem', ...anyCheck }); // a CA means TLS
  });

  it("checks the certificate against the URL's host, IP addresses included", () => {
    const cert = (subjectaltname: string) => ({ subject: { CN: 'nats' }, subjectaltname }) as unknown as import('node:tls').PeerCertificate;
    const check = natsEndpoint('tls://10.0.0.5:4222').tls!.checkServerIdentity;
    expect(check('localhost', cert('IP Address:10.0.0.5'))).toBeUndefined();
    expect(check('localhost', cert('DNS:localhost'))?.message).toMatch(/does not match/);
    const byName = natsEndpoint('tls://nats.example.org:4222').tls!.checkServerIdentity;
    expect(byName('nats.example.org', cert('DNS:nats.example.org'))).toBeUndefined();
    expect(byName('nats.example.org', cert('DNS:other.example.org'))?.message).toMatch(/does not match/);
  });

  it('refuses other schemes', () => {
    expect(() => natsEndpoint('http://127.0.0.1:4222')).toThrow(/nats: or tls:/);
  });
});

describe('redactNatsUrl', () => {
  it('hides passwords and tokens, keeps the rest', () => {
    expect(redactNatsUrl('nats://koala:secret@10.0.0.5:4222')).toBe('nats://koala:***@10.0.0.5:4222');
    expect(redactNatsUrl('tls://t0ken@10.0.0.5:4222')).toBe('tls://***@10.0.0.5:4222');
    expect(redactNatsUrl('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222');
    expect(redactNatsUrl('not a url')).toBe('(invalid NATS URL)');
  });
});
