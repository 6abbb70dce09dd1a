import type { INestApplication, INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { hostname } from 'node:os';
import type { ComponentKind } from '@koala/contracts';
import { ConfigError, loadConfig, type KoalaConfig } from '@koala/config';
import { createLogger, NestPinoLogger, type Logger } from '@koala/logging';
import { NatsBus, redactNatsUrl } from '@koala/messaging';
import { RuntimeModule } from './runtime.module.js';
import type { ComponentIdentity } from './tokens.js';

export interface DaemonContext {
  config: KoalaConfig;
  logger: Logger;
  bus: NatsBus;
  identity: ComponentIdentity;
  runtime: ReturnType<typeof RuntimeModule.forRoot>;
}

/** Oldest Node.js major Koala runs on (24 LTS; 20 reached end of life in April 2026). */
export const MIN_NODE_MAJOR = 24;

/** Exits with a clear message on a Node.js older than MIN_NODE_MAJOR (every start-up path calls it). */
export function requireSupportedNode(version: string = process.versions.node): void {
  const major = Number(version.split('.')[0]);
  if (major >= MIN_NODE_MAJOR) return;
  process.stderr.write(`Koala needs Node.js >= ${MIN_NODE_MAJOR}; this is ${version}. The set-up (deploy/scripts/prepare.sh) installs Node ${MIN_NODE_MAJOR} in /opt/koala and bin/koala uses it.\n`);
  process.exit(78); // EX_CONFIG
}

/** Checks the runtime, then loads config or exits with a message naming the bad variable. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): KoalaConfig {
  requireSupportedNode();
  try {
    return loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw e;
  }
}

/** Shared start-up: config, logger, NATS (retrying until it answers), identity. */
export async function prepareDaemon(kind: ComponentKind, opts: { zoned: boolean; config?: KoalaConfig; answersStatus?: boolean }): Promise<DaemonContext> {
  const config = opts.config ?? loadConfigOrExit();
  const logger = createLogger(kind, config.logLevel);
  const zone = opts.zoned ? config.zone : undefined;
  const id = kind === 'node-controller' ? `${kind}@${config.nodeName}` : `${kind}@${hostname()}${zone ? `/${zone}` : ''}`;
  const identity: ComponentIdentity = { kind, id, zone, startedAt: new Date(), ...(opts.answersStatus === false ? { answersStatus: false } : {}) };
  logger.info({ nats: redactNatsUrl(config.natsUrl) }, 'connecting to NATS');
  const bus = await NatsBus.connect({ url: config.natsUrl, caFile: config.natsCaFile, name: id, logger });
  return { config, logger, bus, identity, runtime: RuntimeModule.forRoot({ config, logger, bus, identity }) };
}

/** Stops the process cleanly on SIGTERM/SIGINT and logs crashes as JSON before exiting. */
export function installProcessHandlers(app: INestApplication | INestApplicationContext, logger: Logger) {
  const stop = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => process.exit(1), 10_000);
    timer.unref();
    const t0 = Date.now();
    await app.close().catch((err) => logger.error({ err }, 'error during shutdown'));
    logger.info({ ms: Date.now() - t0 }, 'stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
}

/** Builds and starts a daemon without an HTTP listener (CC, NC, SC); tests use it in-process. */
export async function startDaemon(kind: ComponentKind, moduleFactory: (ctx: DaemonContext) => unknown, opts: { zoned: boolean; config?: KoalaConfig }) {
  const ctx = await prepareDaemon(kind, opts);
  const app = await NestFactory.createApplicationContext(moduleFactory(ctx) as never, { logger: new NestPinoLogger(ctx.logger) });
  await app.init();
  ctx.logger.info({ id: ctx.identity.id, zone: ctx.identity.zone }, 'started');
  return { app, ctx };
}

/** Runs a daemon as its process's main job: signals stop it cleanly. */
export async function runDaemon(kind: ComponentKind, moduleFactory: (ctx: DaemonContext) => unknown, opts: { zoned: boolean }) {
  const { app, ctx } = await startDaemon(kind, moduleFactory, opts);
  installProcessHandlers(app, ctx.logger);
  return app;
}
