import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Work started but not finished: what a restarted SC must clean up and redo. */
export type PendingWork =
  | { op: 'create-volume'; volumeId: string; sizeGiB: number; snapshotId?: string }
  | { op: 'create-snapshot'; snapshotId: string; volumeId: string }
  | { op: 'copy-snapshot'; snapshotId: string; sourceSnapshotId: string };

export const pendingKey = (w: PendingWork) => (w.op === 'create-volume' ? w.volumeId : w.snapshotId);

/**
 * A write-ahead note per long operation: written before the volume/snapshot is created,
 * removed once it is complete. A volume with a note is never reported complete; at start the
 * SC deletes it and redoes the work.
 */
export interface PendingJournal {
  add(work: PendingWork): Promise<void>;
  remove(key: string): Promise<void>;
  list(): Promise<PendingWork[]>;
  has(key: string): Promise<boolean>;
}

/** One JSON file per operation under `dir` (written to a temporary name, then renamed). */
export class FsPendingJournal implements PendingJournal {
  constructor(private readonly dir: string) {}

  async add(work: PendingWork): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, `${pendingKey(work)}.json`);
    await writeFile(`${file}.tmp`, JSON.stringify(work), { flush: true });
    await rename(`${file}.tmp`, file);
  }

  async remove(key: string): Promise<void> {
    await rm(join(this.dir, `${key}.json`), { force: true });
  }

  async has(key: string): Promise<boolean> {
    return (await this.list()).some((w) => pendingKey(w) === key);
  }

  async list(): Promise<PendingWork[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: PendingWork[] = [];
    for (const n of names.filter((x) => x.endsWith('.json'))) {
      try {
        out.push(JSON.parse(await readFile(join(this.dir, n), 'utf8')) as PendingWork);
      } catch {
        // a torn write can only be the .tmp file; anything unreadable is dropped
        await rm(join(this.dir, n), { force: true });
      }
    }
    return out;
  }
}

export class MemoryPendingJournal implements PendingJournal {
  readonly entries = new Map<string, PendingWork>();
  async add(work: PendingWork) {
    this.entries.set(pendingKey(work), work);
  }
  async remove(key: string) {
    this.entries.delete(key);
  }
  async has(key: string) {
    return this.entries.has(key);
  }
  async list() {
    return [...this.entries.values()];
  }
}
