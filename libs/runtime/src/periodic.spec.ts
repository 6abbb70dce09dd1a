import { every } from './periodic.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean) {
  for (let i = 0; i < 400 && !cond(); i++) await sleep(5);
  expect(cond()).toBe(true);
}

describe('every', () => {
  it('never overlaps runs: ticks during a slow run are skipped', async () => {
    let calls = 0;
    let running = 0;
    let most = 0;
    let release!: () => void;
    const p = every(2, async () => {
      calls++;
      most = Math.max(most, ++running);
      if (calls === 1) await new Promise<void>((r) => (release = r));
      running--;
    });
    await until(() => calls === 1);
    await sleep(40); // ~20 ticks while the first run hangs
    expect(calls).toBe(1);
    release();
    await until(() => calls >= 3);
    await p.stop();
    expect(most).toBe(1);
  });

  it('stop waits for the run in flight and ends the ticks', async () => {
    let calls = 0;
    let finished = false;
    let release!: () => void;
    const p = every(2, async () => {
      calls++;
      await new Promise<void>((r) => (release = r));
      finished = true;
    });
    await until(() => calls === 1);
    const stopped = p.stop();
    let done = false;
    void stopped.then(() => (done = true));
    await sleep(20);
    expect(done).toBe(false); // still waiting for the run
    release();
    await stopped;
    expect(finished).toBe(true);
    await sleep(20);
    expect(calls).toBe(1);
    await p.runNow();
    expect(calls).toBe(1); // stopped: runNow does nothing
  });

  it('reports a failing run and keeps ticking; runNow joins the run in flight', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const p = every(
      1000,
      async () => {
        calls++;
        await sleep(10);
        if (calls === 1) throw new Error('boom');
      },
      { onError: (e) => errors.push(e) },
    );
    const a = p.runNow();
    const b = p.runNow();
    await Promise.all([a, b]);
    expect(calls).toBe(1);
    expect(errors).toHaveLength(1);
    await p.runNow();
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
    await p.stop();
  });
});
