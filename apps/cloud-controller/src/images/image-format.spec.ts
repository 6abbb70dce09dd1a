import { detectImageFormat } from './image-format.js';
import { parseRange } from './image-blobs.controller.js';

function qcow2Header(opts: { version?: number; backing?: bigint; size?: bigint; incompatible?: bigint } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.writeUInt32BE(0x514649fb, 0);
  h.writeUInt32BE(opts.version ?? 3, 4);
  h.writeBigUInt64BE(opts.backing ?? 0n, 8);
  h.writeUInt32BE(16, 20);
  h.writeBigUInt64BE(opts.size ?? 1n << 30n, 24);
  h.writeBigUInt64BE(opts.incompatible ?? 0n, 72);
  return h;
}

describe('detectImageFormat', () => {
  it('recognises qcow2 by its magic and reads the virtual size', () => {
    expect(detectImageFormat(qcow2Header())).toEqual({ format: 'qcow2', virtualSize: 1 << 30 });
    expect(detectImageFormat(qcow2Header({ version: 2 }))).toEqual({ format: 'qcow2', virtualSize: 1 << 30 });
  });
  it('treats anything else as raw (ext4, MBR, empty, short)', () => {
    const ext4 = Buffer.alloc(2048);
    ext4.writeUInt16LE(0xef53, 1024 + 56); // ext4 superblock magic
    expect(detectImageFormat(ext4).format).toBe('raw');
    expect(detectImageFormat(Buffer.from('QFI')).format).toBe('raw');
    expect(detectImageFormat(Buffer.alloc(0)).format).toBe('raw');
  });
  it('flags qcow2 images that would read other files', () => {
    expect(detectImageFormat(qcow2Header({ backing: 0x1000n })).unsafe).toMatch(/backing file/);
    expect(detectImageFormat(qcow2Header({ incompatible: 4n })).unsafe).toMatch(/external data file/);
    expect(detectImageFormat(qcow2Header({ version: 4 })).unsafe).toMatch(/version/);
    expect(detectImageFormat(qcow2Header().subarray(0, 16)).unsafe).toMatch(/truncated/);
  });
});

describe('parseRange', () => {
  it.each([
    [undefined, undefined],
    ['bytes=0-9', { start: 0, end: 9 }],
    ['bytes=10-', { start: 10, end: 99 }],
    ['bytes=-5', { start: 95, end: 99 }],
    ['bytes=90-200', { start: 90, end: 99 }],
    ['bytes=100-', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    ['bytes=5-1', undefined],
    ['bytes=0-1,5-6', undefined],
    ['items=0-1', undefined],
  ])('%s', (h, want) => {
    expect(parseRange(h, 100)).toEqual(want);
  });
});
