// VolumeSweeperService on fakes of the two jobs it runs (VolumesService.sweep,
// BlockDevicesService.step) and of the logger: its own rules are the order of the jobs, that one
// failing never stops the other or the next tick, that only the background worker runs it, and
// that it stops cleanly. The jobs themselves are volumes.service.spec.ts and block-devices.service.spec.ts.
import type { Logger } from '@koala/logging';
import type { ClcRole } from '../cluster/clc-role.js';
import { VolumeSweeperService } from './volume-sweeper.service.js';

const TICK_MS = 2;

class Jobs {
  readonly calls: string[] = [];
  /** What the next sweeps answer (a number of volumes, or an error); then 0. */
  sweeps: Array<number | Error> = [];
  steps: Array<Error | undefined> = [];
  /** While set, a sweep waits for it. */
  gate?: Promise<void>;
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  readonly volumes = {
    sweep: async (): Promise<number> => {
      this.calls.push('sweep');
      await this.gate;
      const next = this.sweeps.shift() ?? 0;
      if (next instanceof Error) throw next;
      return next;
    },
  };
  readonly blockDevices = {
    step: async (): Promise<number> => {
      this.calls.push('step');
      this.wake();
      const next = this.steps.shift();
      if (next) throw next;
      return 0;
    },
  };

  /** Resolves once `n` ticks have finished their step. */
  ticks(n: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ n, resolve });
      this.wake();
    });
  }
  private wake() {
    const done = this.calls.filter((c) => c === 'step').length;
    this.waiters = this.waiters.filter((w) => (done >= w.n ? (setImmediate(w.resolve), false) : true));
  }
}

class FakeLogger {
  readonly lines: Array<[level: string, fields: Record<string, unknown>, msg: string]> = [];
  debug() {}
  info(fields: Record<string, unknown>, msg: string) {
    this.lines.push(['info', fields, msg]);
  }
  warn(fields: Record<string, unknown>, msg: string) {
    this.lines.push(['warn', fields, msg]);
  }
  error(fields: Record<string, unknown>, msg: string) {
    this.lines.push(['error', fields, msg]);
  }
}

let jobs: Jobs;
let logger: FakeLogger;
let sweeper: VolumeSweeperService | undefined;

function start(role?: ClcRole): VolumeSweeperService {
  sweeper = new VolumeSweeperService({ volumeSweepMs: TICK_MS }, logger as unknown as Logger, jobs.volumes, jobs.blockDevices, role);
  sweeper.onApplicationBootstrap();
  return sweeper;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeEach(() => {
  jobs = new Jobs();
  logger = new FakeLogger();
});
afterEach(async () => {
  await sweeper?.onModuleDestroy();
  sweeper = undefined;
});

it('each tick releases the volumes of terminated instances, then steps the pending block-device mappings', async () => {
  jobs.sweeps = [3, 0];
  start();
  await jobs.ticks(2);
  expect(jobs.calls.slice(0, 4)).toEqual(['sweep', 'step', 'sweep', 'step']);
  // a tick that released something says so; one that released nothing is quiet
  expect(logger.lines).toEqual([['info', { volumes: 3 }, 'released volumes of terminated instances']]);
});

it('a failing sweep is logged and the step still runs; a failing step does not stop the next tick', async () => {
  const sweepErr = new Error('database gone');
  const stepErr = new Error('zone gone');
  jobs.sweeps = [sweepErr];
  jobs.steps = [undefined, stepErr];
  start();
  await jobs.ticks(3);
  expect(jobs.calls.slice(0, 6)).toEqual(['sweep', 'step', 'sweep', 'step', 'sweep', 'step']);
  expect(logger.lines).toEqual([
    ['warn', { err: sweepErr }, 'volume sweep failed'],
    ['warn', { err: stepErr }, 'block-device mapping step failed'],
  ]);
});

it('runs in a single process and in worker 0, never in the other API workers', async () => {
  start({ worker: 1, background: false });
  await sleep(TICK_MS * 10);
  expect(jobs.calls).toEqual([]);
  await sweeper!.onModuleDestroy(); // nothing started: nothing to stop

  for (const role of [undefined, { worker: 0, background: true }]) {
    jobs = new Jobs();
    start(role);
    await jobs.ticks(1);
    await sweeper!.onModuleDestroy();
  }
});

it('stopping waits for the tick under way and runs no further tick', async () => {
  let open!: () => void;
  jobs.gate = new Promise((r) => (open = r));
  start();
  while (!jobs.calls.length) await sleep(1);
  let stopped = false;
  const stopping = sweeper!.onModuleDestroy().then(() => (stopped = true));
  await sleep(TICK_MS * 5);
  expect(stopped).toBe(false); // the sweep under way holds the stop
  open();
  await stopping;
  expect(jobs.calls).toEqual(['sweep', 'step']);
  await sleep(TICK_MS * 10);
  expect(jobs.calls).toEqual(['sweep', 'step']);
});
