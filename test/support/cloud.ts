/**
 * A real cloud controller in-process for end-to-end tests: fresh PostgreSQL database
 * (`koala_test_<random>`, created, migrated, dropped by close()), real NATS, the real Nest app
 * listening on a free loopback port, an admin account bootstrapped. No mocks.
 *
 * ```ts
 * const cloud = await startCloud();
 * const ec2 = cloud.ec2();                        // admin credentials
 * const alice = cloud.ec2(await cloud.createAccount('alice'));
 * await cloud.close();
 * ```
 * Zones: `startZone(zone)` runs a cluster controller and a node controller in-process; give each
 * test file its own zone name so parallel test files never see each other's components.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication, INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EC2Client } from '@aws-sdk/client-ec2';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { loadConfig, type KoalaConfig } from '@koala/config';
import { listNodes } from '@koala/contracts';
import { createLogger, NestPinoLogger, type LogLevel } from '@koala/logging';
import { NatsBus } from '@koala/messaging';
import { RuntimeModule } from '@koala/runtime';
import { bootstrapAdmin } from '../../apps/cloud-controller/src/admin/admin-commands.js';
import { AccountsService } from '../../apps/cloud-controller/src/accounts/accounts.service.js';
import { cloudModule } from '../../apps/cloud-controller/src/app.module.js';
import { MasterKeyFile } from '../../apps/cloud-controller/src/auth/master-key.js';
import { apiHttpsOptions } from '../../apps/cloud-controller/src/ec2/tls.js';
import { ensureDatabase } from '../../apps/cloud-controller/src/persistence/ensure-database.js';
import { createDataSource } from '../../apps/cloud-controller/src/database.js';
import { clusterModule } from '../../apps/cluster-controller/src/cluster.module.js';
import { nodeModule } from '../../apps/node-controller/src/node.module.js';
import { freePort } from './nats-server.js';

export const PG_ADMIN_URL = process.env.KOALA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_NATS_URL = process.env.KOALA_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const LOG_LEVEL = (process.env.KOALA_TEST_LOG_LEVEL ?? 'warn') as LogLevel;

export interface TestCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  accountId: string;
}

export interface StartCloudOptions {
  /** NATS URL (default 127.0.0.1:4222). */
  natsUrl?: string;
  /** Extra KOALA_* variables (e.g. KOALA_API_MAX_BODY_BYTES, KOALA_INSTANCE_TYPES_FILE). */
  env?: Record<string, string>;
}

export interface TestCloud {
  /** `http://127.0.0.1:<port>/` (`https://` with KOALA_API_TLS_* in `env`) */
  endpoint: string;
  region: string;
  config: KoalaConfig;
  /** $KOALA_HOME of this cloud (temporary; holds master.key and admin.env). */
  home: string;
  admin: TestCredentials;
  dataSource: DataSource;
  app: INestApplication;
  /** New account with one access key. */
  createAccount(name: string): Promise<TestCredentials>;
  /** An SDK v3 client for the given credentials (admin by default); no retries. */
  ec2(credentials?: TestCredentials): EC2Client;
  close(): Promise<void>;
}

function testConfig(vars: Record<string, string>): KoalaConfig {
  return loadConfig({ KOALA_LOG_LEVEL: LOG_LEVEL, KOALA_HEARTBEAT_MS: '500', ...vars });
}

