#!/usr/bin/env node
/**
 * `koala`: the operator CLI (what euca_conf/euctl were to Eucalyptus operators).
 * Each command is a function (config, args) -> exit code, registered below.
 */
import { loadConfigOrExit } from '@koala/runtime';
import type { KoalaConfig } from '@koala/config';
import { accessKey, account, bootstrap, credentials, quota } from './commands/accounts.js';
import { bus } from './commands/bus.js';
import { down } from './commands/down.js';
import { migrate } from './commands/migrate.js';
import { health, status } from './commands/status.js';
import { image } from './commands/images.js';
import { ssh } from './commands/ssh.js';
import { up } from './commands/up.js';

type Command = { run: (config: KoalaConfig, args: string[]) => number | Promise<number>; help: string };

export const COMMANDS: Record<string, Command> = {
  up: { run: up, help: 'start the all-in-one cloud in the background and wait until healthy [--timeout=SECONDS]' },
  down: { run: down, help: 'stop every component started by `up`' },
  status: { run: status, help: 'each component and node: up/down, version, capacity [--json]' },
  health: { run: health, help: 'exit 0 when every component and at least one node are up' },
  migrate: { run: migrate, help: 'apply database migrations [up|down|status]' },
  bootstrap: { run: bootstrap, help: 'master key, admin account and key, $KOALA_HOME/admin.env (idempotent)' },
  account: { run: account, help: 'create NAME | list' },
  credentials: { run: credentials, help: 'NAME: print export lines for an account (creates a key if none)' },
  'access-key': { run: accessKey, help: 'create|list ACCOUNT | deactivate|activate|delete ACCOUNT KEYID' },
  bus: { run: bus, help: "add-node ZONE NODE (an NC user for another host) | users: the cloud's NATS users" },
  quota: { run: quota, help: 'list ACCOUNT | set ACCOUNT NAME VALUE|default: per-account quotas (instances, vcpus, volumes, volume-gib, ...)' },
  ssh: { run: ssh, help: "INSTANCE-ID [-i KEYFILE] [-l USER] [-- CMD...]: ssh to an instance from its node's network namespace" },
  image: { run: image, help: 'import --name NAME [--public] DISK | import --name NAME --kernel F --ramdisk F --root F | list' },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(22)} ${c.help}`);
  return `usage: koala <command> [args]\n\ncommands:\n${lines.join('\n')}\n\nConfiguration comes from KOALA_* environment variables (see README).\n`;
}

const [name, ...args] = process.argv.slice(2);
if (!name || name === 'help' || name === '--help' || name === '-h') {
  process.stdout.write(usage());
  process.exit(name ? 0 : 64);
}
const command = COMMANDS[name];
if (!command) {
  process.stderr.write(`koala: unknown command "${name}"\n\n${usage()}`);
  process.exit(64);
}
const code = await command.run(loadConfigOrExit(), args);
process.exit(code);
