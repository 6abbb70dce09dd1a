import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { Libvirt } from '@koala/libvirt';
import { freePort } from '../support/nats-server.js';
import { alive } from '../../apps/koala/src/supervisor/process-supervisor.js';

const run = promisify(execFile);
const KOALA = join(process.cwd(), 'bin', 'koala');


/** The operator's path: `koala up` -> `koala status` -> `koala up` again -> `koala down`. Needs `npm run build`. */
describe('koala up / status / down (the all-in-one cloud as processes)', () => {
  const home = mkdtempSync(join(tmpdir(), 'koala-cli-'));
  const db = `koala_test_cli_${process.pid}`;
  let env: NodeJS.ProcessEnv;
  const pids: number[] = [];

  beforeAll(async () => {
    if (!existsSync(join(process.cwd(), 'dist', 'apps', 'koala', 'src', 'main.js'))) throw new Error('run `npm run build` first (deploy/test.sh does)');
    const port = await freePort();
    env = {
      ...process.env,
      KOALA_HOME: home,
      KOALA_DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${db}`,
      KOALA_API_PORT: String(port),
      KOALA_NATS_PORT: String(await freePort()), // the cloud's own nats-server, users per component
      KOALA_ZONE: `cli-${process.pid}`,
      KOALA_NODE_NAME: `cli-node-${process.pid}`,
      KOALA_HEARTBEAT_MS: '500',
      KOALA_NC_INSTANCES_POOL: `koala-test-cli-inst-${process.pid}`,
      KOALA_IMAGE_CACHE_POOL: `koala-test-cli-img-${process.pid}`,
      KOALA_VOLUMES_POOL: `koala-test-cli-vol-${process.pid}`,
      KOALA_SNAPSHOTS_POOL: `koala-test-cli-snap-${process.pid}`,
      NODE_OPTIONS: '',
    };
  });

  afterAll(async () => {
    await run(KOALA, ['down'], { env }).catch(() => undefined);
    const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    await c.end();
    rmSync(home, { recursive: true, force: true });
    const lv = await Libvirt.connect({ uri: 'qemu:///system' });
    for (const p of await lv.listAllStoragePools()) {
      if (!p.name.startsWith('koala-test-cli-') || !p.name.endsWith(`-${process.pid}`)) continue;
      for (const v of await lv.listAllVolumes(p).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
      await lv.destroyStoragePool(p).catch(() => undefined);
      await lv.undefineStoragePool(p).catch(() => undefined);
    }
    await lv.close();
  });

  it('starts every component, reports them up with the node’s capacity, and is idempotent', async () => {
    const up = await run(KOALA, ['up', '--timeout=90'], { env, timeout: 120_000 });
    expect(up.stdout).toMatch(/healthy/);
    expect(up.stdout).toContain(`EC2 endpoint http://127.0.0.1:${env.KOALA_API_PORT}/`); // KOALA_PUBLIC_ENDPOINT follows the port
    for (const f of readdirSync(join(home, 'run'))) pids.push(Number(readFileSync(join(home, 'run', f), 'utf8')));
    expect(readdirSync(join(home, 'run')).sort()).toEqual(['cc.pid', 'clc.pid', 'nats.pid', 'nc.pid', 'sc.pid']);
    expect(readdirSync(join(home, 'log')).sort()).toEqual(['cc.log', 'clc.log', 'nats.log', 'nc.log', 'sc.log']);
    // Each component runs as its own NATS user, and nothing gets on the bus without one.
    const ncEnv = readFileSync(`/proc/${Number(readFileSync(join(home, 'run', 'nc.pid'), 'utf8'))}/environ`, 'utf8').split('\0');
    expect(ncEnv).toContainEqual(expect.stringMatching(new RegExp(`^KOALA_NATS_URL=nats://nc-${env.KOALA_NODE_NAME}:[^@]+@127\\.0\\.0\\.1:${env.KOALA_NATS_PORT}$`)));
    expect(statSync(join(home, 'nats', 'nats.conf')).mode & 0o777).toBe(0o600);

    const { stdout } = await run(KOALA, ['status', '--json'], { env });
    const status = JSON.parse(stdout);
    expect(status.healthy).toBe(true);
    expect(status.components.map((c: { kind: string; up: boolean }) => [c.kind, c.up])).toEqual([
      ['cloud-controller', true],
      ['cluster-controller', true],
      ['node-controller', true],
      ['storage-controller', true],
    ]);
    expect(status.nodes[0]).toMatchObject({ node: env.KOALA_NODE_NAME, state: 'up' });
    expect(status.nodes[0].total.cores).toBeGreaterThan(0);
    expect(status.nodes[0].domainCount).toBe(0);

    const again = await run(KOALA, ['up'], { env, timeout: 60_000 });
    expect(again.stdout).toMatch(/already running/);
    const pidsAgain = readdirSync(join(home, 'run')).map((f) => Number(readFileSync(join(home, 'run', f), 'utf8')));
    expect(pidsAgain.sort()).toEqual([...pids].sort());
  }, 150_000);

  it('down stops them all and leaves no process behind', async () => {
    await run(KOALA, ['down'], { env, timeout: 60_000 });
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(readdirSync(join(home, 'run'))).toEqual([]);
    await expect(run(KOALA, ['status'], { env })).rejects.toMatchObject({ code: 3 });
  }, 60_000);

  it('refuses a bad configuration, naming the variable', async () => {
    await expect(run(KOALA, ['status'], { env: { ...env, KOALA_API_PORT: 'eighty' } })).rejects.toMatchObject({ code: 78, stderr: expect.stringMatching(/KOALA_API_PORT/) });
  });
});
