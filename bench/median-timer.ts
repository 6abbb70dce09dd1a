/** Median ms of `calls` sequential calls of `call`, after 3 warm-up calls. */
export async function medianMs(call: () => Promise<unknown>, calls: number): Promise<number> {
  for (let i = 0; i < 3; i++) await call();
  const xs: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await call();
    xs.push(performance.now() - t);
  }
  xs.sort((x, y) => x - y);
  return xs.length % 2 ? xs[(xs.length - 1) / 2]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2;
}
