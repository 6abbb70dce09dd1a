/**
 * Operator commands of the CLC entry point (`node dist/apps/cloud-controller/src/main.js <cmd>`),
 * spawned by `koala bootstrap|account|credentials|access-key`. They need PostgreSQL only (no NATS).
 */
import { koalaPaths, type KoalaConfig } from '@koala/config';
import type { DataSource } from 'typeorm';
import { AccountsError, createAccountsService, ADMIN_ACCOUNT, type Credentials } from '../accounts/accounts.service.js';
import { MasterKeyFile } from '../auth/master-key.js';
import { ensureDatabase } from '../persistence/ensure-database.js';
import { createDataSource } from '../database.js';
import { migrateUp, pendingMigrations } from '../persistence/schema.js';
import { exportLines, readEnvFile, writeEnvFile } from './admin-env.js';
import { IMAGE_USAGE_TEXT, ImageUsageError, runImageCommand } from './image-commands.js';
import { ImageImportError } from '../images/images.service.js';
import { isEc2Error } from '@koala/ec2-query';
import { createQuotaService, QuotaUsageError } from '../quotas/quota.service.js';

export const ADMIN_COMMANDS = ['bootstrap', 'account', 'credentials', 'access-key', 'image', 'quota', 'instance-address'] as const;

export interface AdminIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** stderr is a terminal (progress bars redraw in place). */
  tty?: boolean;
}
const stdio: AdminIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), tty: process.stderr.isTTY };

export interface BootstrapResult extends Credentials {
  envFile: string;
  masterKeyCreated: boolean;
  keyReused: boolean;
}

/**
 * Idempotent set-up: master key, schema, the `admin` account, one working access key, and
 * `$KOALA_HOME/admin.env` (0600). A re-run keeps the key in admin.env when it still works.
 */
export async function bootstrapAdmin(config: KoalaConfig, ds: DataSource): Promise<BootstrapResult> {
  const { key: masterKey, created: masterKeyCreated } = new MasterKeyFile(config).ensure();
  await migrateUp(ds);
  const accounts = createAccountsService(ds, masterKey);
  let admin = await accounts.findAccount(ADMIN_ACCOUNT);
  if (!admin) {
    try {
      admin = await accounts.createAccount(ADMIN_ACCOUNT, { isAdmin: true });
    } catch (e) {
      if (!(e instanceof AccountsError && e.code === 'Duplicate')) throw e;
      admin = await accounts.getAccount(ADMIN_ACCOUNT);
    }
  }
  const envFile = koalaPaths(config.home).adminEnv;
  const previous = readEnvFile(envFile);
  let creds: Credentials | undefined;
  let keyReused = false;
  if (previous) {
    const k = await accounts.resolveAccessKey(previous.accessKeyId);
    if (k && k.active && k.account.id === admin.id && k.secret === previous.secretAccessKey) {
      creds = { ...previous, accountId: admin.id, accountName: admin.name };
      keyReused = true;
    }
  }
  if (!creds) {
    const c = await accounts.credentials(ADMIN_ACCOUNT);
    keyReused = !c.created;
    creds = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, accountId: c.accountId, accountName: c.accountName };
  }
  writeEnvFile(envFile, { ...creds, region: config.region, endpoint: config.publicEndpoint });
  return { ...creds, envFile, masterKeyCreated, keyReused };
}

const USAGE = `usage:
  bootstrap
  account create NAME | account list
  credentials NAME
  access-key create|list ACCOUNT
  access-key deactivate|activate|delete ACCOUNT KEYID
  quota list ACCOUNT | quota set ACCOUNT NAME VALUE|default
  instance-address INSTANCE-ID
${IMAGE_USAGE_TEXT.replace(/^usage:\n/, '')}`;

class UsageError extends Error {}

