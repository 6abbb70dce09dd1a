import { chmod, mkdir, open, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The serial console log of each instance (written by libvirt's virtlogd, read by the NC). */
export interface ConsoleLog {
  path(instanceId: string): string;
  /** Starts an empty log for a new instance (the NC owns it; 0640 in a 0750 directory: guests print secrets on their console). */
  reset(instanceId: string): Promise<string>;
  /** The last `maxBytes` of the log and its modification time; undefined when there is none. */
  tail(instanceId: string, maxBytes: number): Promise<{ data: Buffer; mtime: Date } | undefined>;
  remove(instanceId: string): Promise<void>;
}
export const CONSOLE_LOG = Symbol('CONSOLE_LOG');

/** Console logs as files in `$KOALA_HOME/console/<instanceId>.log`. */
export class FsConsoleLog implements ConsoleLog {
  constructor(private readonly dir: string) {}

  path(instanceId: string): string {
    if (!/^i-[0-9a-f]+$/.test(instanceId)) throw new Error(`not an instance id: ${instanceId}`);
    return join(this.dir, `${instanceId}.log`);
  }

  async reset(instanceId: string): Promise<string> {
    // chmod as well: the modes given to mkdir/writeFile only apply to what they create
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    await chmod(this.dir, 0o750);
    const p = this.path(instanceId);
    await writeFile(p, '', { mode: 0o640 });
    await chmod(p, 0o640);
    return p;
  }

  async tail(instanceId: string, maxBytes: number): Promise<{ data: Buffer; mtime: Date } | undefined> {
    let fh;
    try {
      fh = await open(this.path(instanceId), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const st = await fh.stat();
      const start = Math.max(0, st.size - maxBytes);
      const buf = Buffer.alloc(st.size - start);
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      return { data: buf.subarray(0, bytesRead), mtime: st.mtime };
    } finally {
      await fh.close();
    }
  }

  async remove(instanceId: string): Promise<void> {
    const p = this.path(instanceId);
    await rm(p, { force: true });
    // virtlogd's rotated copies (max_backups in virtlogd.conf, 3 by default).
    for (let i = 0; i < 10; i++) await rm(`${p}.${i}`, { force: true });
  }

  async exists(instanceId: string): Promise<boolean> {
    return stat(this.path(instanceId)).then(
      () => true,
      () => false,
    );
  }
}
