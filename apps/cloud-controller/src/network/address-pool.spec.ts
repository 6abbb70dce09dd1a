import { firstFree, inPool, intToIp, ipToInt, poolRange, poolSize } from './address-pool.js';

describe('address pool arithmetic', () => {
  it('converts addresses', () => {
    expect(ipToInt('0.0.0.0')).toBe(0);
    expect(ipToInt('255.255.255.255')).toBe(0xffffffff);
    expect(ipToInt('198.51.100.7')).toBe(0xc6336407);
    expect(intToIp(0xc6336407)).toBe('198.51.100.7');
    expect(intToIp(0xffffffff)).toBe('255.255.255.255');
    expect(() => ipToInt('1.2.3')).toThrow();
    expect(() => ipToInt('1.2.3.256')).toThrow();
  });

  it('excludes network and broadcast', () => {
    const r = poolRange('198.51.100.0/24');
    expect(intToIp(r.first)).toBe('198.51.100.1');
    expect(intToIp(r.last)).toBe('198.51.100.254');
    expect(poolSize(r)).toBe(254);
    expect(poolSize(poolRange('10.0.0.0/30'))).toBe(2);
    expect(poolSize(poolRange('10.0.0.0/31'))).toBe(2);
    expect(poolSize(poolRange('10.0.0.9/32'))).toBe(1);
    expect(poolSize(poolRange('10.0.0.0/8'))).toBe(2 ** 24 - 2);
    // host bits in the configured range are ignored
    expect(intToIp(poolRange('10.1.2.3/16').first)).toBe('10.1.0.1');
    expect(inPool(r, '198.51.100.0')).toBe(false);
    expect(inPool(r, '198.51.100.255')).toBe(false);
    expect(inPool(r, '198.51.100.200')).toBe(true);
  });

  it('finds the lowest free address, filling gaps, ignoring addresses outside the pool', () => {
    const r = poolRange('10.0.0.0/29'); // .1 - .6
    expect(firstFree(r, [])).toBe('10.0.0.1');
    expect(firstFree(r, ['10.0.0.1', '10.0.0.2'])).toBe('10.0.0.3');
    expect(firstFree(r, ['10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.5'])).toBe('10.0.0.4');
    expect(firstFree(r, ['192.168.0.1', '10.0.0.1'])).toBe('10.0.0.2');
    expect(firstFree(r, ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6'])).toBeUndefined();
    expect(firstFree(r, ['10.0.0.1', '10.0.0.1'])).toBe('10.0.0.2');
  });
});
