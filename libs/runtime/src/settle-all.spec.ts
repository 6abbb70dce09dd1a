import { settleAll } from './settle-all.js';

describe('settleAll', () => {
  it('gives every value, in order', async () => {
    expect(await settleAll([Promise.resolve(1), Promise.resolve('a')] as const)).toEqual([1, 'a']);
  });

  it('rejects with the first failure only once every promise has settled', async () => {
    let slowDone = false;
    const slow = new Promise<void>((r) => setTimeout(r, 30)).then(() => void (slowDone = true));
    const err = await settleAll([Promise.reject(new Error('first')), slow, Promise.reject(new Error('second'))]).catch((e: Error) => e);
    expect((err as Error).message).toBe('first');
    expect(slowDone).toBe(true);
  });
});
