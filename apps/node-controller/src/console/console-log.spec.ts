import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsConsoleLog } from './console-log.js';

describe('FsConsoleLog', () => {
  let home: string;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'koala-console-'));
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));
  const mode = (p: string) => statSync(p).mode & 0o777;

  it('creates console logs 0640 in a 0750 directory (guests print secrets there)', async () => {
    const logs = new FsConsoleLog(join(home, 'console'));
    const p = await logs.reset('i-0123456789abcdef0');
    expect(mode(join(home, 'console'))).toBe(0o750);
    expect(mode(p)).toBe(0o640);
  });

  it('tightens a directory created world-readable by an older version', async () => {
    mkdirSync(join(home, 'console'), { mode: 0o755 });
    chmodSync(join(home, 'console'), 0o755);
    const logs = new FsConsoleLog(join(home, 'console'));
    await logs.reset('i-0123456789abcdef0');
    expect(mode(join(home, 'console'))).toBe(0o750);
  });
});
