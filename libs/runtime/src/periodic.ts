/** A job run on an interval; see `every`. */
export interface Periodic {
  /** Runs the job now unless a run is in flight; resolves when that run (or the one in flight) ends. */
  runNow(): Promise<void>;
  /** No more runs; resolves once a run in flight has ended (graceful shutdown). */
  stop(): Promise<void>;
}

/**
 * Runs `job` every `ms` milliseconds, one run at a time: a tick that finds the previous run still
 * going is skipped instead of piling up, so a slow libvirt, database or NATS never queues work.
 * A run that throws is passed to `onError` (default: ignored) and the next tick runs as usual.
 * The timer does not keep the process alive.
 */
export function every(ms: number, job: () => unknown, opts: { onError?: (err: unknown) => void } = {}): Periodic {
  let inFlight: Promise<void> | undefined;
  let stopped = false;
  const run = (): Promise<void> => {
    if (inFlight) return inFlight;
    if (stopped) return Promise.resolve();
    inFlight = (async () => {
      try {
        await job();
      } catch (err) {
        opts.onError?.(err);
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };
  const timer = setInterval(() => void run(), ms);
  timer.unref?.();
  return {
    runNow: run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
    },
  };
}
