/**
 * RunInstances-to-`running` and RunInstances-to-booted for tiny-linux on qemu:///system: Koala
 * (real CLC + CC + NC in-process on a private nats-server, driven by @aws-sdk/client-ec2) vs a
 * bare libvirt createDomainXml of the same domain XML in the same run. Prints median/min/max and
 * the ratio Koala / bare; asserts nothing about timings.
 *
 * Run (as root; PostgreSQL, libvirtd and nats-server installed: `bash deploy/scripts/host-services.sh`):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/instances-jest.config.js bench/instances-launch.bench.ts
 * Knobs (environment): BENCH_ROUNDS=3
 *
 * Koala side: the clock starts before RunInstances is sent; `running` = the first
 * DescribeInstances (polled every 100 ms) that says running; `booted` = the first
 * GetConsoleOutput (polled every 100 ms) that holds TINY-LINUX-BOOTED. The image is cached on
 * the NC by an untimed warm-up launch first (printed as "cold" for information).
 *
 * Bare side: the domain XML of the warm-up instance (getDomainXml, inactive) renamed, uuid and
 * Koala metadata stripped, its disks pointed at volumes in a pool of our own (a qcow2 overlay
 * on the same cached base image; a copy of the config drive), its serial log at a file of ours.
 * Those volumes are made before the clock starts (their creation time is printed apart);
 * `running` = createDomainXml returned and getDomainState says RUNNING; `booted` = the serial
 * log file (polled every 100 ms) holds TINY-LINUX-BOOTED. Each bare domain is transient and
 * destroyed after its round. Rounds alternate Koala / bare. Everything is removed afterwards.
 */
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DomainState, VIR_DOMAIN_XML_INACTIVE, buildStoragePoolXml, buildStorageVolumeXml, parseDomainXml, parseStorageVolumeXml, type StoragePool, type StorageVol } from '@koala/libvirt';
import { fmt, startBenchCloud, stats, until, type BenchCloud } from './instances-support.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const IMAGE_DIR = join(tmpdir(), 'koala-test-images', 'tiny-linux');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BANNER = 'TINY-LINUX-BOOTED';
jest.setTimeout(3_600_000);

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

