import { roleFromEnv, runsBackground, SINGLE_PROCESS, WORKER_ENV } from './clc-role.js';
import { afterWorkerExit } from './primary.js';

describe('CLC process roles', () => {
  it('a process without a worker index is a single process: serves and runs the background jobs', () => {
    expect(roleFromEnv({})).toBe(SINGLE_PROCESS);
    expect(runsBackground(undefined)).toBe(true);
    expect(runsBackground(roleFromEnv({}))).toBe(true);
  });

  it('worker 0 runs the background jobs, the others only serve', () => {
    expect(roleFromEnv({ [WORKER_ENV]: '0' })).toEqual({ worker: 0, background: true });
    expect(roleFromEnv({ [WORKER_ENV]: '3' })).toEqual({ worker: 3, background: false });
    expect(runsBackground(roleFromEnv({ [WORKER_ENV]: '1' }))).toBe(false);
  });

  it('an unreadable index is ignored (single process)', () => {
    for (const v of ['', '-1', 'x', '1e3', '0\0', '12345']) expect(roleFromEnv({ [WORKER_ENV]: v })).toBe(SINGLE_PROCESS);
  });
});

describe('afterWorkerExit', () => {
  it('does nothing while stopping', () => {
    expect(afterWorkerExit({ stopping: true, listened: false, recentRestarts: 0 })).toBe('nothing');
  });
  it('fails the CLC when a worker dies before it listened (every worker would)', () => {
    expect(afterWorkerExit({ stopping: false, listened: false, recentRestarts: 0 })).toBe('fail');
  });
  it('restarts a worker that served, unless workers keep dying', () => {
    expect(afterWorkerExit({ stopping: false, listened: true, recentRestarts: 9 })).toBe('restart');
    expect(afterWorkerExit({ stopping: false, listened: true, recentRestarts: 10 })).toBe('fail');
  });
});
