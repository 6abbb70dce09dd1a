import { callerIdentity } from './identity-protocol.js';

describe('the caller identity', () => {
  it('derives a stable AWS-shaped identity per account', () => {
    const a = callerIdentity('123456789012');
    expect(a).toEqual(callerIdentity('123456789012'));
    expect(a.userId).toMatch(/^AIDA[A-Z2-7]{16}$/);
    expect(a.arn).toBe('arn:aws:iam::123456789012:user/admin');
    expect(callerIdentity('123456789013').userId).not.toBe(a.userId);
  });
});
