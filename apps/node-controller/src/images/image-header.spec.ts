import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageHeaderProblem, inspectImageHeader } from './image-header.js';

/** Images made by qemu-img itself, as an attacker would make them. */
describe('inspectImageHeader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'koala-img-head-'));
  const secret = join(dir, 'passwd'); // stands for a host file such as /etc/passwd
  const qemuImg = (...args: string[]) => execFileSync('qemu-img', args, { stdio: 'pipe' });
  /** `size` last, as qemu-img wants it (an image with a backing file takes the backing file's). */
  const image = (name: string, ...args: string[]) => {
    const size = /^\d+[KMG]$/.test(args.at(-1) ?? '') ? [args.pop()!] : args.includes('-b') ? [] : ['1M'];
    qemuImg('create', '-q', ...args, join(dir, name), ...size);
    return readFileSync(join(dir, name));
  };
  beforeAll(() => writeFileSync(secret, 'root:x:0:0:root:/root:/bin/bash\n'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts plain raw and qcow2 (v2 and v3) images for what they are', () => {
    expect(inspectImageHeader(image('a.qcow2', '-f', 'qcow2', '-o', 'compat=1.1'))).toEqual({ format: 'qcow2', virtualSize: 1024 ** 2 });
    expect(inspectImageHeader(image('b.qcow2', '-f', 'qcow2', '-o', 'compat=0.10', '3G'))).toEqual({ format: 'qcow2', virtualSize: 3 * 1024 ** 3 });
    expect(inspectImageHeader(Buffer.from('\x7fELF...kernel'))).toEqual({ format: 'raw' });
    expect(inspectImageHeader(new Uint8Array(0))).toEqual({ format: 'raw' });
  });

  it('refuses a qcow2 whose backing file is a host file, in both qcow2 versions', () => {
    for (const compat of ['1.1', '0.10']) {
      const evil = image(`evil-${compat}.qcow2`, '-f', 'qcow2', '-o', `compat=${compat}`, '-F', 'raw', '-b', secret);
      expect(evil.includes(Buffer.from(secret))).toBe(true);
      expect(inspectImageHeader(evil).problem).toBe('qcow2 image with a backing file');
      expect(imageHeaderProblem(evil, 'qcow2')).toBe('qcow2 image with a backing file');
    }
  });

  it('refuses a qcow2 with an external data file', () => {
    const evil = image('data.qcow2', '-f', 'qcow2', '-o', `data_file=${secret},data_file_raw=on`, '1M');
    expect(inspectImageHeader(evil).problem).toBe('qcow2 image with an external data file');
  });

  it('refuses a format other than the one the launch claims, and broken headers', () => {
    const q = image('c.qcow2', '-f', 'qcow2');
    expect(imageHeaderProblem(q, 'raw')).toBe('the image is qcow2, not raw as the launch says');
    expect(imageHeaderProblem(Buffer.alloc(512), 'qcow2')).toBe('the image is raw, not qcow2 as the launch says');
    expect(imageHeaderProblem(q.subarray(0, 40), 'qcow2')).toBe('truncated qcow2 header');
    const v9 = Buffer.from(q.subarray(0, 104));
    v9.writeUInt32BE(9, 4);
    expect(inspectImageHeader(v9).problem).toBe('unsupported qcow2 version 9');
  });
});
