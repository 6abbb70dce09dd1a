/** Polling helpers shared by the integration tests. */

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `probe` every `intervalMs` until it returns a truthy value (returned) or `timeoutMs`
 * passes (throws, naming `what`).
 */
export async function until<T>(
  probe: () => Promise<T | undefined | false | null | 0 | ''> | T | undefined | false | null | 0 | '',
  timeoutMs = 15_000,
  what = 'a condition',
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** The error name an SDK call fails with (the EC2 error code), or 'no error'. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { name: string }).name;
  }
  return 'no error';
}
