/**
 * The all-in-one cloud's own nats-server (`KOALA_NATS_PORT` on 127.0.0.1): a user per component
 * with the permissions of the bus table (`natsPermissions`), passwords generated once and kept
 * under $KOALA_HOME/nats (0700; every file 0600). Each component gets its own URL, also written
 * to `<user>.env` for units on other hosts.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { busPrincipals, busUser, type BusPrincipal } from '@koala/contracts';
import { koalaPaths, type KoalaConfig } from '@koala/config';
import { natsServerConfig } from '@koala/messaging';
import { alive } from './process-supervisor.js';
import type { ComponentSpec } from './components.js';

const HOST = '127.0.0.1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface UserFile {
  users: { principal: BusPrincipal; password: string }[];
}

export const busEnabled = (config: KoalaConfig) => config.natsPort > 0;

export function busFiles(config: KoalaConfig) {
  const dir = koalaPaths(config.home).bus;
  return { dir, users: join(dir, 'users.json'), conf: join(dir, 'nats.conf'), store: join(dir, 'jetstream'), env: (user: string) => join(dir, `${user}.env`) };
}

/** The NATS user of a component of the all-in-one cloud. */
export function componentUser(config: KoalaConfig, c: Pick<ComponentSpec, 'short'>): string {
  const p: BusPrincipal = c.short === 'clc' ? { kind: 'clc' } : c.short === 'nc' ? { kind: 'nc', zone: config.zone, node: config.nodeName } : { kind: c.short, zone: config.zone };
  return busUser(p);
}

const writeSecret = (file: string, text: string) => {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600); // an existing file keeps its mode otherwise
};

const urlOf = (config: KoalaConfig, user: string, password: string) => `nats://${user}:${password}@${HOST}:${config.natsPort}`;

/**
 * Writes the users (keeping existing passwords), the server configuration and the env files;
 * `extraNodes` adds NC users (per node) for other hosts. Returns whether nats.conf changed.
 */
export function writeBusConfig(config: KoalaConfig, extraNodes: { zone: string; node: string }[] = []): boolean {
  const f = busFiles(config);
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  chmodSync(f.dir, 0o700);
  const known: UserFile = existsSync(f.users) ? JSON.parse(readFileSync(f.users, 'utf8')) : { users: [] };
  const byName = new Map(known.users.map((u) => [busUser(u.principal), u]));
  const nodes = [{ zone: config.zone, node: config.nodeName }, ...extraNodes];
  for (const n of known.users) if (n.principal.kind === 'nc') nodes.push({ zone: n.principal.zone, node: n.principal.node });
  const zones = new Map<string, Set<string>>();
  for (const n of nodes) zones.set(n.zone, (zones.get(n.zone) ?? new Set()).add(n.node));
  for (const u of known.users) if (u.principal.kind === 'cc' || u.principal.kind === 'sc') zones.set(u.principal.zone, zones.get(u.principal.zone) ?? new Set());
  const principals = busPrincipals([...zones].map(([zone, ns]) => ({ zone, nodes: [...ns] })));
  const users = principals.map((principal) => byName.get(busUser(principal)) ?? { principal, password: randomBytes(24).toString('base64url') });
  writeSecret(f.users, JSON.stringify({ users } satisfies UserFile, null, 2) + '\n');
  const text = natsServerConfig({ host: HOST, port: config.natsPort, storeDir: f.store, users });
  const changed = !existsSync(f.conf) || readFileSync(f.conf, 'utf8') !== text;
  if (changed) writeSecret(f.conf, text);
  for (const u of users) writeSecret(f.env(busUser(u.principal)), `KOALA_NATS_URL=${urlOf(config, busUser(u.principal), u.password)}\n`);
  return changed;
}

/** The URL a component (or the CLI) of this cloud connects with: its own user on the cloud's bus, else KOALA_NATS_URL. */
export function natsUrlFor(config: KoalaConfig, user: string): string {
  if (!busEnabled(config)) return config.natsUrl;
  const file = busFiles(config).env(user);
  if (!existsSync(file)) return config.natsUrl;
  const line = readFileSync(file, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('KOALA_NATS_URL='));
  return line ? line.slice('KOALA_NATS_URL='.length).trim() : config.natsUrl;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, HOST, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export class BusSupervisor {
  private readonly paths;
  constructor(private readonly config: KoalaConfig) {
    this.paths = koalaPaths(config.home);
    mkdirSync(this.paths.run, { recursive: true });
    mkdirSync(this.paths.logs, { recursive: true });
  }

  get logFile() {
    return this.paths.logFile('nats');
  }

  /** The pid of our nats-server: alive, and started with our configuration file. */
  running(): number | undefined {
    const file = this.paths.pidFile('nats');
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
    const cmd = (() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return '';
      }
    })();
    return cmd.includes('nats-server') && cmd.includes(busFiles(this.config).conf) ? pid : undefined;
  }

  /** Writes the configuration and starts nats-server, or makes a running one reload a changed configuration. */
  async start(timeoutMs = 10_000): Promise<{ pid: number; started: boolean }> {
    const changed = writeBusConfig(this.config);
    const pid = this.running();
    if (pid) {
      if (changed) process.kill(pid, 'SIGHUP');
      return { pid, started: false };
    }
    if (await portOpen(this.config.natsPort)) throw new Error(`port ${HOST}:${this.config.natsPort} (KOALA_NATS_PORT) is taken by another process`);
    const out = openSync(this.logFile, 'a');
    const child = spawn('nats-server', ['-c', busFiles(this.config).conf], { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    const spawned = await new Promise<boolean>((resolve) => {
      child.once('spawn', () => resolve(true));
      child.once('error', () => resolve(false));
    });
    if (!spawned) throw new Error('cannot run nats-server (is it installed?)');
    child.unref();
    writeFileSync(this.paths.pidFile('nats'), `${child.pid}\n`);
    const deadline = Date.now() + timeoutMs;
    while (!(await portOpen(this.config.natsPort))) {
      if (!alive(child.pid!) || Date.now() > deadline) throw new Error(`nats-server did not start; see ${this.logFile}`);
      await sleep(50);
    }
    return { pid: child.pid!, started: true };
  }

  async stop(graceMs = 10_000): Promise<'stopped' | 'killed' | 'not-running'> {
    const pid = this.running();
    rmSync(this.paths.pidFile('nats'), { force: true });
    if (!pid) return 'not-running';
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      if (!alive(pid)) return 'stopped';
      await sleep(50);
    }
    process.kill(pid, 'SIGKILL');
    while (alive(pid)) await sleep(50);
    return 'killed';
  }
}
