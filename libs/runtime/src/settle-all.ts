/**
 * Awaits every promise, then rejects with the first failure (in argument order) if any. Unlike
 * `Promise.all`, nothing is still running when the caller's error handling starts: clean-up
 * never races work that has not finished yet.
 */
export async function settleAll<T extends readonly unknown[]>(work: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(work);
  const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((x) => (x as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
