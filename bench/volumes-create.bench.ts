/**
 * CreateVolume-to-`available` through the storage controller, 1 GiB vs 100 GiB sparse volumes
 * (dir backend: raw sparse files, so the time should not grow with the size). Prints figures and
 * the ratio; asserts nothing about timings.
 *
 * Run (libvirtd and tgtd up, as for the e2e tests; a private nats-server is started):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/volumes-jest.config.js
 * Knobs (environment): BENCH_ROUNDS=10
 *
 * The SC runs in-process (real NATS request/ack, JetStream event, libvirt on qemu:///system with
 * a private pool under a mkdtemp directory, removed afterwards).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { createVolume, deleteVolume, EventSubjects, StorageEvent } from '@koala/contracts';
import { loadConfig } from '@koala/config';
import { Libvirt } from '@koala/libvirt';
import { NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { storageModule } from '../apps/storage-controller/src/storage.module.js';
import { TestNatsServer } from '../test/support/nats-server.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);

describe('bench: CreateVolume to available, 1 GiB vs 100 GiB (sparse)', () => {
  const zone = `bench-vol-${process.pid}`;
  const home = mkdtempSync(join(tmpdir(), 'koala-bench-vol-'));
  const poolNames = [`koala-bench-vols-${process.pid}`, `koala-bench-snaps-${process.pid}`];
  let nats: TestNatsServer;
  let client: NatsBus;
  let app: INestApplicationContext;
  const waiters = new Map<string, (e: StorageEvent) => void>();

  beforeAll(async () => {
    nats = await TestNatsServer.start();
    const config = loadConfig({
      KOALA_NATS_URL: nats.url,
      KOALA_ZONE: zone,
      KOALA_HOME: home,
      KOALA_LOG_LEVEL: 'warn',
      KOALA_VOLUMES_POOL: poolNames[0],
      KOALA_SNAPSHOTS_POOL: poolNames[1],
      KOALA_STORAGE_CAPACITY_BYTES: String(1024 ** 5),
    });
    client = await NatsBus.connect({ url: nats.url, name: 'bench', reconnectWaitMs: 200 });
    client.subscribe(EventSubjects.volume(zone), StorageEvent, (e) => waiters.get(e.id)?.(e));
    await client.flush();
    app = (await startDaemon('storage-controller', (ctx) => storageModule(ctx), { zoned: true, config })).app;
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    const lv = await Libvirt.connect({ uri: 'qemu:///system' });
    for (const name of poolNames) {
      try {
        const p = await lv.lookupStoragePoolByName(name);
        for (const v of await lv.listAllVolumes(p)) await lv.deleteVolume(v).catch(() => undefined);
        await lv.destroyStoragePool(p).catch(() => undefined);
        await lv.undefineStoragePool(p).catch(() => undefined);
      } catch {
        // not created
      }
    }
    await lv.close();
    await client?.close();
    await nats?.dispose();
    rmSync(home, { recursive: true, force: true });
  }, 60_000);

  const until = (id: string, state: string) => new Promise<StorageEvent>((resolve) => waiters.set(id, (e) => e.state === state && (waiters.delete(id), resolve(e))));

  async function createMs(sizeGiB: number): Promise<number> {
    const volumeId = `vol-${randomBytes(8).toString('hex')}`;
    const done = until(volumeId, 'available');
    const t0 = performance.now();
    await client.request(createVolume(zone), { volumeId, sizeGiB });
    await done;
    const ms = performance.now() - t0;
    const gone = until(volumeId, 'deleted');
    await client.request(deleteVolume(zone), { volumeId });
    await gone;
    return ms;
  }

  it('prints median and p90 per size, and the ratio', async () => {
    await createMs(1); // warm-up (pool, connections, stream)
    const results: Record<string, number[]> = { '1': [], '100': [] };
    for (let i = 0; i < ROUNDS; i++) {
      results['1'].push(await createMs(1));
      results['100'].push(await createMs(100));
    }
    const stat = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return { median: s[Math.floor(s.length / 2)], p90: s[Math.min(s.length - 1, Math.floor(s.length * 0.9))] };
    };
    const a = stat(results['1']);
    const b = stat(results['100']);
    console.log(
      [
        `CreateVolume -> available through the SC (${ROUNDS} rounds, dir backend, sparse raw):`,
        `  1 GiB:   median ${a.median.toFixed(1)} ms, p90 ${a.p90.toFixed(1)} ms`,
        `  100 GiB: median ${b.median.toFixed(1)} ms, p90 ${b.p90.toFixed(1)} ms`,
        `  ratio 100 GiB / 1 GiB (median): ${(b.median / a.median).toFixed(2)}x`,
      ].join('\n'),
    );
  }, 600_000);
});
