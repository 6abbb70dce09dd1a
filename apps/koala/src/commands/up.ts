import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { KoalaConfig } from '@koala/config';
import { BusSupervisor, busEnabled, componentUser, natsUrlFor } from '../supervisor/cloud-bus.js';
import { COMPONENTS } from '../supervisor/components.js';
import { allInOneNet, componentEnv, nodeHostUp, type NodeHostFacts } from '../supervisor/node-host.js';
import { ProcessSupervisor } from '../supervisor/process-supervisor.js';
import { Progress } from '../ui.js';
import { migrate } from './migrate.js';
import { gatherStatus } from './status.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * `koala up`: runs migrations, starts the cloud's nats-server (KOALA_NATS_PORT; 0: none), makes
 * the node host (network namespaces with the node's own libvirtd, see node-host.ts) unless
 * KOALA_AIO_NETNS=none, starts the four controllers as separate background processes (logs and
 * pid files under $KOALA_HOME), and waits until the health check passes. Idempotent: the bus, a
 * node host and components already running are left alone.
 */
export async function up(config: KoalaConfig, args: string[]): Promise<number> {
  const timeoutMs = Number(args.find((a) => a.startsWith('--timeout='))?.split('=')[1] ?? 120) * 1000;
  mkdirSync(config.home, { recursive: true });
  const progress = new Progress();
  const sup = new ProcessSupervisor(config);

  progress.step('database migrations');
  if (migrate(config, ['up']) !== 0) {
    progress.fail('(see the output above)');
    return 1;
  }
  progress.done();

  if (busEnabled(config)) {
    progress.step(`message bus (nats-server on 127.0.0.1:${config.natsPort})`);
    try {
      const { pid, started } = await new BusSupervisor(config).start();
      progress.done(started ? `started (pid ${pid})` : `already running (pid ${pid})`);
    } catch (e) {
      progress.fail((e as Error).message);
      return 1;
    }
  }

  const net = allInOneNet(config);
  let facts: NodeHostFacts | undefined;
  if (net) {
    progress.step(`node host ${net.netns} (libvirtd and guests in their own network namespaces)`);
    const r = nodeHostUp(config, net);
    if ('error' in r) {
      progress.fail(r.error);
      return 1;
    }
    facts = r.facts;
    progress.done(`segment ${net.segment}, public side ${net.pub} (router ${net.router})`);
  }

  for (const c of COMPONENTS) {
    progress.step(`${c.kind}`);
    // Each component connects as its own user (its permissions: docs/SECURITY.md, "The bus").
    const env = { ...process.env, KOALA_NATS_URL: natsUrlFor(config, componentUser(config, c)) };
    const { pid, started } = sup.start(c, componentEnv(c.kind, env, net, facts));
    await sleep(started ? 300 : 0);
    if (started && sup.exitedEarly(c, pid)) {
      progress.fail(`exited at start; last lines of ${sup.logFile(c)}:`);
      process.stdout.write((await tail(sup.logFile(c))) + '\n');
      return 1;
    }
    progress.done(started ? `started (pid ${pid})` : `already running (pid ${pid})`);
  }

  progress.step('waiting for the cloud to report healthy');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await gatherStatus(config);
    if (s.healthy) break;
    const missing = s.components.filter((c) => !c.up).map((c) => c.short);
    progress.update(`waiting for the cloud to report healthy (${missing.length ? `waiting for ${missing.join(', ')}` : 'waiting for a node'})`);
    for (const c of COMPONENTS) {
      const st = sup.state(c);
      if (!st.running) {
        progress.fail(`${c.kind} is not running; last lines of ${sup.logFile(c)}:`);
        process.stdout.write((await tail(sup.logFile(c))) + '\n');
        return 1;
      }
    }
    if (Date.now() > deadline) {
      progress.fail(`timed out after ${timeoutMs / 1000}s; see logs in ${config.home}/log`);
      return 1;
    }
    await sleep(500);
  }
  progress.done('healthy');
  process.stdout.write(`\nKoala is up: EC2 endpoint ${config.publicEndpoint} (zone ${config.zone}). Try: koala status\n`);
  if (net) process.stdout.write(`Guests live in the network namespace ${net.netns}; reach one with: koala ssh INSTANCE-ID -i KEYFILE\n`);
  return 0;
}
