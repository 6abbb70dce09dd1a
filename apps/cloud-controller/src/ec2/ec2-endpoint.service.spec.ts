import { CompiledShapes, Ec2Error } from '@koala/ec2-query';
import { ActionRegistry } from './action-registry.js';
import { Ec2EndpointService, type Ec2HttpRequest } from './ec2-endpoint.service.js';
import type { AuthService } from '../auth/auth.service.js';

function setup(handler: () => Promise<Record<string, never>>) {
  const logs: Array<{ obj: Record<string, unknown>; msg: string; level: string }> = [];
  const log = (level: string) => (obj: Record<string, unknown>, msg: string) => logs.push({ obj, msg, level });
  const logger = { info: log('info'), error: log('error'), warn: log('warn') };
  const entry = { handler, shapes: new CompiledShapes(['KeyName.N']), ignored: [], owner: 'test' };
  const registry = { entry: (a: string) => (a === 'Boom' || a === 'Fine' ? entry : undefined) } as unknown as ActionRegistry;
  const auth = { authenticate: async () => ({ accessKeyId: 'AKIAFAKE', account: { id: '111122223333', name: 'a', isAdmin: false }, signatureVersion: 4 }) } as unknown as AuthService;
  const svc = new Ec2EndpointService(registry, auth, { now: () => new Date('2026-01-01T00:00:00Z') }, logger as never, { apiMaxBodyBytes: 1024 } as never, { allow: () => true });
  const req = (body: string): Ec2HttpRequest => ({ method: 'POST', path: '/', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded' }, readBody: async () => Buffer.from(body) });
  return { svc, logs, req };
}

describe('Ec2EndpointService', () => {
  it('turns an unexpected error into InternalError 500 and logs it with the request id', async () => {
    const { svc, logs, req } = setup(async () => {
      throw new Error('database on fire: secret=hunter2');
    });
    const r = await svc.handle(req('Action=Boom'));
    expect(r.status).toBe(500);
    expect(r.body).toContain('<Code>InternalError</Code>');
    expect(r.body).not.toContain('database on fire');
    const rid = r.headers['x-amzn-requestid'];
    expect(r.body).toContain(`<Message>An internal error has occurred (request id ${rid}).</Message>`);
    expect(logs.find((l) => l.level === 'error')?.obj).toMatchObject({ requestId: rid, action: 'Boom' });
    expect(logs.find((l) => l.msg === 'ec2 request')?.obj).toMatchObject({ requestId: rid, action: 'Boom', status: 500, code: 'InternalError', account: '111122223333' });
  });

  it('an InternalError carrying component text answers a generic message; the text is logged under the request id', async () => {
    const { svc, logs, req } = setup(async () => {
      throw new Ec2Error('InternalError', 'AttachVolume failed in the zone: tgtadm: /var/lib/koala/volumes/vol-1: No such file');
    });
    const r = await svc.handle(req('Action=Boom'));
    const rid = r.headers['x-amzn-requestid'];
    expect(r.status).toBe(500);
    expect(r.body).toContain(`<Message>An internal error has occurred (request id ${rid}).</Message>`);
    expect(r.body).not.toMatch(/tgtadm|var\/lib/);
    expect(logs.find((l) => l.level === 'error')?.obj).toMatchObject({ requestId: rid, detail: expect.stringContaining('tgtadm') });
  });

  it('renders a thrown Ec2Error with its status, and logs one line per request', async () => {
    const { svc, logs, req } = setup(async () => {
      throw new Ec2Error('IncorrectInstanceState', 'nope');
    });
    const r = await svc.handle(req('Action=Fine'));
    expect(r.status).toBe(400);
    expect(r.body).toContain('<Code>IncorrectInstanceState</Code>');
    expect(logs.filter((l) => l.msg === 'ec2 request')).toHaveLength(1);
    expect(logs.some((l) => l.level === 'error')).toBe(false);
  });

  it('answers InvalidAction for an action without handler', async () => {
    const { svc, req } = setup(async () => ({}));
    const r = await svc.handle(req('Action=Nope'));
    expect(r.status).toBe(400);
    expect(r.body).toContain('<Code>InvalidAction</Code>');
  });

  it('answers a database data exception (value too long, NUL) as InvalidParameterValue 400, and logs no bound parameters', async () => {
    const driverError = Object.assign(new Error('value too long for type character varying(64)'), { code: '22001' });
    const { svc, logs, req } = setup(async () => {
      throw Object.assign(new Error(driverError.message), { name: 'QueryFailedError', query: 'INSERT ...', parameters: ['hunter2'], driverError });
    });
    const r = await svc.handle(req('Action=Boom'));
    expect(r.status).toBe(400);
    expect(r.body).toContain('<Code>InvalidParameterValue</Code>');
    expect(r.body).not.toMatch(/INSERT|hunter2|varying/);
    expect(logs.some((l) => l.level === 'error')).toBe(false);
  });

  it('answers a deadlock, a serialization failure or too many connections as Unavailable 503 (retryable), an unknown database error as 500', async () => {
    for (const [code, status] of [
      ['40P01', 503],
      ['40001', 503],
      ['53300', 503],
      ['57P01', 503],
      ['55P03', 503],
      ['42P01', 500],
    ] as const) {
      const { svc, logs, req } = setup(async () => {
        throw Object.assign(new Error(`pg says ${code}`), { code });
      });
      const r = await svc.handle(req('Action=Boom'));
      expect([code, r.status]).toEqual([code, status]);
      if (status === 503) {
        expect(r.body).toContain('<Code>Unavailable</Code>');
        expect(logs.some((l) => l.level === 'error')).toBe(false);
      }
    }
  });

  it('refuses a NUL in any parameter before the handler runs', async () => {
    let ran = false;
    const { svc, req } = setup(async () => {
      ran = true;
      return {};
    });
    const r = await svc.handle(req('Action=Fine&Description=a%00b'));
    expect(r.status).toBe(400);
    expect(r.body).toContain('<Code>InvalidParameterValue</Code>');
    expect(ran).toBe(false);
  });

  it('refuses an undeclared parameter before the handler runs, and reads a bare list name as .1', async () => {
    let calls = 0;
    let seen: unknown;
    const { svc, req } = setup(async () => {
      calls++;
      return {};
    });
    const r = await svc.handle(req('Action=Fine&Bogus=x'));
    expect(r.status).toBe(400);
    expect(r.body).toContain('<Code>UnknownParameter</Code>');
    expect(r.body).toContain('<Message>The parameter Bogus is not recognized</Message>');
    expect(calls).toBe(0);
    const ok = setup(async function (this: unknown, ...args: unknown[]) {
      seen = (args[0] as { params: { list: (n: string) => string[] } }).params.list('KeyName');
      return {};
    } as never);
    expect((await ok.svc.handle(ok.req('Action=Fine&KeyName=probe-b'))).status).toBe(200);
    expect(seen).toEqual(['probe-b']);
  });
});
