import { Ec2Error } from '@koala/ec2-query';
import { BusRemoteError, BusUnavailableError } from '@koala/messaging';
import { zoneError } from './zone-error.js';

describe('zoneError', () => {
  const remote = (code: string) => zoneError(new BusRemoteError(code, 'it broke'), 'AttachVolume');

  it('passes the caller\'s mistakes on with their EC2 code and status', () => {
    for (const code of ['VolumeInUse', 'InvalidVolume.ZoneMismatch', 'InsufficientInstanceCapacity', 'IncorrectState']) {
      const { error, reason } = remote(code);
      expect([error.code, error.message, reason]).toEqual([code, 'it broke', { code, message: 'it broke' }]);
    }
    expect(remote('VolumeInUse').error.httpStatus).toBe(400);
  });

  it('answers a component\'s own failure as InternalError (500) and keeps the detail on the resource', () => {
    const { error, reason } = remote('Server.VolumeAttachFailed');
    expect([error.code, error.httpStatus]).toEqual(['InternalError', 500]);
    expect(error.message).toBe('AttachVolume failed in the zone: it broke');
    expect(reason).toEqual({ code: 'Server.VolumeAttachFailed', message: 'it broke' });
  });

  it('never hands a library\'s error code to the caller', () => {
    for (const code of ['ENOENT', 'ERR_STREAM_PREMATURE_CLOSE', 'econnreset', '42', 'Server.', 'Bad Code']) {
      const { error, reason } = remote(code);
      expect([error.code, reason.code]).toEqual(['InternalError', 'Server.InternalError']);
    }
  });

  it('keeps an Ec2Error, and calls a silent zone Unavailable (503)', () => {
    const own = new Ec2Error('IncorrectState', 'no');
    expect(zoneError(own, 'X').error).toBe(own);
    const { error, reason } = zoneError(new BusUnavailableError('koala.v1.x', 'timeout'), 'DetachVolume');
    expect([error.code, error.httpStatus, reason.code]).toEqual(['Unavailable', 503, 'Server.Unavailable']);
  });
});