async function dropDatabase(name: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

export async function startCloud(opts: StartCloudOptions = {}): Promise<TestCloud> {
  const dbName = `koala_test_${randomBytes(6).toString('hex')}`;
  const dbUrl = new URL(PG_ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  const home = mkdtempSync(join(tmpdir(), 'koala-cloud-'));
  const port = await freePort();
  // HTTPS when the test passes KOALA_API_TLS_CERT / KOALA_API_TLS_KEY
  const tls = Boolean(opts.env?.KOALA_API_TLS_CERT);
  const endpoint = `${tls ? 'https' : 'http'}://127.0.0.1:${port}/`;
  const config = testConfig({
    KOALA_HOME: home,
    KOALA_DATABASE_URL: dbUrl.toString(),
    KOALA_NATS_URL: opts.natsUrl ?? DEFAULT_NATS_URL,
    KOALA_API_HOST: '127.0.0.1',
    KOALA_API_PORT: String(port),
    KOALA_PUBLIC_ENDPOINT: endpoint,
    // Each test cloud consumes the shared JetStream events under its own durable name, or
    // clouds on one NATS server would split (steal) each other's events.
    KOALA_EVENTS_CONSUMER: `clc-${dbName.replace(/_/g, '-')}`,
    KOALA_VOLUME_EVENTS_CONSUMER: `clc-vol-${dbName.replace(/_/g, '-')}`,
    // Suites that hammer the API must not depend on timing: the rate limit is lifted unless a
    // test sets its own (test/api/quotas.e2e-spec.ts does).
    KOALA_API_RATE: '100000',
    KOALA_API_BURST: '1000000',
    ...opts.env,
  });
  await ensureDatabase(config.databaseUrl);
  let ds: DataSource | undefined;
  let bus: NatsBus | undefined;
  try {
    ds = await createDataSource(config.databaseUrl).initialize();
    const boot = await bootstrapAdmin(config, ds);
    const masterKey = new MasterKeyFile(config).read()!;
    const logger = createLogger('cloud-controller', config.logLevel);
    bus = await NatsBus.connect({ url: config.natsUrl, name: `test-clc-${dbName}`, logger });
    const identity = { kind: 'cloud-controller' as const, id: `cloud-controller@test/${dbName}`, startedAt: new Date() };
    const runtime = RuntimeModule.forRoot({ config, logger, bus, identity });
    const app = await NestFactory.create(cloudModule({ runtime }, ds, { masterKey }), {
      logger: new NestPinoLogger(logger),
      bodyParser: false,
      abortOnError: false,
      httpsOptions: apiHttpsOptions(config),
    });
    await app.listen(port, '127.0.0.1');
    const dataSource = ds;
    const accounts = app.get(AccountsService);
    const clients: EC2Client[] = [];
    const admin = { accessKeyId: boot.accessKeyId, secretAccessKey: boot.secretAccessKey, accountId: boot.accountId };
    return {
      endpoint,
      region: config.region,
      config,
      home,
      admin,
      dataSource,
      app,
      async createAccount(name) {
        const a = await accounts.createAccount(name);
        const c = await accounts.createAccessKey(name);
        return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, accountId: a.id };
      },
      ec2(credentials = admin) {
        const client = new EC2Client({
          endpoint,
          region: config.region,
          credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
          maxAttempts: 1,
        });
        clients.push(client);
        return client;
      },
      async close() {
        for (const c of clients) c.destroy();
        try {
          await app.close(); // closes the bus (runtime) and the DataSource (persistence)
        } finally {
          // Whatever a shutdown hook did, no consumer of this cloud may outlive it: a leftover
          // one would keep pulling the shared event stream against a dropped database.
          await bus!.close().catch(() => undefined);
          if (ds!.isInitialized) await ds!.destroy().catch(() => undefined);
        }
        await dropDatabase(dbName);
        rmSync(home, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await bus?.close().catch(() => undefined);
    if (ds?.isInitialized) await ds.destroy();
    await dropDatabase(dbName).catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
    throw e;
  }
}

export interface TestZone {
  zone: string;
  nodeName: string;
  close(): Promise<void>;
}

/** A unique zone name for a test file (`t-<prefix>-<random>`). */
export function uniqueZone(prefix: string): string {
  return `t-${prefix}-${randomBytes(3).toString('hex')}`;
}

async function daemon(
  kind: 'cluster-controller' | 'node-controller',
  config: KoalaConfig,
  factory: (ctx: { runtime: ReturnType<typeof RuntimeModule.forRoot>; config: KoalaConfig }) => unknown,
): Promise<INestApplicationContext> {
  const logger = createLogger(kind, config.logLevel);
  const id = `${kind}@test/${config.zone}${kind === 'node-controller' ? `/${config.nodeName}` : ''}`;
  const bus = await NatsBus.connect({ url: config.natsUrl, name: id, logger });
  const runtime = RuntimeModule.forRoot({ config, logger, bus, identity: { kind, id, zone: config.zone, startedAt: new Date() } });
  const app = await NestFactory.createApplicationContext(factory({ runtime, config }) as never, { logger: new NestPinoLogger(logger) });
  await app.init();
  return app;
}

/**
 * A real cluster controller and node controller (host resources read from the OS) for `zone`,
 * in-process; resolves when the CC lists the node as up.
 */
export async function startZone(zone: string, opts: { natsUrl?: string } = {}): Promise<TestZone> {
  const home = mkdtempSync(join(tmpdir(), 'koala-zone-'));
  const nodeName = `${zone}-n1`;
  const config = testConfig({ KOALA_HOME: home, KOALA_NATS_URL: opts.natsUrl ?? DEFAULT_NATS_URL, KOALA_ZONE: zone, KOALA_NODE_NAME: nodeName, KOALA_LIBVIRT_URI: 'test:///default' });
  const cc = await daemon('cluster-controller', config, clusterModule);
  const nc = await daemon('node-controller', config, nodeModule as never);
  const probe = await NatsBus.connect({ url: config.natsUrl, name: `test-probe-${zone}` });
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await probe.request(listNodes(zone), {}, { timeoutMs: 1000 }).catch(() => undefined);
      if (r?.nodes.some((n) => n.node === nodeName && n.state === 'up')) break;
      if (Date.now() > deadline) throw new Error(`zone ${zone}: node ${nodeName} never came up`);
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    await probe.close();
  }
  return {
    zone,
    nodeName,
    async close() {
      await nc.close();
      await cc.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
