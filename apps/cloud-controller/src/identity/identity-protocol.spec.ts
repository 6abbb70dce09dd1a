import { Ec2Error } from '@koala/ec2-query';
import { callerIdentity, identityApiOf, IAM_API, renderQueryError, renderQueryResponse, STS_API } from './identity-protocol.js';

describe('STS/IAM query dialect', () => {
  it('claims only the identity actions', () => {
    expect(identityApiOf('GetCallerIdentity')).toBe(STS_API);
    expect(identityApiOf('GetUser')).toBe(IAM_API);
    expect(identityApiOf('DescribeInstances')).toBeUndefined();
    expect(identityApiOf('__proto__')).toBeUndefined();
    expect(identityApiOf(undefined)).toBeUndefined();
  });

  it('renders results with <member> lists and errors as ErrorResponse (Sender/Receiver)', () => {
    expect(renderQueryResponse(IAM_API, 'ListAccountAliases', 'r1', { AccountAliases: ['a<b'], IsTruncated: false })).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><ListAccountAliasesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">' +
        '<ListAccountAliasesResult><AccountAliases><member>a&lt;b</member></AccountAliases><IsTruncated>false</IsTruncated></ListAccountAliasesResult>' +
        '<ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></ListAccountAliasesResponse>',
    );
    const auth = renderQueryError(STS_API, new Ec2Error('AuthFailure', 'x', 401), 'r');
    expect(auth).toMatchObject({ status: 403, code: 'InvalidClientTokenId' });
    expect(auth.body).toContain('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>');
    const internal = renderQueryError(STS_API, new Error('secret detail'), 'r');
    expect(internal.status).toBe(500);
    expect(internal.body).toContain('<Type>Receiver</Type>');
    expect(internal.body).not.toContain('secret detail');
  });

  it('derives a stable AWS-shaped identity per account', () => {
    const a = callerIdentity('123456789012');
    expect(a).toEqual(callerIdentity('123456789012'));
    expect(a.userId).toMatch(/^AIDA[A-Z2-7]{16}$/);
    expect(a.arn).toBe('arn:aws:iam::123456789012:user/admin');
    expect(callerIdentity('123456789013').userId).not.toBe(a.userId);
  });
});
