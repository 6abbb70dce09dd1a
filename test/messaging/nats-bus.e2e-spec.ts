import { z } from 'zod';
import { requestContract } from '@koala/contracts';
import { BusRemoteError, BusUnavailableError, NatsBus } from '@koala/messaging';
import { TestNatsServer } from '../support/nats-server.js';

const echo = requestContract('test.echo', 'koala.test.echo', z.object({ text: z.string() }), z.object({ text: z.string(), correlationId: z.string().optional() }));

async function eventually<T>(fn: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw last;
}

describe('NatsBus on a real nats-server', () => {
  let server: TestNatsServer;
  let a: NatsBus;
  let b: NatsBus;

  beforeAll(async () => {
    server = await TestNatsServer.start();
    a = await NatsBus.connect({ url: server.url, name: 'a', reconnectWaitMs: 200 });
    b = await NatsBus.connect({ url: server.url, name: 'b', reconnectWaitMs: 200 });
    b.handle(echo, async (req) => {
      if (req.text === 'boom') throw Object.assign(new Error('no capacity'), { code: 'InsufficientInstanceCapacity' });
      const { currentCorrelationId } = await import('@koala/logging');
      return { text: req.text.toUpperCase(), correlationId: currentCorrelationId() };
    });
    await b.flush();
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await server?.dispose();
  });

  it('answers requests, validates, and carries the correlation id', async () => {
    const { withCorrelationId } = await import('@koala/logging');
    const res = await withCorrelationId('corr-1', () => a.request(echo, { text: 'hi' }));
    expect(res).toEqual({ text: 'HI', correlationId: 'corr-1' });
    await expect(a.request(echo, { text: 42 } as never)).rejects.toThrow();
  });

  it('passes remote error codes through', async () => {
    const err = await a.request(echo, { text: 'boom' }).catch((e) => e);
    expect(err).toBeInstanceOf(BusRemoteError);
    expect(err.code).toBe('InsufficientInstanceCapacity');
  });

  it('reports no responders as unavailable', async () => {
    const nobody = requestContract('x', 'koala.test.nobody', z.object({}), z.object({}));
    await expect(a.request(nobody, {}, { timeoutMs: 500 })).rejects.toBeInstanceOf(BusUnavailableError);
  });

  it('gathers answers from every responder', async () => {
    const s1 = a.answer('koala.test.gather', () => ({ who: 'a' }));
    const s2 = b.answer('koala.test.gather', () => ({ who: 'b' }));
    await a.flush();
    await b.flush();
    const got = await a.gather('koala.test.gather', z.object({ who: z.string() }), {}, { timeoutMs: 300 });
    expect(got.map((g) => g.who).sort()).toEqual(['a', 'b']);
    s1.unsubscribe();
    s2.unsubscribe();
    expect(await a.gather('koala.test.nobody-here', z.object({}), {}, { timeoutMs: 200 })).toEqual([]);
  });

  it('reconnects by itself after NATS restarts, subscriptions intact', async () => {
    await server.stop();
    await eventually(async () => {
      if (a.isConnected) throw new Error('still connected');
    });
    await expect(a.request(echo, { text: 'down' }, { timeoutMs: 300 })).rejects.toBeInstanceOf(BusUnavailableError);
    await server.restart();
    const res = await eventually(() => a.request(echo, { text: 'back' }, { timeoutMs: 500 }));
    expect(res.text).toBe('BACK');
    expect(a.isConnected).toBe(true);
  }, 30_000);

  it('waits for a server that is not up yet, then works', async () => {
    await server.stop();
    let connected: NatsBus | undefined;
    const pending = NatsBus.connect({ url: server.url, name: 'late', reconnectWaitMs: 200 }).then((bus) => (connected = bus));
    await new Promise((r) => setTimeout(r, 1000));
    expect(connected).toBeUndefined(); // still waiting, not failed
    await expect(NatsBus.connect({ url: server.url, name: 'impatient', reconnectWaitMs: 100, connectTimeoutMs: 500 })).rejects.toThrow(/not reachable/);
    await server.restart();
    const late = await pending;
    try {
      const res = await eventually(() => late.request(echo, { text: 'late' }, { timeoutMs: 500 }));
      expect(res.text).toBe('LATE');
    } finally {
      await late.close();
    }
  }, 30_000);
});
