/**
 * RunInstances-to-`running` from a 10 MiB vs a 10 GiB (sparse) HVM raw image once both are in
 * the NC's image cache: the root disk is a qcow2 overlay on the cached image, so launch time
 * should not depend on the image's size (ratio close to 1). The first launch of each image
 * downloads it into the cache and is printed apart as "cold"; since raw disks are stored as
 * compact qcow2 (holes neither read at import nor downloaded), it should not depend on the size
 * either. Prints medians and the ratio 10 GiB / 10 MiB; asserts nothing about timings.
 *
 * Run (as root; PostgreSQL, libvirtd and nats-server installed: `bash deploy/scripts/host-services.sh`;
 * a few GiB free under $TMPDIR: the 10 GiB source file is sparse, what is stored holds its data):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/instances-jest.config.js bench/instances-image-size.bench.ts
 * Knobs (environment): BENCH_ROUNDS=3
 *
 * Real CLC + CC + NC in-process on a private nats-server, the NC on qemu:///system (the real
 * driver, also for the cold 10 GiB download). The images are registered with the admin image
 * import (`image import --name … --public DISK`): 10 MiB of random bytes, and a 10 GiB file
 * made with `truncate` holding 10 MiB of random data in 1 MiB extents. The
 * images hold no OS: `running` is libvirt's (QEMU started, SeaBIOS finds nothing to boot).
 * Timing: clock started before RunInstances, stopped at the first DescribeInstances (polled
 * every 100 ms) that says running; each instance is terminated (and waited for) before the next
 * launch. Warm launches alternate between the two images. Everything is removed afterwards.
 */
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_CACHE } from '../apps/node-controller/src/images/image-cache.js';
import type { LibvirtImageCache } from '../apps/node-controller/src/images/libvirt-image-cache.js';
import { fmt, startBenchCloud, stats, type BenchCloud } from './instances-support.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
jest.setTimeout(3_600_000);

it('RunInstances-to-running from a cached 10 MiB vs 10 GiB image', async () => {
  let b: BenchCloud | undefined;
  try {
    b = await startBenchCloud({ uri: 'qemu:///system' });
    const { tag, work } = b;
    const cache = b.nc.app.get(IMAGE_CACHE) as LibvirtImageCache;

    const small = join(work, 'small.img');
    writeFileSync(small, randomBytes(10 * MiB));
    // 10 GiB apparent, 10 MiB of data in 10 extents of 1 MiB spread over the disk (a mostly empty file system)
    const big = join(work, 'big.img');
    execFileSync('truncate', ['-s', String(10 * GiB), big]);
    const fd = openSync(big, 'r+');
    for (let i = 0; i < 10; i++) writeSync(fd, randomBytes(MiB), 0, MiB, i * GiB);
    closeSync(fd);

    const images: { label: string; id: string; importMs: number; coldMs: number; coldDownloadBytes: number; warm: number[] }[] = [];
    for (const [label, file] of [
      ['10 MiB', small],
      ['10 GiB', big],
    ] as const) {
      const t0 = performance.now();
      const [id] = await b.importImage(['--name', `bench-${label.replace(' ', '')}-${tag}`, '--public', file]);
      images.push({ label, id: id!, importMs: performance.now() - t0, coldMs: 0, coldDownloadBytes: 0, warm: [] });
    }

    const launchMs = async (image: string) => {
      const t0 = performance.now();
      const id = await b!.launch(image);
      await b!.waitRunning(id);
      const ms = performance.now() - t0;
      await b!.terminate(id);
      return ms;
    };

    for (const img of images) {
      const before = cache.stats();
      img.coldMs = await launchMs(img.id);
      const after = cache.stats();
      img.coldDownloadBytes = after.downloadedBytes - before.downloadedBytes;
      if (after.downloads - before.downloads !== 1) throw new Error(`cold launch of ${img.label}: expected one download, saw ${after.downloads - before.downloads}`);
    }
    const warmStart = cache.stats();
    for (let r = 0; r < ROUNDS; r++) for (const img of images) img.warm.push(await launchMs(img.id));
    const warmEnd = cache.stats();
    if (warmEnd.downloads !== warmStart.downloads) throw new Error('a warm launch downloaded an image again (evicted?)');

    const [s, l] = images as [(typeof images)[0], (typeof images)[0]];
    const gb = (n: number) => `${(n / GiB).toFixed(2)} GiB`;
    process.stdout.write(
      `\nHVM raw image launch, NC on qemu:///system (real driver for every launch, cold ones included), m1.small, ${ROUNDS} warm rounds each:\n` +
        `  image import (admin CLI, in-process)  10 MiB ${s.importMs.toFixed(0)} ms, 10 GiB sparse ${l.importMs.toFixed(0)} ms\n` +
        `  cold  RunInstances -> running  10 MiB ${s.coldMs.toFixed(0).padStart(7)} ms  (downloaded ${gb(s.coldDownloadBytes)})\n` +
        `  cold  RunInstances -> running  10 GiB ${l.coldMs.toFixed(0).padStart(7)} ms  (downloaded ${gb(l.coldDownloadBytes)})\n` +
        `  warm  RunInstances -> running  10 MiB ${fmt(s.warm)}\n` +
        `  warm  RunInstances -> running  10 GiB ${fmt(l.warm)}\n` +
        `  ratio warm 10 GiB / 10 MiB (medians)  ${(stats(l.warm).median / stats(s.warm).median).toFixed(2)}\n` +
        `  ratio cold 10 GiB / 10 MiB            ${(l.coldMs / s.coldMs).toFixed(1)}\n` +
        `  (image cache during the warm launches: ${warmEnd.hits - warmStart.hits} hits, ${warmEnd.downloads - warmStart.downloads} downloads)\n`,
    );
  } finally {
    await b?.close();
  }
});
