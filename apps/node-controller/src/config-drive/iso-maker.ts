import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** One file of an ISO image: a relative, `/`-separated path and its bytes. */
export interface IsoFile {
  path: string;
  data: Buffer | string;
}

/** Makes an ISO 9660 image (with Rock Ridge and Joliet names) from in-memory files. */
export interface IsoMaker {
  make(volumeLabel: string, files: IsoFile[]): Promise<Buffer>;
}

export interface GenisoimageIsoMakerOptions {
  /** Executable; default `genisoimage` (Debian package genisoimage, in host-services.sh PKGS). */
  binary?: string;
  /** Parent of the scratch directories; default the OS temp dir. */
  tmpDir?: string;
  /** Kill genisoimage after this long; default 30 s. */
  timeoutMs?: number;
}

const SAFE_SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * IsoMaker spawning Debian's `genisoimage` (`-r` rationalized Rock Ridge: uid/gid 0, files
 * 0444; `-J` Joliet; `-V` label). Files are written into a fresh mkdtemp directory that is
 * always removed; arguments go as an array (no shell), so file contents never reach a command
 * line. Chosen over a hand-written ISO writer: Rock Ridge + Joliet + path tables are easy to
 * get subtly wrong, and the package is installed on every node host anyway.
 */
export class GenisoimageIsoMaker implements IsoMaker {
  constructor(private readonly opts: GenisoimageIsoMakerOptions = {}) {}

  async make(volumeLabel: string, files: IsoFile[]): Promise<Buffer> {
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(volumeLabel)) throw new Error(`invalid ISO volume label ${JSON.stringify(volumeLabel)}`);
    const work = await mkdtemp(join(this.opts.tmpDir ?? tmpdir(), 'koala-iso-'));
    try {
      const root = join(work, 'root');
      await mkdir(root);
      for (const f of files) {
        const segments = f.path.split('/');
        if (!segments.every((s) => SAFE_SEGMENT.test(s) && s !== '.' && s !== '..')) throw new Error(`invalid ISO file path ${JSON.stringify(f.path)}`);
        const target = join(root, ...segments);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, f.data);
      }
      const out = join(work, 'image.iso');
      const args = ['-quiet', '-input-charset', 'utf-8', '-V', volumeLabel, '-r', '-J', '-o', out, root];
      await new Promise<void>((resolve, reject) => {
        execFile(this.opts.binary ?? 'genisoimage', args, { timeout: this.opts.timeoutMs ?? 30_000, maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
          if (err) reject(new Error(`genisoimage failed: ${err.message}${stderr ? `: ${String(stderr).trim()}` : ''}`));
          else resolve();
        });
      });
      return await readFile(out);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
}
