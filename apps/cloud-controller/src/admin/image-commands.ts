/**
 * `image import|list` of the CLC entry point (run by `koala image ...`): operator import of disk
 * images straight into the image store and the images table (PostgreSQL + $KOALA_HOME; no NATS,
 * no running CLC needed).
 *
 *   image import --name NAME [--account NAME] [--public] [--arch x86_64] [--description D] [--replace] DISK
 *   image import --name NAME --kernel FILE [--ramdisk FILE] --root FILE [--kernel-args "..."] [...]
 *   image list [--json]
 *
 * A paravirtual triple registers `NAME-kernel` (eki), `NAME-ramdisk` (eri) and `NAME` (emi).
 * Idempotent by name: the same bytes answer the existing ids; other bytes need --replace.
 * A raw machine disk is stored as a compact qcow2 (holes and zero blocks are neither read nor
 * stored; the conversion is deterministic, so re-importing the same file finds the same image).
 */
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { koalaPaths, type KoalaConfig } from '@koala/config';
import { systemClock } from '@koala/runtime';
import type { DataSource } from 'typeorm';
import { createAccountsService, ADMIN_ACCOUNT } from '../accounts/accounts.service.js';
import { FsBlobStore } from '../images/blob-store.js';
import { BlobUrlSigner } from '../images/blob-url-signer.js';
import { HttpImageFetcher } from '../images/image-fetcher.js';
import { detectImageFormat, FORMAT_PROBE_BYTES } from '../images/image-format.js';
import { InstancesImageUsage } from '../images/instances-image-usage.js';
import type { Architecture, ImageEntity, ImageType } from '../images/image.entity.js';
import { ImagesRepository } from '../images/images.repository.js';
import { ARCHITECTURES, ImageImportError, ImagesService } from '../images/images.service.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { createTagsService } from '../tags/tags.service.js';
import { ProgressBar } from './progress-bar.js';

export interface ImageCommandIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Draw a redrawn progress bar (stderr is a terminal). */
  tty?: boolean;
}

export class ImageUsageError extends Error {}

export const IMAGE_USAGE_TEXT = `usage:
  image import --name NAME [--account NAME] [--public] [--arch x86_64|i386|arm64] [--description TEXT] [--replace] DISK
  image import --name NAME --kernel FILE [--ramdisk FILE] --root FILE [--kernel-args "..."] [same options]
  image list [--json]
`;

interface ImportArgs {
  name: string;
  account: string;
  isPublic: boolean;
  architecture: Architecture;
  description?: string;
  replace: boolean;
  disk?: string;
  kernel?: string;
  ramdisk?: string;
  root?: string;
  kernelArgs?: string;
}

const VALUE_OPTS = new Set(['--name', '--account', '--arch', '--description', '--kernel', '--ramdisk', '--root', '--kernel-args']);
const FLAG_OPTS = new Set(['--public', '--replace']);

export function parseImportArgs(args: string[]): ImportArgs {
  const v: Record<string, string> = {};
  const flags = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const [k, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (VALUE_OPTS.has(k)) {
      const val = inline ?? args[++i];
      if (val === undefined) throw new ImageUsageError(`${k} needs a value`);
      v[k] = val;
    } else if (FLAG_OPTS.has(k)) flags.add(k);
    else if (a.startsWith('--')) throw new ImageUsageError(`unknown option ${a}`);
    else positional.push(a);
  }
  if (!v['--name']) throw new ImageUsageError('--name is required');
  const arch = (v['--arch'] ?? 'x86_64') as Architecture;
  if (!ARCHITECTURES.includes(arch)) throw new ImageUsageError(`--arch must be one of ${ARCHITECTURES.join(', ')}`);
  const triple = v['--kernel'] !== undefined || v['--root'] !== undefined || v['--ramdisk'] !== undefined;
  if (triple) {
    if (!v['--kernel'] || !v['--root']) throw new ImageUsageError('a paravirtual import needs --kernel and --root (and usually --ramdisk)');
    if (positional.length) throw new ImageUsageError('give either DISK or --kernel/--ramdisk/--root, not both');
  } else {
    if (positional.length !== 1) throw new ImageUsageError('give exactly one DISK file');
    if (v['--kernel-args'] !== undefined) throw new ImageUsageError('--kernel-args applies to paravirtual imports');
  }
  return {
    name: v['--name'],
    account: v['--account'] ?? ADMIN_ACCOUNT,
    isPublic: flags.has('--public'),
    architecture: arch,
    description: v['--description'],
    replace: flags.has('--replace'),
    disk: positional[0],
    kernel: v['--kernel'],
    ramdisk: v['--ramdisk'],
    root: v['--root'],
    kernelArgs: v['--kernel-args'],
  };
}

/** The ImagesService as the admin process builds it (no Nest). */
export function adminImagesService(config: KoalaConfig, ds: DataSource, masterKey: string): ImagesService {
  const registry = new TaggableResources();
  return new ImagesService(
    new ImagesRepository(ds),
    new FsBlobStore(koalaPaths(config.home).imageStore),
    new HttpImageFetcher({ allow: config.imageFetchAllow }),
    new BlobUrlSigner(masterKey),
    createTagsService(ds, registry),
    new InstancesImageUsage(),
    systemClock,
    config,
    registry,
    masterKey,
  );
}

