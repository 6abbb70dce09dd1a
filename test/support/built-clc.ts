/**
 * The built CLC (`dist/apps/cloud-controller/src/main.js serve`) as a child process, for tests
 * and benchmarks that need the real process (workers, pid files, signals): a fresh database
 * (migrated and bootstrapped here), its own $KOALA_HOME, a free loopback port, the shared NATS
 * with durable consumer names of its own. Needs `npm run build`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { bootstrapAdmin } from '../../apps/cloud-controller/src/admin/admin-commands.js';
import { createAccountsService } from '../../apps/cloud-controller/src/accounts/accounts.service.js';
import { MasterKeyFile } from '../../apps/cloud-controller/src/auth/master-key.js';
import { ensureDatabase } from '../../apps/cloud-controller/src/persistence/ensure-database.js';
import { createDataSource } from '../../apps/cloud-controller/src/database.js';
import { DEFAULT_NATS_URL, PG_ADMIN_URL, type TestCredentials } from './cloud.js';
import { freePort } from './nats-server.js';

export const CLC_MAIN = join(process.cwd(), 'dist', 'apps', 'cloud-controller', 'src', 'main.js');

export interface BuiltClcHome {
  /** The environment a CLC of this home runs with (KOALA_* set; add KOALA_API_WORKERS etc.). */
  env: NodeJS.ProcessEnv;
  config: KoalaConfig;
  home: string;
  endpoint: string;
  admin: TestCredentials;
  /** New accounts, one access key each. */
  createAccounts(prefix: string, n: number): Promise<TestCredentials[]>;
  /** Drops the database and removes the home (stop the processes first). */
  remove(): Promise<void>;
}

/** A fresh, migrated, bootstrapped database and home for a built CLC. */
export async function prepareBuiltClc(extra: Record<string, string> = {}): Promise<BuiltClcHome> {
  if (!existsSync(CLC_MAIN)) throw new Error('run `npm run build` first');
  const tag = randomBytes(5).toString('hex');
  const dbName = `koala_test_built_${tag}`;
  const dbUrl = new URL(PG_ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  const home = mkdtempSync(join(tmpdir(), 'koala-built-clc-'));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}/`;
  const vars: Record<string, string> = {
    KOALA_HOME: home,
    KOALA_DATABASE_URL: dbUrl.toString(),
    KOALA_NATS_URL: DEFAULT_NATS_URL,
    KOALA_NATS_PORT: '0',
    KOALA_API_HOST: '127.0.0.1',
    KOALA_API_PORT: String(port),
    KOALA_PUBLIC_ENDPOINT: endpoint,
    KOALA_LOG_LEVEL: 'warn',
    // No node host: a test's `koala down` must never touch the machine's all-in-one (koala-node1).
    KOALA_AIO_NETNS: 'none',
    KOALA_EVENTS_CONSUMER: `clc-built-${tag}`,
    KOALA_VOLUME_EVENTS_CONSUMER: `clc-vol-built-${tag}`,
    ...extra,
  };
  const config = loadConfig(vars);
  await ensureDatabase(config.databaseUrl);
  const ds = await createDataSource(config.databaseUrl).initialize();
  try {
    const boot = await bootstrapAdmin(config, ds);
    const masterKey = new MasterKeyFile(config).read()!;
    const created: TestCredentials[] = [];
    const admin = { accessKeyId: boot.accessKeyId, secretAccessKey: boot.secretAccessKey, accountId: boot.accountId };
    return {
      env: { ...process.env, NODE_OPTIONS: '', ...vars },
      config,
      home,
      endpoint,
      admin,
      async createAccounts(prefix, n) {
        const ds2 = await createDataSource(config.databaseUrl).initialize();
        try {
          const acc = createAccountsService(ds2, masterKey);
          const out: TestCredentials[] = [];
          for (let i = 0; i < n; i++) {
            const a = await acc.createAccount(`${prefix}-${i}`);
            const c = await acc.createAccessKey(a.name);
            out.push({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, accountId: a.id });
          }
          created.push(...out);
          return out;
        } finally {
          await ds2.destroy();
        }
      },
      async remove() {
        const c = new pg.Client({ connectionString: PG_ADMIN_URL });
        await c.connect();
        try {
          await c.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
        } finally {
          await c.end();
        }
        rmSync(home, { recursive: true, force: true });
      },
    };
  } finally {
    await ds.destroy();
  }
}

/** Resolves when `GET /healthz` answers 200 (or throws after `ms`, or when the process exits). */
export async function waitHealthy(endpoint: string, child?: ChildProcess, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`CLC exited with ${child.exitCode}`);
    const ok = await fetch(new URL('/healthz', endpoint))
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`CLC at ${endpoint} not healthy after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts `main.js serve` with `env` (plus `extra`); resolves once healthy. */
export async function startBuiltClc(h: BuiltClcHome, extra: Record<string, string> = {}, nodeArgs: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, CLC_MAIN, 'serve'], { env: { ...h.env, ...extra }, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitHealthy(h.endpoint, child);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return child;
}

/** SIGTERM, SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopBuiltClc(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}
