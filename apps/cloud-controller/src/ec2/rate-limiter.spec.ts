import { TokenBuckets } from './rate-limiter.js';

describe('TokenBuckets', () => {
  it('allows a burst, then refuses until tokens come back at the rate', () => {
    const b = new TokenBuckets(2, 3);
    expect([0, 0, 0, 0].map(() => b.take('k', 1000))).toEqual([true, true, true, false]);
    expect(b.take('k', 1400)).toBe(false); // 0.8 token
    expect(b.take('k', 1500)).toBe(true); // 1 token after 500 ms at 2/s
    expect(b.take('k', 1500)).toBe(false);
  });

  it('keeps keys apart, and a long idle key never holds more than the burst', () => {
    const b = new TokenBuckets(1, 2);
    expect([b.take('a', 0), b.take('a', 0), b.take('a', 0)]).toEqual([true, true, false]);
    expect(b.take('b', 0)).toBe(true);
    expect([b.take('a', 1e9), b.take('a', 1e9), b.take('a', 1e9)]).toEqual([true, true, false]);
  });

  it('refused requests do not take tokens (a client that keeps retrying is not starved forever)', () => {
    const b = new TokenBuckets(1, 1);
    expect(b.take('k', 0)).toBe(true);
    for (let t = 0; t < 900; t += 100) expect(b.take('k', t)).toBe(false);
    expect(b.take('k', 1000)).toBe(true);
  });

  it('memory is bounded: refilled buckets are swept, then the least recently used go', () => {
    const b = new TokenBuckets(10, 5, 100);
    for (let i = 0; i < 1000; i++) b.take(`idle-${i}`, 0);
    expect(b.size).toBeLessThanOrEqual(100);
    // all busy at once (empty buckets): still bounded
    for (let i = 0; i < 1000; i++) for (let j = 0; j < 5; j++) b.take(`busy-${i}`, 10);
    expect(b.size).toBeLessThanOrEqual(100);
    // the most recent key kept its (empty) bucket
    expect(b.take('busy-999', 10)).toBe(false);
  });
});
