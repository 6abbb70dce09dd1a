import { Ec2Error } from './errors.js';
import { isFormContentType, readRequestParams } from './request-params.js';
import { validateParamMap } from './validate.js';

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Ec2Error).code;
  }
  return 'none';
}

describe('readRequestParams', () => {
  const req = (body: string, ct?: string, method = 'POST', query = '') => ({ method, query, headers: ct === undefined ? {} : { 'content-type': ct }, rawBody: Buffer.from(body) });

  it('merges query then form body, the first occurrence winning', () => {
    const r = readRequestParams(req('A=body&B=2&B=3', 'application/x-www-form-urlencoded; charset=UTF-8', 'POST', 'A=query&C=x+y'));
    expect({ ...r.map }).toEqual({ A: 'query', C: 'x y', B: '2' });
    expect(r.body).toEqual([
      ['A', 'body'],
      ['B', '2'],
      ['B', '3'],
    ]);
  });

  it('reads a POST body without content type as form data; ignores bodies of other methods', () => {
    expect(readRequestParams(req('A=1')).map.A).toBe('1');
    expect(readRequestParams(req('A=1', 'text/plain', 'GET')).map.A).toBeUndefined();
  });

  it('refuses a non-form POST body, also one whose parameters merely mention the form type', () => {
    expect(codeOf(() => readRequestParams(req('A=1', 'text/plain; x=application/x-www-form-urlencoded')))).toBe('InvalidParameterValue');
    expect(codeOf(() => readRequestParams(req('{}', 'application/json')))).toBe('InvalidParameterValue');
    expect(isFormContentType(' Application/X-WWW-Form-Urlencoded ;charset=utf-8')).toBe(true);
    expect(isFormContentType('application/x-www-form-urlencodedx')).toBe(false);
  });

  it('refuses malformed percent-encodings (also invalid UTF-8) with MalformedQueryString', () => {
    expect(codeOf(() => readRequestParams(req('', undefined, 'GET', 'A=%zz')))).toBe('MalformedQueryString');
    expect(codeOf(() => readRequestParams(req('A=%FF', 'application/x-www-form-urlencoded')))).toBe('MalformedQueryString');
  });
});

describe('validateParamMap', () => {
  it('accepts ordinary parameters, tabs and newlines, unicode', () => {
    expect(codeOf(() => validateParamMap({ Action: 'X', Description: 'a\tb\r\nc', Name: 'żółw 🐢' }))).toBe('none');
  });

  it.each([
    ['NUL in a value', { A: 'a\u0000b' }],
    ['control char in a value', { A: 'a\u0007' }],
    ['U+FFFF in a value', { A: '\uffff' }],
    ['NUL in a name', { 'A\u0000': 'x' }],
    ['empty name', { '': 'x' }],
    ['long name', { ['N'.repeat(300)]: 'x' }],
    ['long value', { A: 'x'.repeat(4097) }],
    ['too many parameters', Object.fromEntries(Array.from({ length: 2001 }, (_, i) => [`P${i}`, 'x']))],
  ])('refuses %s', (_n, map) => {
    expect(codeOf(() => validateParamMap(map as Record<string, string>))).toBe('InvalidParameterValue');
  });

  it('gives user data and public keys their own limits', () => {
    expect(codeOf(() => validateParamMap({ UserData: 'A'.repeat(21848) }))).toBe('none');
    expect(codeOf(() => validateParamMap({ Action: 'ModifyInstanceAttribute', Attribute: 'userData', Value: 'A'.repeat(21848) }))).toBe('none');
    expect(codeOf(() => validateParamMap({ Action: 'CreateTags', Value: 'A'.repeat(21848) }))).toBe('InvalidParameterValue');
    expect(codeOf(() => validateParamMap({ UserData: 'A'.repeat(40000) }))).toBe('InvalidParameterValue');
  });

  it('keeps ids short and checks the shape of ids no handler checks', () => {
    expect(codeOf(() => validateParamMap({ 'InstanceId.1': 'i-' + 'f'.repeat(200) }))).toBe('InvalidParameterValue');
    expect(codeOf(() => validateParamMap({ 'IpPermissions.1.Groups.1.GroupId': 'sg-' + 'f'.repeat(200) }))).toBe('InvalidParameterValue');
    expect(codeOf(() => validateParamMap({ Description: 'd'.repeat(200), 'InstanceId.1': 'i-0123456789abcdef0' }))).toBe('none');
    expect(codeOf(() => validateParamMap({ VpcId: 'vpc-0123456789abcdef0', SubnetId: 'subnet-01234567' }))).toBe('none');
    expect(codeOf(() => validateParamMap({ VpcId: 'vpc-' + '0'.repeat(40) }))).toBe('InvalidParameterValue');
    expect(codeOf(() => validateParamMap({ SubnetId: 'sn-1' }))).toBe('InvalidParameterValue');
  });

  it('never echoes the refused value', () => {
    try {
      validateParamMap({ Secretish: 'hunter2\u0000' });
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
    }
  });
});