it('RunInstances-to-running/booted: Koala vs bare createDomainXml', async () => {
  execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), IMAGE_DIR], { stdio: 'ignore', timeout: 600_000 });
  let b: BenchCloud | undefined;
  try {
    b = await startBenchCloud({ uri: 'qemu:///system' });
    const { lv, tag, work } = b;
    const ids = await b.importImage([
      '--name',
      `tiny-linux-bench-${tag}`,
      '--public',
      '--kernel',
      join(IMAGE_DIR, 'vmlinuz'),
      '--ramdisk',
      join(IMAGE_DIR, 'initramfs.img'),
      '--root',
      join(IMAGE_DIR, 'rootfs.img'),
    ]);
    const imageId = ids.find((i) => i.startsWith('emi-'))!;

    // Our own pool for the bare side (its name carries the tag: close() removes it in any case).
    const poolName = `koala-bench-bare-${tag}`;
    const pool: StoragePool = await lv.defineStoragePool(buildStoragePoolXml({ type: 'dir', name: poolName, targetPath: join(work, 'bare') }));
    await lv.buildStoragePool(pool);
    await lv.createStoragePool(pool);

    // Warm-up launch (caches kernel, ramdisk and root on the NC); its XML is the bare template.
    let t0 = performance.now();
    const warm = await b.launch(imageId);
    await b.waitRunning(warm);
    const cold = performance.now() - t0;
    await until('warm-up boot', async () => (await b!.consoleText(warm)).includes(BANNER));
    const coldBooted = performance.now() - t0;
    const dom = await lv.lookupDomainByName(warm);
    const xml = await lv.getDomainXml(dom, VIR_DOMAIN_XML_INACTIVE);
    const parsed = parseDomainXml(xml);
    const ncPool = await lv.lookupStoragePoolByName(b.nc.config.ncInstancesPool);
    // Root: an overlay on the same cached base; the other disks: templates copied from the NC's volumes.
    interface DiskPlan {
      volume: string;
      suffix: string;
      root?: { base: string; baseFormat: string; capacity: number };
      template?: StorageVol;
      capacity: number;
    }
    const plan: DiskPlan[] = [];
    for (const d of parsed.disks) {
      if (d.type !== 'volume' || !d.sourceVolume) throw new Error(`unexpected disk in the NC's domain XML: ${JSON.stringify(d)}`);
      const vol = await lv.lookupVolumeByName(ncPool, d.sourceVolume);
      const info = parseStorageVolumeXml(await lv.getVolumeXml(vol));
      const suffix = d.sourceVolume.slice(warm.length);
      if (d.targetDev === 'vda') {
        if (!info.backingStorePath) throw new Error('the root volume has no backing store');
        plan.push({
          volume: d.sourceVolume,
          suffix,
          capacity: info.capacityBytes!,
          root: { base: info.backingStorePath, baseFormat: info.backingStoreFormat ?? 'raw', capacity: info.capacityBytes! },
        });
      } else {
        const template = await lv.createVolumeFrom(pool, buildStorageVolumeXml({ name: `template${suffix}`, format: 'raw', capacityBytes: info.capacityBytes!, permissions: { mode: '0644' } }), vol);
        plan.push({ volume: d.sourceVolume, suffix, capacity: info.capacityBytes!, template });
      }
    }
    await b.terminate(warm);

    const bareXml = (name: string, logPath: string) => {
      let x = xml
        .replace(/<uuid>[^<]*<\/uuid>\s*/, '')
        .replace(/<metadata>[\s\S]*?<\/metadata>\s*/, '')
        .replace(/<description>[^<]*<\/description>\s*/, '');
      if (parsed.serialLogPath) x = x.replace(new RegExp(escapeRe(parsed.serialLogPath), 'g'), logPath);
      x = x.replace(new RegExp(`(['"])${escapeRe(b!.nc.config.ncInstancesPool)}\\1`, 'g'), `'${poolName}'`);
      x = x.replace(new RegExp(escapeRe(warm), 'g'), name);
      const p = parseDomainXml(x);
      if (p.name !== name || p.disks.some((d) => d.sourcePool !== poolName) || p.koala || p.uuid || (parsed.serialLogPath && p.serialLogPath !== logPath)) {
        throw new Error(`could not rewrite the domain XML:\n${x}`);
      }
      return x;
    };

    const koala = { running: [] as number[], booted: [] as number[] };
    const bare = { running: [] as number[], booted: [] as number[], disks: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      // Koala
      t0 = performance.now();
      const id = await b.launch(imageId);
      await b.waitRunning(id);
      koala.running.push(performance.now() - t0);
      await until(`${id} booted`, async () => (await b!.consoleText(id)).includes(BANNER));
      koala.booted.push(performance.now() - t0);
      await b.terminate(id);

      // Bare libvirt, same XML
      const name = `bench-bare-${tag}-${r}`;
      const log = join(work, `${name}.log`);
      const td = performance.now();
      const vols: StorageVol[] = [];
      for (const d of plan) {
        const volName = `${name}${d.suffix}`;
        if (d.root) {
          vols.push(
            await lv.createVolume(
              pool,
              buildStorageVolumeXml({ name: volName, format: 'qcow2', capacityBytes: d.root.capacity, backingStore: { path: d.root.base, format: d.root.baseFormat as 'raw' } }),
            ),
          );
        } else {
          vols.push(await lv.createVolumeFrom(pool, buildStorageVolumeXml({ name: volName, format: 'raw', capacityBytes: d.capacity, permissions: { mode: '0644' } }), d.template!));
        }
      }
      bare.disks.push(performance.now() - td);
      const domXml = bareXml(name, log);
      t0 = performance.now();
      const bdom = await lv.createDomainXml(domXml);
      await until(`${name} running`, async () => (await lv.getDomainState(bdom)).state === DomainState.RUNNING, 60_000, 100);
      bare.running.push(performance.now() - t0);
      await until(`${name} booted`, () => existsSync(log) && readFileSync(log, 'utf8').includes(BANNER), 300_000, 100);
      bare.booted.push(performance.now() - t0);
      await lv.destroyDomain(bdom); // transient: gone
      for (const v of vols) await lv.deleteVolume(v);
      rmSync(log, { force: true });
    }

    const ratio = (a: number[], c: number[]) => (stats(a).median / stats(c).median).toFixed(2);
    process.stdout.write(
      `\ntiny-linux launch on qemu:///system (domain type ${parsed.type}, ${parsed.memoryMiB} MiB, ${parsed.vcpus} vCPU), ${ROUNDS} rounds, median (min, max):\n` +
        `  running  Koala  RunInstances -> running (DescribeInstances every 100 ms)      ${fmt(koala.running)}\n` +
        `  running  bare   createDomainXml -> RUNNING (getDomainState)                  ${fmt(bare.running)}\n` +
        `  running  ratio Koala / bare                                                  ${ratio(koala.running, bare.running)}\n` +
        `  booted   Koala  RunInstances -> ${BANNER} (GetConsoleOutput every 100 ms) ${fmt(koala.booted)}\n` +
        `  booted   bare   createDomainXml -> ${BANNER} (log file every 100 ms)    ${fmt(bare.booted)}\n` +
        `  booted   ratio Koala / bare                                                  ${ratio(koala.booted, bare.booted)}\n` +
        `  (bare, before its clock: overlay + config-drive copy                         ${fmt(bare.disks)})\n` +
        `  (Koala cold first launch, image download included: running ${cold.toFixed(0)} ms, booted ${coldBooted.toFixed(0)} ms)\n`,
    );
  } finally {
    await b?.close();
  }
});
