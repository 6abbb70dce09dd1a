import { KeyedLock } from './keyed-lock.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('KeyedLock', () => {
  it('runs one operation at a time per key, in order, and different keys side by side', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const op = (key: string, name: string) =>
      lock.run(key, async () => {
        log.push(`${name}+`);
        await tick();
        log.push(`${name}-`);
      });
    await Promise.all([op('a', 'a1'), op('a', 'a2'), op('b', 'b1')]);
    expect(log.indexOf('a1-')).toBeLessThan(log.indexOf('a2+'));
    expect(log.indexOf('b1+')).toBeLessThan(log.indexOf('a1-'));
    expect(lock.busy('a')).toBe(false);
  });

  it('releases the key when an operation fails, and passes the failure to its caller only', async () => {
    const lock = new KeyedLock();
    const failed = lock.run('k', async () => {
      await tick();
      throw new Error('boom');
    });
    const next = lock.run('k', async () => 'ran');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ran');
    expect(lock.busy('k')).toBe(false);
  });

  it('holds several keys in sorted order, so crossing callers do not deadlock', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    await Promise.all([
      lock.runAll(['y', 'x'], async () => {
        order.push('first');
        await tick();
      }),
      lock.runAll(['x', 'y'], async () => {
        order.push('second');
      }),
    ]);
    expect(order).toEqual(['first', 'second']);
  });
});