/** A raw machine disk is stored as a compact qcow2 (holes never read); false for a qcow2 or an empty file. */
function isRawDisk(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(FORMAT_PROBE_BYTES);
    const n = readSync(fd, head, 0, head.length, 0);
    return n > 0 && detectImageFormat(head.subarray(0, n)).format === 'raw';
  } finally {
    closeSync(fd);
  }
}

function fileSize(path: string): number {
  try {
    const s = statSync(path);
    if (!s.isFile()) throw new ImageImportError(`${path}: not a regular file`);
    return s.size;
  } catch (e) {
    if (e instanceof ImageImportError) throw e;
    throw new ImageImportError(`${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/** Runs `image ...`; returns the exit code. Throws ImageUsageError / ImageImportError / AccountsError. */
export async function runImageCommand(config: KoalaConfig, ds: DataSource, masterKey: string, args: string[], io: ImageCommandIo): Promise<number> {
  const [sub, ...rest] = args;
  const images = adminImagesService(config, ds, masterKey);
  if (sub === 'list') {
    const rows = await images.listAll();
    // size: the disk a guest sees (a qcow2's from its header); stored: the blob's bytes
    const store = new FsBlobStore(koalaPaths(config.home).imageStore);
    const virtualSize = async (r: ImageEntity) => {
      if (r.format !== 'qcow2' || !r.blobSha256) return r.sizeBytes;
      const head = await store.head(r.blobSha256, FORMAT_PROBE_BYTES).catch(() => undefined);
      return (head && detectImageFormat(head).virtualSize) ?? r.sizeBytes;
    };
    const sizes = await Promise.all(rows.map(virtualSize));
    if (rest.includes('--json')) {
      io.out(
        JSON.stringify(
          rows.map((r, i) => ({
            id: r.id,
            name: r.name,
            owner: r.accountId,
            type: r.imageType,
            state: r.state,
            public: r.isPublic,
            size: sizes[i],
            stored: r.sizeBytes,
            format: r.format,
            sha256: r.blobSha256,
          })),
        ) + '\n',
      );
      return 0;
    }
    const table = [['IMAGE ID', 'NAME', 'OWNER', 'TYPE', 'VIRT', 'STATE', 'PUBLIC', 'FORMAT', 'SIZE', 'STORED']];
    const n = (v: number | null | undefined) => (v === null || v === undefined ? '-' : String(v));
    rows.forEach((r, i) => {
      table.push([r.id, r.name, r.accountId, r.imageType, r.virtualizationType, r.state, r.isPublic ? 'yes' : 'no', r.format ?? '-', n(sizes[i]), n(r.sizeBytes)]);
    });
    const w = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    io.out(
      table
        .map((r) =>
          r
            .map((c, i) => c.padEnd(w[i]!))
            .join('  ')
            .trimEnd(),
        )
        .join('\n') + '\n',
    );
    return 0;
  }
  if (sub !== 'import') throw new ImageUsageError(sub ? `unknown image command "${sub}"` : 'missing image command');
  const a = parseImportArgs(rest);
  const accounts = createAccountsService(ds, masterKey);
  const account = await accounts.getAccount(a.account);
  const owner = { id: account.id, isAdmin: account.isAdmin };
  // check every file before storing anything
  for (const f of [a.disk, a.kernel, a.ramdisk, a.root]) if (f) fileSize(f);

  const one = async (file: string, name: string, imageType: ImageType, extra: { kernelId?: string; ramdiskId?: string; kernelArgs?: string } = {}): Promise<ImageEntity> => {
    const size = fileSize(file);
    const raw = imageType === 'machine' && isRawDisk(file);
    // a raw disk: what is stored is about its allocated bytes (the qcow2 of its data)
    const total = raw ? Math.min(size, statSync(file).blocks * 512) : size;
    const bar = new ProgressBar(io.err, `${name} (${basename(file)})`, total, io.tty ?? false);
    let done = 0;
    const { image, existed } = await images
      .importImage(owner, {
        name,
        description: a.description,
        imageType,
        architecture: a.architecture,
        virtualizationType: a.disk ? 'hvm' : 'paravirtual',
        isPublic: a.isPublic,
        location: `import:${basename(file)}`,
        source: raw ? { rawDiskPath: file } : createReadStream(file, { highWaterMark: 1024 * 1024 }),
        replace: a.replace,
        onProgress: (n) => bar.update((done = n)),
        ...extra,
      })
      .catch((e) => {
        bar.done(done, 'failed');
        throw e;
      });
    bar.done(done, existed ? `already imported as ${image.id}` : `imported as ${image.id}`);
    io.out(`${image.id}\t${image.name}\t${image.imageType}\t${existed ? 'existing' : 'new'}\n`);
    return image;
  };

  if (a.disk) {
    await one(a.disk, a.name, 'machine');
    return 0;
  }
  const kernel = await one(a.kernel!, `${a.name}-kernel`, 'kernel');
  const ramdisk = a.ramdisk ? await one(a.ramdisk, `${a.name}-ramdisk`, 'ramdisk') : undefined;
  await one(a.root!, a.name, 'machine', { kernelId: kernel.id, ramdiskId: ramdisk?.id, kernelArgs: a.kernelArgs });
  return 0;
}
