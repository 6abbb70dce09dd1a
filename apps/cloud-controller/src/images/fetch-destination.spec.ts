import { decideDestination, isPublicAddress, parseFetchAllowList, unmapIPv4 } from './fetch-destination.js';

const none = parseFetchAllowList([]);

describe('isPublicAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '100.64.0.1',
    '100.127.255.255',
    '169.254.169.254',
    '0.0.0.0',
    '255.255.255.255',
    '224.0.0.1',
    '239.1.1.1',
    '240.0.0.1',
    '192.0.2.1',
    '198.51.100.7',
    '203.0.113.9',
    '198.18.0.1',
    '::',
    '::1',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::7f00:1',
    '2001:db8::1',
    '2002:7f00:1::1',
    'fec0::1',
    'not-an-address',
  ])('%s is not public', (a) => expect(isPublicAddress(a)).toBe(false));
  it.each(['8.8.8.8', '1.1.1.1', '100.63.255.255', '100.128.0.0', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '::ffff:808:808'])('%s is public', (a) => expect(isPublicAddress(a)).toBe(true));
  it('unmaps both spellings of IPv4-mapped IPv6', () => {
    expect(unmapIPv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(unmapIPv4('::FFFF:10.0.0.1')).toBe('10.0.0.1');
    expect(unmapIPv4('::1')).toBe('::1');
  });
});

describe('parseFetchAllowList', () => {
  it('takes CIDRs and host[:port] entries', () => {
    const a = parseFetchAllowList(['10.1.0.0/16', 'fd00::/8', 'Mirror.LAN', '127.0.0.1:8080', '[::1]:9000', '::1']);
    expect(a.subnets.check('10.1.2.3', 'ipv4')).toBe(true);
    expect(a.subnets.check('10.2.0.1', 'ipv4')).toBe(false);
    expect(a.subnets.check('fd00::5', 'ipv6')).toBe(true);
    expect([...a.hosts].sort()).toEqual(['127.0.0.1:8080', '::1', '[::1]:9000', 'mirror.lan'].sort());
  });
  it.each(['10.0.0.0/33', '1.2.3/8', 'a b', 'host:0', 'host:70000', '[nothex]:80', 'x/8', ''])('refuses %j', (e) => expect(() => parseFetchAllowList([e])).toThrow());
});

describe('decideDestination', () => {
  it('refuses internal addresses, and a name resolving to any internal address', () => {
    expect(decideDestination('127.0.0.1', 80, ['127.0.0.1'], none)).toMatchObject({ ok: false });
    expect(decideDestination('images.example', 80, ['10.0.0.5'], none)).toMatchObject({ ok: false });
    expect(decideDestination('images.example', 80, ['8.8.8.8', '169.254.169.254'], none)).toMatchObject({ ok: false });
    expect(decideDestination('images.example', 80, [], none)).toMatchObject({ ok: false });
  });
  it('passes public addresses and pins the first (mapped form unmapped)', () => {
    expect(decideDestination('images.example', 80, ['::ffff:8.8.8.8', '1.1.1.1'], none)).toEqual({ ok: true, address: '8.8.8.8', family: 4 });
    expect(decideDestination('images.example', 443, ['2606:4700::1111'], none)).toEqual({ ok: true, address: '2606:4700::1111', family: 6 });
  });
  it('the allow-list overrides the deny list: by subnet, by host, by host:port only on that port', () => {
    const allow = parseFetchAllowList(['127.0.0.0/8', 'mirror.lan', '10.9.9.9:8080']);
    expect(decideDestination('localhost', 1234, ['127.0.0.1'], allow)).toMatchObject({ ok: true, address: '127.0.0.1' });
    expect(decideDestination('mirror.lan', 80, ['192.168.7.7'], allow)).toMatchObject({ ok: true });
    expect(decideDestination('10.9.9.9', 8080, ['10.9.9.9'], allow)).toMatchObject({ ok: true });
    expect(decideDestination('10.9.9.9', 22, ['10.9.9.9'], allow)).toMatchObject({ ok: false });
    expect(decideDestination('other.lan', 80, ['192.168.7.7'], allow)).toMatchObject({ ok: false });
    const byAddress = parseFetchAllowList(['127.0.0.1', '127.0.0.2:8080']);
    expect(decideDestination('images.example', 443, ['127.0.0.1'], byAddress)).toMatchObject({ ok: true });
    expect(decideDestination('images.example', 8080, ['127.0.0.2'], byAddress)).toMatchObject({ ok: true });
    expect(decideDestination('images.example', 80, ['127.0.0.2'], byAddress)).toMatchObject({ ok: false });
    expect(decideDestination('images.example', 80, ['127.0.0.1', '127.0.0.3'], byAddress)).toMatchObject({ ok: false });
    const v6 = parseFetchAllowList(['[::1]:9000']);
    expect(decideDestination('::1', 9000, ['::1'], v6)).toMatchObject({ ok: true });
    expect(decideDestination('::1', 9001, ['::1'], v6)).toMatchObject({ ok: false });
    expect(decideDestination('::1:9000', 80, ['::1:9000'], v6)).toMatchObject({ ok: false });
  });
});
