/**
 * The CC's placement decision at 500 nodes (issue 12's target: p99 < 5 ms), measured on the real
 * NodeRegistry, ReservationBook and place(), against the way it was decided before (a baseline in
 * this process: every node listed and sorted, every reservation summed for every node).
 *
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/scale-jest.config.js bench/scale-placement.bench.ts
 *   (BENCH_NODES, BENCH_RESERVATIONS, BENCH_DECISIONS to change the size)
 */
import type { NodeHeartbeat, Resources } from '@koala/contracts';
import { NodeRegistry } from '../apps/cluster-controller/src/registry/node-registry.js';
import { place, subtract, type NodeCapacity } from '../apps/cluster-controller/src/scheduler/placement.js';
import { ReservationBook, type Reservation } from '../apps/cluster-controller/src/scheduler/reservation-book.js';

const NODES = Number(process.env.BENCH_NODES ?? 500);
const RESERVATIONS = Number(process.env.BENCH_RESERVATIONS ?? 2000);
const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 400);
const need: Resources = { cores: 1, memoryMiB: 128, diskGiB: 1 };

function heartbeat(i: number): NodeHeartbeat {
  const node = `node-${String((i * 7919) % NODES).padStart(4, '0')}`; // registered out of name order
  return {
    zone: 'z1',
    node,
    version: 'bench',
    total: { cores: 64, memoryMiB: 262_144, diskGiB: 4096 },
    free: { cores: 64, memoryMiB: 262_144, diskGiB: 4096 },
    domains: Array.from({ length: 4 }, (_, k) => ({ name: `d-${i}-${k}`, uuid: `${i}-${k}`, state: 'running', instanceId: `i-${i}-${k}` })),
  } as unknown as NodeHeartbeat;
}

/** The decision as it was: list (summaries, sorted), filter up nodes, sum every reservation per node. */
function baselineCapacity(registry: NodeRegistry, reservations: Reservation[], now: Date): NodeCapacity[] {
  return registry
    .list(now)
    .filter((n) => n.state === 'up')
    .map((n) => {
      const sum = { cores: 0, memoryMiB: 0, diskGiB: 0 };
      for (const r of reservations) {
        if (r.node !== n.node) continue;
        sum.cores += r.need.cores;
        sum.memoryMiB += r.need.memoryMiB;
        sum.diskGiB += r.need.diskGiB;
      }
      return { node: n.node, free: subtract(n.free, sum) };
    });
}

function currentCapacity(registry: NodeRegistry, book: ReservationBook, now: Date): NodeCapacity[] {
  return registry.upFree(now).map((n) => ({ node: n.node, free: subtract(n.free, book.reservedOn(n.node, now.getTime())) }));
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;

describe('placement at scale', () => {
  it(`decides 20-instance launches over ${NODES} nodes with ${RESERVATIONS} open reservations`, () => {
    const now = new Date('2026-12-07T00:00:00Z');
    const registry = new NodeRegistry('z1', 60_000);
    for (let i = 0; i < NODES; i++) registry.record(heartbeat(i), now);
    const book = new ReservationBook(600_000);
    const list: Reservation[] = [];
    for (let i = 0; i < RESERVATIONS; i++) {
      const r = { instanceId: `i-r${i}`, node: `node-${String(i % NODES).padStart(4, '0')}`, need, createdAt: now.getTime() };
      book.add(r);
      list.push(r);
    }
    const ids = Array.from({ length: 20 }, (_, i) => `i-new${i}`);
    const run = (capacity: () => NodeCapacity[]) => {
      const ms: number[] = [];
      let cursor: string | undefined;
      for (let d = 0; d < DECISIONS; d++) {
        const t = performance.now();
        const result = place(capacity(), need, ids.length, 'ROUNDROBIN', cursor);
        ms.push(performance.now() - t);
        cursor = result.cursor;
      }
      return ms;
    };
    // Same answers first: the new bookkeeping decides exactly as the old sums did.
    expect(currentCapacity(registry, book, now)).toEqual(baselineCapacity(registry, list, now));
    const before = run(() => baselineCapacity(registry, list, now));
    const after = run(() => currentCapacity(registry, book, now));
    const row = (name: string, xs: number[]) => `${name.padEnd(10)} p50 ${quantile(xs, 0.5).toFixed(3)} ms  p99 ${quantile(xs, 0.99).toFixed(3)} ms`;
    process.stdout.write(
      [
        `placement of 20 instances, ${NODES} nodes, ${RESERVATIONS} reservations, ${DECISIONS} decisions`,
        row('baseline', before),
        row('current', after),
        `ratio current/baseline p50 ${(quantile(after, 0.5) / quantile(before, 0.5)).toFixed(3)}  p99 ${(quantile(after, 0.99) / quantile(before, 0.99)).toFixed(3)}`,
        '',
      ].join('\n'),
    );
  });
});
