/**
 * Snapshot-style volume copies between two libvirt `dir` pools (the storage controller's copier):
 * the old window-by-window path (`mode: 'dense'`: 8 MiB windows, download then upload, all-zero
 * windows skipped) against sparse streams (one sparse download piped into one sparse upload;
 * holes never travel). Two 1 GiB sources: ~64 MiB of data in 4 extents, and an empty one.
 * Prints seconds per copy (median of the rounds), bytes written, the copy's allocation and the
 * ratio; asserts nothing about timings.
 *
 * Run (libvirtd up, as for the e2e tests):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/volumes-jest.config.js bench/volumes-copy.bench.ts
 * Knobs (environment): BENCH_ROUNDS=3
 *
 * Pools live on qemu:///system under a mkdtemp directory, removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Libvirt } from '@koala/libvirt';
import { DirPoolBackend } from '../apps/storage-controller/src/volumes/dir-pool-backend.js';
import { copyVolume, type CopyMode } from '../apps/storage-controller/src/volumes/volume-copier.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const EXTENTS = [
  { offset: 0, length: 16 * MiB },
  { offset: 300 * MiB, length: 16 * MiB },
  { offset: 600 * MiB + 12_345, length: 16 * MiB },
  { offset: GiB - 16 * MiB, length: 16 * MiB },
];

describe('bench: volume copy, window by window vs sparse streams (1 GiB)', () => {
  const suffix = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const home = mkdtempSync(join(tmpdir(), 'koala-bench-copy-'));
  const poolNames = [`koala-bench-copy-vols-${suffix}`, `koala-bench-copy-snaps-${suffix}`];
  let lv: Libvirt;
  let volumes: DirPoolBackend;
  let snapshots: DirPoolBackend;

  beforeAll(async () => {
    lv = await Libvirt.connect({ uri: 'qemu:///system' });
    const libvirt = async () => lv;
    volumes = new DirPoolBackend({ libvirt, poolName: poolNames[0], targetPath: join(home, 'volumes') });
    snapshots = new DirPoolBackend({ libvirt, poolName: poolNames[1], targetPath: join(home, 'snapshots') });
    await volumes.open();
    await snapshots.open();
    await volumes.create('vol-data', GiB);
    for (const e of EXTENTS) await volumes.write('vol-data', e.offset, randomBytes(e.length));
    await volumes.create('vol-empty', GiB);
  }, 120_000);

  afterAll(async () => {
    for (const name of poolNames) {
      const p = await lv.lookupStoragePoolByName(name).catch(() => undefined);
      if (!p) continue;
      for (const v of await lv.listAllVolumes(p)) await lv.deleteVolume(v).catch(() => undefined);
      await lv.destroyStoragePool(p).catch(() => undefined);
      await lv.undefineStoragePool(p).catch(() => undefined);
    }
    await lv?.close();
    rmSync(home, { recursive: true, force: true });
  }, 120_000);

  let n = 0;
  async function copyOnce(source: string, mode: CopyMode): Promise<{ s: number; written: number; allocation: number }> {
    const id = `snap-${n++}`;
    await snapshots.create(id, GiB);
    const t0 = performance.now();
    const written = await copyVolume(volumes, source, snapshots, id, { lengthBytes: GiB, mode });
    const s = (performance.now() - t0) / 1000;
    const allocation = (await snapshots.get(id))!.allocationBytes;
    await snapshots.delete(id);
    return { s, written, allocation };
  }

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  it('prints seconds per copy and the ratio', async () => {
    await copyOnce('vol-empty', 'auto'); // warm-up (connections, pools)
    const lines = [`Snapshot-style copy of a 1 GiB volume between dir pools on qemu:///system (${ROUNDS} rounds, median):`];
    for (const [label, source] of [
      ['64 MiB of data in 4 extents', 'vol-data'],
      ['empty', 'vol-empty'],
    ]) {
      const runs: Record<CopyMode, { s: number; written: number; allocation: number }[]> = { dense: [], auto: [] };
      for (let i = 0; i < ROUNDS; i++) {
        // alternate the order, so neither path always runs on a warmer page cache
        for (const mode of (i % 2 ? ['auto', 'dense'] : ['dense', 'auto']) as CopyMode[]) runs[mode].push(await copyOnce(source, mode));
      }
      const dense = median(runs.dense.map((r) => r.s));
      const sparse = median(runs.auto.map((r) => r.s));
      const fmt = (r: { written: number; allocation: number }) => `${(r.written / MiB).toFixed(1)} MiB written, copy allocates ${(r.allocation / MiB).toFixed(1)} MiB`;
      lines.push(
        `  ${label}:`,
        `    window by window (old): ${dense.toFixed(3)} s (${fmt(runs.dense[0])})`,
        `    sparse streams:         ${sparse.toFixed(3)} s (${fmt(runs.auto[0])})`,
        `    ratio old / sparse:     ${(dense / sparse).toFixed(1)}x`,
      );
    }
    console.log(lines.join('\n'));
  }, 900_000);
});