function pad(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(w[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

type Accounts = ReturnType<typeof createAccountsService>;
/** What every command but `bootstrap` works with. */
interface CommandContext {
  config: KoalaConfig;
  ds: DataSource;
  masterKey: string;
  accounts: Accounts;
  io: AdminIo;
  /** Credentials as `export` lines for a shell. */
  env(c: Credentials): string;
}

/** Runs one admin command; returns the exit code. */
export async function runAdminCommand(config: KoalaConfig, argv: string[], io: AdminIo = stdio): Promise<number> {
  const [command, ...args] = argv;
  await ensureDatabase(config.databaseUrl);
  const ds = await createDataSource(config.databaseUrl).initialize();
  try {
    if (command === 'bootstrap') return await bootstrapCommand(config, ds, io);
    const ctx = await commandContext(config, ds, io);
    if (typeof ctx === 'number') return ctx;
    switch (command) {
      case 'account':
        return await accountCommand(ctx, args);
      case 'credentials':
        if (args.length < 1) throw new UsageError();
        io.out(ctx.env(await ctx.accounts.credentials(args[0]!)));
        return 0;
      case 'access-key':
        return await accessKeyCommand(ctx, args);
      case 'image':
        return await runImageCommand(config, ds, ctx.masterKey, args, io);
      case 'quota':
        return await quotaCommand(ctx, args);
      case 'instance-address':
        return await instanceAddressCommand(ctx, args);
      default:
        throw new UsageError();
    }
  } catch (e) {
    return reportFailure(command, e, io);
  } finally {
    await ds.destroy();
  }
}

async function bootstrapCommand(config: KoalaConfig, ds: DataSource, io: AdminIo): Promise<number> {
  const r = await bootstrapAdmin(config, ds);
  if (r.masterKeyCreated) io.out(`created master key ${new MasterKeyFile(config).path}\n`);
  io.out(`admin account ${r.accountId}, access key ${r.accessKeyId}${r.keyReused ? ' (kept)' : ' (new)'}\n`);
  io.out(`credentials written to ${r.envFile}: . ${r.envFile} && aws ec2 describe-regions\n`);
  return 0;
}

/** The schema must be current and the master key present; else the exit code (1) after saying why. */
async function commandContext(config: KoalaConfig, ds: DataSource, io: AdminIo): Promise<CommandContext | number> {
  const pending = await pendingMigrations(ds);
  if (pending.length) {
    io.err(`the database schema is behind (${pending.join(', ')}): run \`koala migrate\` or \`koala bootstrap\`\n`);
    return 1;
  }
  const masterKey = new MasterKeyFile(config).read();
  if (!masterKey) {
    io.err(`no master key (KOALA_MASTER_KEY or ${new MasterKeyFile(config).path}): run \`koala bootstrap\` first\n`);
    return 1;
  }
  const env = (c: Credentials) => exportLines({ ...c, region: config.region, endpoint: config.publicEndpoint });
  return { config, ds, masterKey, accounts: createAccountsService(ds, masterKey), io, env };
}

async function accountCommand({ accounts, io }: CommandContext, args: string[]): Promise<number> {
  if (args[0] === 'create') {
    if (args.length < 2) throw new UsageError();
    const a = await accounts.createAccount(args[1]!);
    io.out(`${a.id}  ${a.name}\n`);
    return 0;
  }
  if (args[0] === 'list') {
    const rows = [['ACCOUNT ID', 'NAME', 'ADMIN', 'CREATED']];
    for (const a of await accounts.listAccounts()) rows.push([a.id, a.name, a.isAdmin ? 'yes' : 'no', a.createdAt.toISOString()]);
    io.out(pad(rows));
    return 0;
  }
  throw new UsageError();
}

async function accessKeyCommand({ accounts, io, env }: CommandContext, args: string[]): Promise<number> {
  const [sub, account, keyId] = args;
  if (!account) throw new UsageError();
  if (sub === 'create') {
    io.out(env(await accounts.createAccessKey(account)));
    return 0;
  }
  if (sub === 'list') {
    const rows = [['ACCESS KEY ID', 'STATUS', 'CREATED']];
    for (const k of await accounts.listAccessKeys(account)) rows.push([k.accessKeyId, k.status, k.createdAt.toISOString()]);
    io.out(pad(rows));
    return 0;
  }
  if (!keyId) throw new UsageError();
  if (sub === 'deactivate' || sub === 'activate') {
    await accounts.setAccessKeyStatus(account, keyId, sub === 'activate' ? 'Active' : 'Inactive');
    io.out(`${keyId} ${sub === 'activate' ? 'Active' : 'Inactive'}\n`);
    return 0;
  }
  if (sub === 'delete') {
    await accounts.deleteAccessKey(account, keyId);
    io.out(`${keyId} deleted\n`);
    return 0;
  }
  throw new UsageError();
}

async function quotaCommand({ accounts, io, ds, config }: CommandContext, args: string[]): Promise<number> {
  const [sub, name, quota, value] = args;
  if (!name || !((sub === 'list' && args.length === 2) || (sub === 'set' && args.length === 4))) throw new UsageError();
  const account = await accounts.getAccount(name);
  const quotas = createQuotaService(ds, config);
  if (sub === 'set') {
    await quotas.set(account.id, quota!, value!, new Date());
    io.out(`${account.name} ${quota} ${value}\n`);
    return 0;
  }
  const rows = [['QUOTA', 'VALUE', 'SOURCE']];
  for (const q of await quotas.list(account.id)) rows.push([q.name, String(q.value), q.source]);
  io.out(pad(rows));
  if (account.isAdmin) io.out('(the admin account is not subject to quotas)\n');
  return 0;
}

/** `koala ssh`: where an instance is, as one tab-separated line (id state zone node private-ip). */
async function instanceAddressCommand({ ds, io }: CommandContext, args: string[]): Promise<number> {
  const id = args[0] ?? '';
  if (args.length !== 1 || !/^i-[0-9a-f]{8,17}$/.test(id)) throw new UsageError();
  const rows: Array<{ state: string; zone: string; node: string | null; ip: string | null }> = await ds.query(
    'SELECT i.state, i.zone, i.node, n.private_ip AS ip FROM instances i LEFT JOIN network_interfaces n ON n.instance_id = i.id WHERE i.id = $1',
    [id],
  );
  const r = rows[0];
  if (!r) {
    io.err(`instance ${id} does not exist\n`);
    return 1;
  }
  io.out(`${id}\t${r.state}\t${r.zone}\t${r.node ?? '-'}\t${r.ip ?? '-'}\n`);
  return 0;
}

/** A command's failure as its exit code and message; anything unexpected is thrown on. */
function reportFailure(command: string | undefined, e: unknown, io: AdminIo): number {
  if (e instanceof ImageUsageError) {
    io.err(`${e.message}\n${IMAGE_USAGE_TEXT}`);
    return 64;
  }
  if (e instanceof ImageImportError || (command === 'image' && isEc2Error(e))) {
    io.err(`image import failed: ${(e as Error).message}\n`);
    return 1;
  }
  if (e instanceof UsageError) {
    io.err(USAGE);
    return 64;
  }
  if (e instanceof AccountsError || e instanceof QuotaUsageError) {
    io.err(`${e.message}\n`);
    return 1;
  }
  throw e;
}
