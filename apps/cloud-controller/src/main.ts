import 'reflect-metadata';
import cluster from 'node:cluster';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createLogger, NestPinoLogger } from '@koala/logging';
import { installProcessHandlers, loadConfigOrExit, prepareDaemon } from '@koala/runtime';
import { ADMIN_COMMANDS, runAdminCommand } from './admin/admin-commands.js';
import { cloudModule } from './app.module.js';
import { MasterKeyFile } from './auth/master-key.js';
import { roleFromEnv } from './cluster/clc-role.js';
import { runPrimary } from './cluster/primary.js';
import { apiHttpsOptions } from './ec2/tls.js';
import { loadInstanceTypes } from './instance-types/instance-types.service.js';
import { ensureDatabase } from './persistence/ensure-database.js';
import { createDataSource } from './database.js';
import { migrateDown, migrateUp, pendingMigrations } from './persistence/schema.js';

const command = process.argv[2] ?? 'serve';
const config = loadConfigOrExit();

if (command === 'migrate') {
  // `migrate [up|down|status]`: run by the set-up before the CLC starts.
  const direction = process.argv[3] ?? 'up';
  const log = createLogger('cloud-controller', config.logLevel);
  if (await ensureDatabase(config.databaseUrl)) log.info('created database');
  const ds = await createDataSource(config.databaseUrl).initialize();
  try {
    if (direction === 'up') log.info({ applied: await migrateUp(ds) }, 'migrations up to date');
    else if (direction === 'down') await migrateDown(ds);
    else if (direction === 'status') process.stdout.write(JSON.stringify({ pending: await pendingMigrations(ds) }) + '\n');
    else throw new Error(`unknown migrate direction "${direction}" (up, down, status)`);
  } finally {
    await ds.destroy();
  }
  process.exit(0);
} else if ((ADMIN_COMMANDS as readonly string[]).includes(command)) {
  // `bootstrap`, `account ...`, `credentials NAME`, `access-key ...` (spawned by the koala CLI).
  process.exit(await runAdminCommand(config, process.argv.slice(2)));
} else if (command === 'serve') {
  try {
    loadInstanceTypes(config.instanceTypesFile);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(78);
  }
  if (config.apiWorkers > 1 && cluster.isPrimary) {
    // The primary only forks and watches the workers; it checks once what every worker would
    // refuse (schema behind), and creates the master key before they race to.
    const logger = createLogger('cloud-controller', config.logLevel);
    await ensureDatabase(config.databaseUrl);
    const ds = await createDataSource(config.databaseUrl).initialize();
    const pending = await pendingMigrations(ds);
    await ds.destroy();
    if (pending.length) {
      logger.fatal({ pending }, 'database schema is behind: run `koala migrate` (the set-up does)');
      process.exit(1);
    }
    const master = new MasterKeyFile(config);
    if (master.ensure().created) logger.warn({ path: master.path }, 'created a new master key');
    await runPrimary(config.apiWorkers, logger);
  } else {
    const role = roleFromEnv();
    const ctx = await prepareDaemon('cloud-controller', { zoned: false, config, answersStatus: role.background });
    await ensureDatabase(config.databaseUrl);
    const ds = await createDataSource(config.databaseUrl).initialize();
    const pending = await pendingMigrations(ds);
    if (pending.length) {
      ctx.logger.fatal({ pending }, 'database schema is behind: run `koala migrate` (the set-up does)');
      process.exit(1);
    }
    const { key: masterKey, created } = new MasterKeyFile(config).ensure();
    if (created) ctx.logger.warn({ path: new MasterKeyFile(config).path }, 'created a new master key');
    const httpsOptions = apiHttpsOptions(config);
    const app = await NestFactory.create<NestExpressApplication>(cloudModule(ctx, ds, { masterKey, role }), { logger: new NestPinoLogger(ctx.logger), bodyParser: false, httpsOptions });
    installProcessHandlers(app, ctx.logger);
    await app.listen(config.apiPort, config.apiHost);
    ctx.logger.info({ port: config.apiPort, host: config.apiHost, tls: Boolean(httpsOptions), worker: role.worker, background: role.background }, 'EC2 endpoint listening');
  }
} else {
  process.stderr.write(`unknown command "${command}" (serve, migrate, ${ADMIN_COMMANDS.join(', ')})\n`);
  process.exit(64);
}
