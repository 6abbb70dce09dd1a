import { Ec2Error } from '@koala/ec2-query';
import { BusRemoteError, BusUnavailableError } from '@koala/messaging';
import { withCorrelationId } from '@koala/logging';
import { internalErrorMessage, publicReason, zoneError } from './zone-error.js';

describe('zoneError', () => {
  const remote = (code: string) => zoneError(new BusRemoteError(code, 'it broke'), 'AttachVolume');

  it("passes the caller's mistakes on with their EC2 code and status", () => {
    for (const code of ['VolumeInUse', 'InvalidVolume.ZoneMismatch', 'InsufficientInstanceCapacity', 'IncorrectState']) {
      const { error, reason } = remote(code);
      expect([error.code, error.message, reason]).toEqual([code, 'it broke', { code, message: 'it broke' }]);
    }
    expect(remote('VolumeInUse').error.httpStatus).toBe(400);
  });

  it("answers a component's own failure as InternalError (500): the detail in the error (logged by the endpoint), a generic reason with the request id on the resource", () => {
    const { error, reason } = withCorrelationId('req-1', () => remote('Server.VolumeAttachFailed'));
    expect([error.code, error.httpStatus]).toEqual(['InternalError', 500]);
    expect(error.message).toBe('AttachVolume failed in the zone: it broke');
    expect(reason).toEqual({ code: 'Server.VolumeAttachFailed', message: 'AttachVolume failed. An internal error has occurred (request id req-1).' });
  });

  it("never hands a library's error code to the caller", () => {
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

describe('publicReason', () => {
  it("logs a component failure's detail under the request id and shows a generic message", () => {
    const logged: [string, unknown][] = [];
    const r = withCorrelationId('req-2', () =>
      publicReason({ code: 'Server.InternalError', message: 'virDomainCreate: /var/lib/koala/instances/i-1/root.qcow2: Permission denied' }, (ref, d) => logged.push([ref, d])),
    );
    expect(r).toEqual({ code: 'Server.InternalError', message: internalErrorMessage('req-2') });
    expect(r!.message).not.toMatch(/var|virDomain/);
    expect(logged).toEqual([['req-2', { code: 'Server.InternalError', message: expect.stringContaining('Permission denied') }]]);
  });
  it('without a request: a fresh reference, the same in the message and the log', () => {
    let ref = '';
    const r = publicReason({ code: 'Server.IscsiLoginFailed', message: 'iscsiadm: tgt said no' }, (x) => (ref = x));
    expect(ref).toMatch(/^[0-9a-f-]{36}$/);
    expect(r!.message).toBe(`An internal error has occurred (request id ${ref}).`);
  });
  it("a reason the caller can act on keeps EC2's wording, without the component text", () => {
    const r = withCorrelationId('req-3', () => publicReason({ code: 'Server.InsufficientInstanceCapacity', message: 'node-7: 12 MiB free in /dev/hugepages' }, () => undefined));
    expect(r!.message).toBe('Server.InsufficientInstanceCapacity: Insufficient capacity to satisfy instance request (request id req-3).');
  });
  it('keeps client reasons and nothing', () => {
    const calls: unknown[] = [];
    const log = (...a: unknown[]) => void calls.push(a);
    const client = { code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown' };
    expect(publicReason(client, log)).toBe(client);
    expect(publicReason(undefined, log)).toBeUndefined();
    expect(publicReason(null, log)).toBeNull();
    expect(calls).toEqual([]);
  });
});
