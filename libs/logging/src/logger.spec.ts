import { Writable } from 'node:stream';
import { createLogger } from './logger.js';
import { withCorrelationId } from './correlation.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()));
      cb();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('writes JSON with component and the current correlation id', async () => {
    const { lines, stream } = capture();
    const log = createLogger('cloud-controller', 'info', stream);
    withCorrelationId('req-123', () => log.info({ action: 'RunInstances' }, 'handled'));
    log.info('outside');
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).toMatchObject({ component: 'cloud-controller', correlationId: 'req-123', action: 'RunInstances', msg: 'handled', level: 'info' });
    expect(lines[1].correlationId).toBeUndefined();
  });

  it('never writes secrets', async () => {
    const { lines, stream } = capture();
    const log = createLogger('x', 'info', stream);
    log.info({ secretAccessKey: 'SHOULD-NOT-APPEAR', key: { secret: 'NOPE' } }, 'creds');
    await new Promise((r) => setImmediate(r));
    expect(JSON.stringify(lines)).not.toMatch(/SHOULD-NOT-APPEAR|NOPE/);
  });

  it('never writes the bound parameters or row details of a database error', async () => {
    const { lines, stream } = capture();
    const log = createLogger('x', 'info', stream);
    // the shape of TypeORM's QueryFailedError wrapping a pg error
    const driverError = Object.assign(new Error('value too long for type character varying(255)'), { code: '22001', detail: 'Key (name)=(ROW-VALUE) exists', parameters: ['BOUND-PARAM'] });
    const err = Object.assign(new Error(driverError.message), {
      name: 'QueryFailedError',
      query: 'INSERT INTO t VALUES ($1)',
      parameters: ['BOUND-PARAM', 'v1:CIPHERTEXT'],
      driverError,
      code: '22001',
      detail: 'ROW-VALUE',
    });
    log.error({ err }, 'boom');
    await new Promise((r) => setImmediate(r));
    const text = JSON.stringify(lines);
    expect(text).not.toMatch(/BOUND-PARAM|CIPHERTEXT|ROW-VALUE/);
    expect(lines[0]!.err).toMatchObject({
      type: 'Error',
      message: 'value too long for type character varying(255)',
      query: 'INSERT INTO t VALUES ($1)',
      code: '22001',
      driverError: { code: '22001' },
    });
  });
});
