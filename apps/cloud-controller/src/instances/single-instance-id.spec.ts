import { Params } from '@koala/ec2-query';
import { readSingleInstanceId } from './instances.handlers.js';

const code = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return (e as { code: string }).code;
  }
};

describe('readSingleInstanceId (GetConsoleOutput)', () => {
  it('reads InstanceId (AWS) and InstanceId.1 (boto 2, euca2ools)', () => {
    expect(readSingleInstanceId(new Params({ InstanceId: 'i-0123abcd' }))).toBe('i-0123abcd');
    expect(readSingleInstanceId(new Params({ 'InstanceId.1': 'i-0123abcd' }))).toBe('i-0123abcd');
    expect(readSingleInstanceId(new Params({ InstanceId: 'i-0123abcd', 'InstanceId.1': 'i-0123abcd' }))).toBe('i-0123abcd');
  });

  it('refuses none with MissingParameter and several with InvalidParameterCombination', () => {
    expect(code(() => readSingleInstanceId(new Params({})))).toBe('MissingParameter');
    expect(code(() => readSingleInstanceId(new Params({ 'InstanceId.1': 'i-1', 'InstanceId.2': 'i-2' })))).toBe('InvalidParameterCombination');
    expect(code(() => readSingleInstanceId(new Params({ InstanceId: 'i-1', 'InstanceId.1': 'i-2' })))).toBe('InvalidParameterCombination');
  });
});
