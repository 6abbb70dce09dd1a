import { AccessKeyCache } from './access-key-cache.js';

describe('AccessKeyCache', () => {
  it('caches nothing until enabled, and empties when disabled', () => {
    const c = new AccessKeyCache<string>(1000);
    c.put('AK', 'v', c.begin(), 0);
    expect(c.get('AK', 0)).toBeUndefined();
    c.setEnabled(true);
    c.put('AK', 'v', c.begin(), 0);
    expect(c.get('AK', 999)).toBe('v');
    c.setEnabled(false);
    expect(c.get('AK', 0)).toBeUndefined();
  });

  it('expires entries after the ttl', () => {
    const c = new AccessKeyCache<string>(1000);
    c.setEnabled(true);
    c.put('AK', 'v', c.begin(), 0);
    expect(c.get('AK', 1000)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('forgets one key or all keys', () => {
    const c = new AccessKeyCache<string>(1000);
    c.setEnabled(true);
    c.put('A', '1', c.begin(), 0);
    c.put('B', '2', c.begin(), 0);
    c.forget('A');
    expect([c.get('A', 0), c.get('B', 0)]).toEqual([undefined, '2']);
    c.forgetAll();
    expect(c.get('B', 0)).toBeUndefined();
  });

  it('drops a read that raced an invalidation (the old row never comes back)', () => {
    const c = new AccessKeyCache<string>(1000);
    c.setEnabled(true);
    const g = c.begin(); // lookup starts, reads "Active"
    c.forget('AK'); // key deactivated meanwhile
    c.put('AK', 'active', g, 0); // the lookup finishes with the old row
    expect(c.get('AK', 0)).toBeUndefined();
  });

  it('stays bounded', () => {
    const c = new AccessKeyCache<number>(1000, 3);
    c.setEnabled(true);
    for (let i = 0; i < 10; i++) c.put(`K${i}`, i, c.begin(), 0);
    expect(c.size).toBeLessThanOrEqual(3);
    expect(c.get('K9', 0)).toBe(9);
  });
});
