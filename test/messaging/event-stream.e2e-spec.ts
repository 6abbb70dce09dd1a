import { z } from 'zod';
import { NatsBus } from '@koala/messaging';
import { TestNatsServer } from '../support/nats-server.js';

const Ev = z.object({ n: z.number() });
const spec = { name: 'TEST_EVENTS', subjects: ['test.events.>'], maxAgeMs: 60_000 };

async function until(cond: () => boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('EventStream (JetStream) on a real nats-server', () => {
  let server: TestNatsServer;
  const buses: NatsBus[] = [];
  const bus = async () => {
    const b = await NatsBus.connect({ url: server.url, name: 't', reconnectWaitMs: 200 });
    buses.push(b);
    return b;
  };

  beforeAll(async () => {
    server = await TestNatsServer.start();
  });
  afterAll(async () => {
    for (const b of buses) await b.close();
    await server.dispose();
  });

  it('delivers events published while the consumer was away, once, in order', async () => {
    const producer = (await bus()).events(spec);
    await producer.ensure();
    for (let n = 1; n <= 5; n++) await producer.publish('test.events.a', Ev, { n });
    const got: number[] = [];
    const consumerBus = await bus();
    await consumerBus.events(spec).consume('clc', 'test.events.>', Ev, (e) => void got.push(e.n), { from: 'all' });
    await until(() => got.length === 5);
    expect(got).toEqual([1, 2, 3, 4, 5]);

    // A restarted consumer (same durable name) resumes after the last acked event.
    await consumerBus.close();
    await producer.publish('test.events.a', Ev, { n: 6 });
    const again: number[] = [];
    await (await bus()).events(spec).consume('clc', 'test.events.>', Ev, (e) => void again.push(e.n));
    await until(() => again.length === 1);
    expect(again).toEqual([6]);
  });

  it('a new consumer starts with new events unless asked for the history', async () => {
    const b = await bus();
    const s = b.events(spec);
    await s.publish('test.events.old', Ev, { n: 1 });
    const fresh: number[] = [];
    await s.consume('fresh', 'test.events.old', Ev, (e) => void fresh.push(e.n));
    await s.publish('test.events.old', Ev, { n: 2 });
    await until(() => fresh.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(fresh).toEqual([2]);
  });

  it('redelivers an event whose handler failed', async () => {
    const b = await bus();
    const s = b.events(spec);
    let calls = 0;
    await s.consume('flaky', 'test.events.flaky', Ev, () => {
      calls++;
      if (calls === 1) throw new Error('transient');
    });
    await s.publish('test.events.flaky', Ev, { n: 1 });
    await until(() => calls >= 2);
  });

  it('consumeBatches: the events that arrived meanwhile come as one batch, in order; a failed batch is redelivered whole', async () => {
    const b = await bus();
    const s = b.events(spec);
    for (let n = 1; n <= 10; n++) await s.publish('test.events.batch', Ev, { n });
    const batches: number[][] = [];
    let failOnce = true;
    await s.consumeBatches(
      'batches',
      'test.events.batch',
      Ev,
      async (events) => {
        await new Promise((r) => setTimeout(r, 30)); // as a transaction would take
        const ns = events.map((e) => e.event.n);
        if (failOnce && ns.includes(3)) {
          failOnce = false;
          throw new Error('transient');
        }
        batches.push(ns);
      },
      { from: 'all', maxBatch: 4 },
    );
    await until(() => batches.flat().length >= 10);
    expect(batches.every((x) => x.length <= 4)).toBe(true);
    expect(batches.length).toBeLessThan(10); // batched, not one by one
    expect([...new Set(batches.flat())].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('keeps events across a NATS restart', async () => {
    const b = await bus();
    const s = b.events(spec);
    await s.publish('test.events.persist', Ev, { n: 42 });
    await server.stop();
    await server.restart();
    const got: number[] = [];
    const c = await bus();
    await c.events(spec).consume('after-restart', 'test.events.persist', Ev, (e) => void got.push(e.n), { from: 'all' });
    await until(() => got.length === 1);
    expect(got).toEqual([42]);
  }, 30_000);
});
