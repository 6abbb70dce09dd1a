import { checkDryRun } from './dry-run.js';
import { Ec2Error, isEc2Error } from './errors.js';
import { ID_PREFIXES, idPrefixOf, isValidId, newId } from './ids.js';
import { Params } from './params.js';

describe('checkDryRun', () => {
  it('throws DryRunOperation 412 or UnauthorizedOperation 403 only when DryRun=true', () => {
    expect(() => checkDryRun(Params.from('Action=X'))).not.toThrow();
    expect(() => checkDryRun({ DryRun: 'false' }, false)).not.toThrow();
    try {
      checkDryRun(Params.from('DryRun=true'), true);
      throw new Error('no throw');
    } catch (e) {
      expect((e as Ec2Error).code).toBe('DryRunOperation');
      expect((e as Ec2Error).httpStatus).toBe(412);
      expect((e as Ec2Error).message).toBe('Request would have succeeded, but DryRun flag is set.');
    }
    try {
      checkDryRun({ DryRun: 'true' }, false);
      throw new Error('no throw');
    } catch (e) {
      expect((e as Ec2Error).code).toBe('UnauthorizedOperation');
      expect((e as Ec2Error).httpStatus).toBe(403);
    }
  });
});

describe('ids', () => {
  it('generates prefix + 17 lowercase hex', () => {
    const id = newId('i');
    expect(id).toMatch(/^i-[0-9a-f]{17}$/);
    expect(newId(ID_PREFIXES.allocation)).toMatch(/^eipalloc-[0-9a-f]{17}$/);
    expect(newId('vol', () => Buffer.alloc(9, 0xab))).toBe('vol-ababababababababa');
    expect(new Set(Array.from({ length: 1000 }, () => newId('i'))).size).toBe(1000);
  });

  it('validates ids', () => {
    expect(isValidId('i', newId('i'))).toBe(true);
    expect(isValidId('i', 'i-1234abcd')).toBe(true);
    expect(isValidId('i', 'i-1234ABCD')).toBe(false);
    expect(isValidId('i', 'vol-1234abcd')).toBe(false);
    expect(isValidId('emi', 'emi-0123456789abcdef')).toBe(false);
    expect(isValidId('sg', 'sg-')).toBe(false);
    expect(idPrefixOf('eipassoc-1234abcd')).toBe('eipassoc');
    expect(idPrefixOf('import-i-1234abcd')).toBe('import-i');
    expect(idPrefixOf('i-1234abcd')).toBe('i');
    expect(idPrefixOf('nope')).toBeUndefined();
  });
});

describe('Ec2Error', () => {
  it('has factories with AWS wording and statuses', () => {
    expect(Ec2Error.notFound('InvalidKeyPair.NotFound', 'k').message).toBe("The key pair 'k' does not exist");
    expect(Ec2Error.malformed('InvalidInstanceID.Malformed', 'x').code).toBe('InvalidInstanceID.Malformed');
    expect(Ec2Error.invalidAction('Foo').code).toBe('InvalidAction');
    expect(Ec2Error.of('VolumeInUse', 'v').httpStatus).toBe(400);
    expect(Ec2Error.of('Whatever.Unknown', 'v').httpStatus).toBe(400);
    expect(Ec2Error.internal().httpStatus).toBe(500);
    expect(Ec2Error.incorrectInstanceState('i-1', 'stopped', 'rebooted').code).toBe('IncorrectInstanceState');
    expect(isEc2Error(Ec2Error.dryRun())).toBe(true);
    expect(isEc2Error(new Error('x'))).toBe(false);
  });
});
