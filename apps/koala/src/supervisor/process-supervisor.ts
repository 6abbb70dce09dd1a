import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, fchmodSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { koalaPaths, type KoalaConfig } from '@koala/config';
import type { ComponentSpec } from './components.js';

export type ProcessState = { running: true; pid: number } | { running: false; stalePid?: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A process counts as alive until it has exited; a zombie (exited, not yet reaped) has. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) STATE ..."; comm may contain spaces, so split after ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Starts and stops the daemons of the all-in-one cloud, with pid files and logs under $KOALA_HOME. */
export class ProcessSupervisor {
  private readonly paths;

  constructor(config: KoalaConfig) {
    this.paths = koalaPaths(config.home);
    mkdirSync(this.paths.run, { recursive: true });
    // Daemon logs carry request ids, account ids and error details: not for every local user.
    mkdirSync(this.paths.logs, { recursive: true, mode: 0o750 });
    chmodSync(this.paths.logs, 0o750);
  }

  logFile(c: ComponentSpec) {
    return this.paths.logFile(c.short);
  }

  state(c: ComponentSpec): ProcessState {
    const file = this.paths.pidFile(c.short);
    if (!existsSync(file)) return { running: false };
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return { running: false };
    // A pid file may outlive its process (crash, reboot): only a live process whose command
    // line is our entry point counts, so a recycled pid is never mistaken for a component.
    if (alive(pid) && this.commandLine(pid).includes(c.entry)) return { running: true, pid };
    return { running: false, stalePid: pid };
  }

  private commandLine(pid: number): string {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      return '';
    }
  }

  /** Starts a component in the background unless it already runs. Returns its pid. */
  start(c: ComponentSpec, env: NodeJS.ProcessEnv): { pid: number; started: boolean } {
    const s = this.state(c);
    if (s.running) return { pid: s.pid, started: false };
    const out = openSync(this.logFile(c), 'a', 0o640);
    fchmodSync(out, 0o640); // an older, world-readable log keeps its mode otherwise
    const child = spawn(process.execPath, ['--enable-source-maps', c.entry], { detached: true, stdio: ['ignore', out, out], env: metricsEnv(c, env) });
    closeSync(out);
    child.unref();
    writeFileSync(this.paths.pidFile(c.short), `${child.pid}\n`);
    return { pid: child.pid!, started: true };
  }

  /** SIGTERM, then SIGKILL after `graceMs`; removes the pid file. */
  async stop(c: ComponentSpec, graceMs = 10_000): Promise<'stopped' | 'killed' | 'not-running'> {
    const s = this.state(c);
    rmSync(this.paths.pidFile(c.short), { force: true });
    if (!s.running) return 'not-running';
    process.kill(s.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      if (!alive(s.pid)) return 'stopped';
      await sleep(100);
    }
    process.kill(s.pid, 'SIGKILL');
    while (alive(s.pid)) await sleep(50);
    return 'killed';
  }

  /** Whether a started component died right away (bad config, port taken...). */
  exitedEarly(c: ComponentSpec, pid: number): boolean {
    return !alive(pid) || !this.commandLine(pid).includes(c.entry);
  }
}

/** All-in-one: KOALA_METRICS_PORT=P gives the CC P, the SC P+1 and the NC P+2 (one port each). */
export function metricsEnv(c: Pick<ComponentSpec, 'short'>, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const base = Number(env.KOALA_METRICS_PORT ?? 0);
  const offset = { cc: 0, sc: 1, nc: 2 }[c.short as 'cc' | 'sc' | 'nc'];
  if (!Number.isInteger(base) || base <= 0 || base > 65533 || offset === undefined) return env;
  return { ...env, KOALA_METRICS_PORT: String(base + offset) };
}
