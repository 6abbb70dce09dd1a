import { Ec2Error } from './errors.js';
import { IAM_API, renderQueryError, renderQueryResponse, STS_API } from './query-dialect.js';

describe('STS/IAM query dialect', () => {
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
});
