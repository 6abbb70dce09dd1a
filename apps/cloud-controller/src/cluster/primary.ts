import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '@koala/logging';
import { WORKER_ENV } from './clc-role.js';

export type WorkerExitAction = 'nothing' | 'restart' | 'fail';

/**
 * What the primary does when a worker exits: nothing while stopping; the whole CLC fails when a
 * worker dies before it ever listened (bad configuration or database: every worker would, and
 * `koala up` must see the CLC exit) or when workers keep dying (10 restarts in a minute);
 * otherwise the worker is started again with the same index (index 0 keeps the background jobs).
 */
export function afterWorkerExit(s: { stopping: boolean; listened: boolean; recentRestarts: number }): WorkerExitAction {
  if (s.stopping) return 'nothing';
  if (!s.listened) return 'fail';
  return s.recentRestarts >= 10 ? 'fail' : 'restart';
}

/**
 * The primary of a multi-worker CLC: no database, no NATS, no Nest; forks `n` workers that serve
 * the EC2 endpoint on the one port (node:cluster hands them the connections), restarts a worker
 * that dies, and on SIGTERM/SIGINT stops them all (SIGTERM, SIGKILL after `graceMs`) before it
 * exits itself. Its pid is the CLC's pid (`koala up` writes it, `koala down` signals it); a
 * worker whose primary vanishes (SIGKILL) exits on its own when the IPC channel closes.
 */
export async function runPrimary(n: number, logger: Logger, graceMs = 12_000): Promise<void> {
  const slots: Array<{ worker: Worker; listened: boolean }> = [];
  const restarts: number[] = [];
  let stopping = false;

  const fork = (index: number) => {
    const worker = cluster.fork({ [WORKER_ENV]: String(index) });
    const slot = { worker, listened: false };
    slots[index] = slot;
    worker.once('listening', () => {
      slot.listened = true;
      if (slots.every((s) => s?.listened)) logger.info({ workers: n, pids: slots.map((s) => s.worker.process.pid) }, 'EC2 endpoint listening in every worker');
    });
  };

  const stopAll = async (code: number) => {
    stopping = true;
    const live = slots.filter((s) => s && !s.worker.isDead()).map((s) => s.worker);
    const gone = Promise.all(live.map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r())))));
    for (const w of live) w.process.kill('SIGTERM');
    const timer = setTimeout(() => live.forEach((w) => w.isDead() || w.process.kill('SIGKILL')), graceMs);
    await gone;
    clearTimeout(timer);
    logger.info({ code }, 'stopped every worker');
    process.exit(code);
  };

  cluster.on('exit', (worker, code, signal) => {
    const index = slots.findIndex((s) => s?.worker === worker);
    if (index < 0) return;
    const now = Date.now();
    while (restarts.length && restarts[0]! < now - 60_000) restarts.shift();
    const action = afterWorkerExit({ stopping, listened: slots[index]!.listened, recentRestarts: restarts.length });
    if (action === 'nothing') return;
    if (action === 'fail') {
      logger.fatal({ worker: index, code, signal }, 'CLC worker failed; stopping the others');
      void stopAll(1);
      return;
    }
    logger.error({ worker: index, code, signal }, 'CLC worker died; starting it again');
    restarts.push(now);
    setTimeout(() => stopping || fork(index), 1000).unref();
  });

  // Workers accept from the shared socket themselves unless NODE_CLUSTER_SCHED_POLICY says
  // otherwise: with Node's round-robin the primary accepts every connection and hands it over,
  // and on a busy machine that hand-off stalled new connections for seconds (bench p99 12 s vs
  // 5.6 s with the workers accepting). The kernel's spread was even in the same run.
  if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
  process.once('SIGTERM', () => void stopAll(0));
  process.once('SIGINT', () => void stopAll(0));
  for (let i = 0; i < n; i++) fork(i);
  logger.info({ workers: n }, 'started CLC workers');
}
