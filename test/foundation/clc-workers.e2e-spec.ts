/**
 * The built CLC with KOALA_API_WORKERS=2: requests are served by both workers behind the one
 * port, the background jobs run in worker 0 only, image blobs are served by any worker, and
 * `koala down` (the CLC's pid file: the primary) leaves no process. Needs `npm run build`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { ComponentStatus, EVENTS_STREAM, Subjects } from '@koala/contracts';
import { koalaPaths } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { MasterKeyFile } from '../../apps/cloud-controller/src/auth/master-key.js';
import { BlobUrlSigner } from '../../apps/cloud-controller/src/images/blob-url-signer.js';
import { FsBlobStore } from '../../apps/cloud-controller/src/images/blob-store.js';
import { COMPONENTS } from '../../apps/koala/src/supervisor/components.js';
import { alive, ProcessSupervisor } from '../../apps/koala/src/supervisor/process-supervisor.js';
import { sigv4 } from '../api/signed-http.js';
import { CLC_MAIN, prepareBuiltClc, waitHealthy, type BuiltClcHome } from '../support/built-clc.js';
import { DEFAULT_NATS_URL } from '../support/cloud.js';
import { sleep } from '../support/wait.js';

const run = promisify(execFile);
const KOALA = join(process.cwd(), 'bin', 'koala');
// the built entry point, as the built `koala` CLI knows it
const CLC = { ...COMPONENTS.find((c) => c.kind === 'cloud-controller')!, entry: CLC_MAIN };

/** GET on a connection of its own (cluster hands each new connection to the next worker). */
function getFresh(url: string): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

let h: BuiltClcHome;
let env: NodeJS.ProcessEnv;
let primary: number;
let workers: number[] = [];

beforeAll(async () => {
  h = await prepareBuiltClc({ KOALA_API_WORKERS: '2' });
  env = { ...h.env, KOALA_API_WORKERS: '2' };
  const { pid } = new ProcessSupervisor(h.config).start(CLC, env); // as `koala up` starts it: pid file, log file
  primary = pid;
  try {
    await waitHealthy(h.endpoint, undefined, 60_000);
  } catch (e) {
    process.stderr.write(readFileSync(koalaPaths(h.home).logFile('clc'), 'utf8').slice(-4000));
    throw e;
  }
}, 120_000);

afterAll(async () => {
  if (primary && alive(primary)) await run(KOALA, ['down'], { env }).catch(() => undefined);
  for (const p of [primary, ...workers]) if (p && alive(p)) process.kill(p, 'SIGKILL');
  await h?.remove();
});

it('runs two workers under the primary whose pid `koala up` records; both serve the one port', async () => {
  expect(Number(readFileSync(koalaPaths(h.home).pidFile('clc'), 'utf8'))).toBe(primary);
  for (const deadline = Date.now() + 30_000; childrenOf(primary).length < 2 && Date.now() < deadline;) await sleep(100);
  workers = childrenOf(primary);
  expect(workers).toHaveLength(2);
  for (const w of workers) expect(readFileSync(`/proc/${w}/cmdline`, 'utf8')).toContain(CLC_MAIN);

  // Workers accept connections themselves (the kernel picks one), and the second may still be
  // starting when the first answers: ask in rounds of fresh connections until both have answered.
  type Health = { status: string; pid: number; worker: number; background: boolean };
  const bodies: Health[] = [];
  for (const deadline = Date.now() + 45_000; new Set(bodies.map((b) => b.pid)).size < 2 && Date.now() < deadline; await sleep(200)) {
    const round = await Promise.all(Array.from({ length: 24 }, () => getFresh(new URL('/healthz', h.endpoint).toString())));
    bodies.push(...round.map((r) => JSON.parse(r.body.toString()) as Health));
  }
  expect(bodies.every((b) => b.status === 'ok')).toBe(true);
  expect(new Set(bodies.map((b) => b.pid))).toEqual(new Set(workers));
  // worker 0 (and only it) runs the background jobs
  expect(new Set(bodies.filter((b) => b.background).map((b) => b.worker))).toEqual(new Set([0]));
  expect(new Set(bodies.map((b) => b.worker))).toEqual(new Set([0, 1]));

  const servedBy = new Set<unknown>();
  for (let round = 0; round < 20 && servedBy.size < 2; round++) {
    const ec2 = await Promise.all(Array.from({ length: 24 }, () => sigv4(h.endpoint, h.admin, { Action: 'DescribeRegions', Version: '2016-11-15' })));
    expect(ec2.map((r) => r.status)).toEqual(ec2.map(() => 200));
    for (const r of ec2) servedBy.add(r.headers['x-koala-worker']);
  }
  expect(servedBy).toEqual(new Set(['0', '1']));
}, 120_000);

