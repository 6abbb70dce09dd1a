import { ReservationBook } from './reservation-book.js';

const need = { cores: 1, memoryMiB: 256, diskGiB: 2 };

describe('ReservationBook', () => {
  it('sums reservations per node until a heartbeat shows the instance', () => {
    const b = new ReservationBook(60_000);
    b.add({ instanceId: 'i-1', node: 'a', need, createdAt: 0 });
    b.add({ instanceId: 'i-2', node: 'a', need, createdAt: 0 });
    b.add({ instanceId: 'i-3', node: 'b', need, createdAt: 0 });
    expect(b.reservedOn('a', 1)).toEqual({ cores: 2, memoryMiB: 512, diskGiB: 4 });
    b.onHeartbeat('a', ['i-1', 'i-3']); // i-3 is reserved on b: a's heartbeat cannot release it
    expect(b.reservedOn('a', 1).cores).toBe(1);
    expect(b.reservedOn('b', 1).cores).toBe(1);
  });

  it('releases on failure and expires stale reservations', () => {
    const b = new ReservationBook(1000);
    b.add({ instanceId: 'i-1', node: 'a', need, createdAt: 0 });
    b.add({ instanceId: 'i-2', node: 'a', need, createdAt: 500 });
    expect(b.release('i-1')).toBe(true);
    expect(b.reservedOn('a', 1200).cores).toBe(1);
    expect(b.reservedOn('a', 1600).cores).toBe(0);
    expect(b.size).toBe(0);
  });

  it('keeps each node’s sum exact through re-adds, releases and heartbeats', () => {
    const b = new ReservationBook(60_000);
    b.add({ instanceId: 'i-1', node: 'a', need, createdAt: 0 });
    b.add({ instanceId: 'i-1', node: 'b', need, createdAt: 0 }); // placed again elsewhere: moves
    expect([b.reservedOn('a', 1).cores, b.reservedOn('b', 1).cores]).toEqual([0, 1]);
    b.add({ instanceId: 'i-2', node: 'b', need, createdAt: 0 });
    const copy = b.reservedOn('b', 1);
    copy.cores = 99; // a caller's copy, not the book's own sum
    expect(b.reservedOn('b', 1)).toEqual({ cores: 2, memoryMiB: 512, diskGiB: 4 });
    expect(b.release('i-9')).toBe(false);
    b.onHeartbeat('b', ['i-1', 'i-2']);
    expect([b.reservedOn('b', 1), b.size]).toEqual([{ cores: 0, memoryMiB: 0, diskGiB: 0 }, 0]);
  });
});
