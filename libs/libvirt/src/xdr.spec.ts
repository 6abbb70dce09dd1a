import { REMOTE_STRING_MAX, XdrError, XdrReader, XdrWriter } from './xdr.js';

describe('XDR', () => {
  it('encodes primitives big-endian with 4-byte alignment', () => {
    const w = new XdrWriter(4);
    w.int(-2)
      .uint(0xdeadbeef)
      .hyper(-3n)
      .uhyper(2n ** 64n - 1n)
      .bool(true)
      .string('abcde')
      .opaque(Buffer.from([1, 2]), 8);
    w.opaqueFixed(Buffer.from([9, 9, 9]), 3)
      .optional(null, (x, v: number) => x.int(v))
      .optional(7, (x, v) => x.int(v));
    w.array([1, 2, 3], 3, (x, v) => x.uint(v));
    expect(w.toBuffer().toString('hex')).toBe(
      [
        'fffffffe',
        'deadbeef',
        'fffffffffffffffd',
        'ffffffffffffffff',
        '00000001',
        '00000005' + '6162636465' + '000000',
        '00000002' + '0102' + '0000',
        '090909' + '00',
        '00000000',
        '00000001' + '00000007',
        '00000003' + '00000001' + '00000002' + '00000003',
      ].join(''),
    );
    const r = new XdrReader(w.toBuffer());
    expect(r.int()).toBe(-2);
    expect(r.uint()).toBe(0xdeadbeef);
    expect(r.hyper()).toBe(-3n);
    expect(r.uhyper()).toBe(2n ** 64n - 1n);
    expect(r.bool()).toBe(true);
    expect(r.string()).toBe('abcde');
    expect(r.opaque(8)).toEqual(Buffer.from([1, 2]));
    expect(r.opaqueFixed(3)).toEqual(Buffer.from([9, 9, 9]));
    expect(r.optional((x) => x.int())).toBeNull();
    expect(r.optional((x) => x.int())).toBe(7);
    expect(r.array(3, (x) => x.uint())).toEqual([1, 2, 3]);
    expect(() => r.end()).not.toThrow();
  });

  it('round-trips UTF-8 strings', () => {
    const r = new XdrReader(new XdrWriter().string('größe ✓').toBuffer());
    expect(r.string()).toBe('größe ✓');
  });

  it('enforces limits when writing', () => {
    expect(() => new XdrWriter().string('x'.repeat(11), 10)).toThrow(XdrError);
    expect(() => new XdrWriter().opaque(Buffer.alloc(5), 4)).toThrow(XdrError);
    expect(() => new XdrWriter().array([1, 2], 1, (w, v) => w.int(v))).toThrow(XdrError);
    expect(() => new XdrWriter().int(2 ** 31)).toThrow(XdrError);
    expect(() => new XdrWriter().uint(-1)).toThrow(XdrError);
    expect(() => new XdrWriter().uhyper(-1n)).toThrow(XdrError);
    expect(() => new XdrWriter().opaqueFixed(Buffer.alloc(3), 4)).toThrow(XdrError);
    expect(() => new XdrWriter(16, 64).opaqueFixed(Buffer.alloc(100), 100)).toThrow(/exceed/);
    expect(() => new XdrWriter().string('x'.repeat(REMOTE_STRING_MAX + 1))).toThrow(XdrError);
  });

  it('enforces limits and bounds when reading', () => {
    const len = (n: number) => new XdrWriter().uint(n).toBuffer();
    expect(() => new XdrReader(len(REMOTE_STRING_MAX + 1)).string()).toThrow(/exceeds maximum/);
    expect(() => new XdrReader(len(100)).string()).toThrow(/underflow/);
    expect(() => new XdrReader(len(5)).opaque(4)).toThrow(/exceeds maximum/);
    expect(() => new XdrReader(len(17)).array(16, (r) => r.int())).toThrow(/exceeds maximum/);
    expect(() => new XdrReader(len(1_000_000)).array(2_000_000, (r) => r.int())).toThrow(/larger than remaining/);
    expect(() => new XdrReader(Buffer.from([0, 0, 0])).int()).toThrow(XdrError);
    expect(() => new XdrReader(len(2)).bool()).toThrow(/bool/);
    expect(() => new XdrReader(Buffer.alloc(8)).uhyperNumber()).not.toThrow();
    expect(() => new XdrReader(Buffer.alloc(8, 0xff)).uhyperNumber()).toThrow(/too large/);
    const r = new XdrReader(Buffer.alloc(8));
    r.int();
    expect(() => r.end()).toThrow(/trailing/);
  });
});