it('runs the background jobs once: one status answer (worker 0), one puller on each durable consumer', async () => {
  const bus = await NatsBus.connect({ url: DEFAULT_NATS_URL, name: 'test-clc-workers' });
  try {
    const answers = (await bus.gather(Subjects.status, ComponentStatus, {}, { timeoutMs: 1500 })).filter((a) => workers.includes(a.pid ?? -1) || a.pid === primary);
    expect(answers).toHaveLength(1);
    // the kernel picks the worker of each fresh connection: ask until worker 0 answers
    let worker0: { pid: number; worker: number } | undefined;
    for (let round = 0; round < 50 && !worker0; round++) {
      const health = await Promise.all(Array.from({ length: 12 }, () => getFresh(new URL('/healthz', h.endpoint).toString())));
      worker0 = health.map((r) => JSON.parse(r.body.toString()) as { pid: number; worker: number }).find((b) => b.worker === 0);
    }
    if (!worker0) throw new Error('worker 0 never answered /healthz');
    expect(answers[0]!.pid).toBe(worker0.pid);

    // JetStream: each durable consumer of this CLC has one client pulling (worker 0's), not two
    const jsm = await jetstreamManager(bus.connection);
    for (const durable of [h.config.eventsConsumer, h.config.volumeEventsConsumer]) {
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) {
        seen.push((await jsm.consumers.info(EVENTS_STREAM, durable)).num_waiting);
        await sleep(200);
      }
      expect(Math.max(...seen)).toBe(1);
    }
  } finally {
    await bus.close();
  }
}, 30_000);

it('serves an image blob from any worker (the store is on disk)', async () => {
  const bytes = randomBytes(200_000);
  const { sha256 } = await new FsBlobStore(koalaPaths(h.home).imageStore).put(Readable.from([bytes]));
  const url = new BlobUrlSigner(new MasterKeyFile(h.config).read()!).url(h.endpoint, sha256, Math.floor(Date.now() / 1000) + 300);
  const got = await Promise.all(Array.from({ length: 12 }, () => getFresh(url)));
  for (const r of got) {
    expect(r.status).toBe(200);
    expect(r.body.equals(bytes)).toBe(true);
  }
}, 30_000);

it('restarts a worker that dies, with the same index', async () => {
  const [, second] = workers;
  process.kill(second!, 'SIGKILL');
  let now: number[] = [];
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(200)) {
    now = childrenOf(primary);
    if (now.length === 2 && !now.includes(second!)) break;
  }
  expect(now).toHaveLength(2);
  expect(now).not.toContain(second);
  workers = now;
  await waitHealthy(h.endpoint, undefined, 30_000);
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(200)) {
    const bodies = await Promise.all(
      Array.from({ length: 8 }, () => getFresh(new URL('/healthz', h.endpoint).toString()).then((r) => JSON.parse(r.body.toString()) as { worker: number; pid: number; status: string })),
    );
    if (new Set(bodies.filter((b) => b.status === 'ok').map((b) => b.worker)).size === 2) return;
  }
  throw new Error('the restarted worker never served');
}, 90_000);

it('`koala down` stops the primary and every worker', async () => {
  const all = [primary, ...workers];
  const { stdout } = await run(KOALA, ['down'], { env, timeout: 60_000 });
  expect(stdout).toMatch(/clc\s+cloud-controller\s+stopped/);
  for (const p of all) expect(alive(p)).toBe(false);
}, 60_000);
