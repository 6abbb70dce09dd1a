import type { Logger } from '@koala/logging';
import { MemoryBackend } from './memory-backend.js';
import { MemoryPendingJournal } from './pending-journal.js';
import type { StorageEventBody, StorageEventSink } from './storage-events.js';
import { GiB, VolumeService } from './volume.service.js';

const MiB = 1024 ** 2;
const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

class FakeEvents implements StorageEventSink {
  readonly events: StorageEventBody[] = [];
  private waiters: (() => void)[] = [];
  async ensure() {}
  async publish(e: StorageEventBody) {
    this.events.push(e);
    for (const w of this.waiters.splice(0)) w();
  }
  async next(pred: (e: StorageEventBody) => boolean): Promise<StorageEventBody> {
    for (;;) {
      const found = this.events.find(pred);
      if (found) return found;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

function setup(opts: { limit?: number; thin?: boolean; sparse?: boolean } = {}) {
  const volumes = new MemoryBackend('memory', opts.thin ?? true, undefined, opts.sparse ?? true);
  const snapshots = new MemoryBackend('memory', true, undefined, opts.sparse ?? true);
  const journal = new MemoryPendingJournal();
  const events = new FakeEvents();
  const forgotten: string[] = [];
  const service = new VolumeService({
    volumes,
    snapshots,
    journal,
    events,
    exports: { forget: async (id) => void forgotten.push(id) },
    logger: quiet,
    capacityLimitBytes: opts.limit ?? 0,
    copyWindowBytes: 64 * MiB,
  });
  return { volumes, snapshots, journal, events, forgotten, service };
}

describe('VolumeService', () => {
  it('creates a volume in the background and reports it available; a repeat reports the same', async () => {
    const { service, events, volumes, journal } = setup();
    await service.createVolume({ volumeId: 'vol-1', sizeGiB: 2 });
    expect(await events.next((e) => e.id === 'vol-1')).toEqual({ kind: 'volume', id: 'vol-1', state: 'available', sizeBytes: 2 * GiB });
    expect((await volumes.get('vol-1'))?.capacityBytes).toBe(2 * GiB);
    expect(journal.entries.size).toBe(0);
    await service.createVolume({ volumeId: 'vol-1', sizeGiB: 2 });
    await service.stop();
    expect(events.events.filter((e) => e.id === 'vol-1').map((e) => e.state)).toEqual(['available', 'available']);
    expect(volumes.volumes.size).toBe(1);
  });

  it('refuses a create beyond the capacity limit (counting creates in flight) with InsufficientVolumeCapacity', async () => {
    const { service } = setup({ limit: 3 * GiB });
    await service.createVolume({ volumeId: 'vol-a', sizeGiB: 2 });
    await expect(service.createVolume({ volumeId: 'vol-b', sizeGiB: 2 })).rejects.toMatchObject({ code: 'InsufficientVolumeCapacity' });
    await service.createVolume({ volumeId: 'vol-c', sizeGiB: 1 });
    expect((await service.capacity()).availableBytes).toBe(0);
    await service.stop();
  });

  it('a thick backend never promises more than the pool has free', async () => {
    const { service, volumes } = setup({ thin: false });
    await volumes.create('vol-x', 999 * GiB);
    const cap = await service.capacity();
    expect(cap).toMatchObject({ capacityBytes: 1000 * GiB, availableBytes: 1 * GiB, provisionedBytes: 999 * GiB });
    await expect(service.createVolume({ volumeId: 'vol-y', sizeGiB: 2 })).rejects.toMatchObject({ code: 'InsufficientVolumeCapacity' });
  });

  it.each([
    ['sparse streams', true, MiB], // only the data
    ['window by window (no sparse streams)', false, 64 * MiB], // only the window with data
  ])('snapshots with progress events, restores byte for byte, keeps copies sparse: %s', async (_path, sparse, allocated) => {
    const { service, events, volumes, snapshots } = setup({ sparse });
    await service.createVolume({ volumeId: 'vol-1', sizeGiB: 1 });
    await events.next((e) => e.id === 'vol-1');
    const data = Buffer.alloc(MiB, 7);
    await volumes.write('vol-1', 300 * MiB, data);
    await service.createSnapshot({ snapshotId: 'snap-1', volumeId: 'vol-1' });
    const done = await events.next((e) => e.id === 'snap-1' && e.state !== 'pending');
    expect(done).toMatchObject({ kind: 'snapshot', state: 'completed', progress: 100, sizeBytes: GiB });
    const progress = events.events.filter((e) => e.id === 'snap-1' && e.state === 'pending').map((e) => e.progress);
    expect(progress).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect((await snapshots.get('snap-1'))!.allocationBytes).toBe(allocated);
    expect(volumes.calls.read > 0).toBe(!sparse);

    await service.createVolume({ volumeId: 'vol-2', sizeGiB: 2, snapshotId: 'snap-1' });
    expect(await events.next((e) => e.id === 'vol-2')).toMatchObject({ state: 'available', sizeBytes: 2 * GiB });
    expect((await volumes.read('vol-2', 300 * MiB, MiB)).equals(data)).toBe(true);
    await expect(service.createVolume({ volumeId: 'vol-3', sizeGiB: 1, snapshotId: 'snap-missing' })).rejects.toMatchObject({ code: 'InvalidSnapshot.NotFound' });
    await expect(service.createSnapshot({ snapshotId: 'snap-2', volumeId: 'vol-missing' })).rejects.toMatchObject({ code: 'InvalidVolume.NotFound' });

    await service.copySnapshot({ sourceSnapshotId: 'snap-1', snapshotId: 'snap-3' });
    expect(await events.next((e) => e.id === 'snap-3' && e.state !== 'pending')).toMatchObject({ state: 'completed' });
    expect((await snapshots.read('snap-3', 300 * MiB, MiB)).equals(data)).toBe(true);
    await service.stop();
  });

  it.each([true, false])('a thick destination gets every byte (a new LV may hold stale data); sparse streams: %s', async (sparse) => {
    const { service, events, volumes, snapshots } = setup({ thin: false, sparse });
    await snapshots.create('snap-1', GiB);
    await service.createVolume({ volumeId: 'vol-1', sizeGiB: 1, snapshotId: 'snap-1' });
    await events.next((e) => e.id === 'vol-1');
    expect((await volumes.get('vol-1'))!.allocationBytes).toBe(GiB);
    expect(volumes.calls.write > 0).toBe(!sparse); // window by window only without sparse streams
  });

  it('counts a volume being restored at its size while its file is still short', async () => {
    const { service, events, volumes, snapshots } = setup({ limit: 4 * GiB });
    await snapshots.create('snap-1', GiB);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const write = volumes.writeSegments.bind(volumes);
    volumes.writeSegments = async (id, segments, length) => {
      volumes.volumes.get(id)!.capacity = 0; // as a file that a sparse upload has cut short
      await gate;
      volumes.volumes.get(id)!.capacity = 2 * GiB;
      return write(id, segments, length);
    };
    await service.createVolume({ volumeId: 'vol-1', sizeGiB: 2, snapshotId: 'snap-1' });
    while (volumes.volumes.get('vol-1')?.capacity !== 0) await new Promise((r) => setImmediate(r));
    expect((await service.capacity()).availableBytes).toBe(2 * GiB);
    await expect(service.createVolume({ volumeId: 'vol-2', sizeGiB: 3 })).rejects.toMatchObject({ code: 'InsufficientVolumeCapacity' });
    release();
    expect(await events.next((e) => e.id === 'vol-1')).toMatchObject({ state: 'available' });
    expect((await service.capacity()).availableBytes).toBe(2 * GiB);
    await service.stop();
  });

  it('a failed create leaves nothing and reports error; deleting a missing volume reports deleted', async () => {
    const { service, events, volumes, snapshots, journal, forgotten } = setup();
    await snapshots.create('snap-1', GiB);
    await snapshots.write('snap-1', 0, Buffer.alloc(10, 1));
    volumes.failOn.add('write:vol-1');
    await service.createVolume({ volumeId: 'vol-1', sizeGiB: 1, snapshotId: 'snap-1' });
    expect(await events.next((e) => e.id === 'vol-1')).toMatchObject({ state: 'error', reason: { code: 'Server.InternalError' } });
    expect(await volumes.exists('vol-1')).toBe(false);
    expect(journal.entries.size).toBe(0);

    await service.deleteVolume('vol-nope');
    expect(await events.next((e) => e.id === 'vol-nope')).toMatchObject({ state: 'deleted' });
    expect(forgotten).toEqual(['vol-nope']);
    await service.deleteSnapshot('snap-1');
    expect(await events.next((e) => e.id === 'snap-1')).toMatchObject({ kind: 'snapshot', state: 'deleted' });
  });

  it('at start, redoes work a crash left half done (the partial volume never passes for complete)', async () => {
    const { service, events, volumes, snapshots, journal } = setup();
    await snapshots.create('snap-1', GiB);
    await snapshots.write('snap-1', 5 * MiB, Buffer.alloc(MiB, 9));
    // the crash: journal note written, volume half copied with junk
    await journal.add({ op: 'create-volume', volumeId: 'vol-1', sizeGiB: 1, snapshotId: 'snap-1' });
    await volumes.create('vol-1', GiB);
    await volumes.write('vol-1', 500 * MiB, Buffer.alloc(MiB, 0xee));
    // a request arriving meanwhile does not report the half volume as available
    await service.createVolume({ volumeId: 'vol-1', sizeGiB: 1, snapshotId: 'snap-1' });
    expect(events.events).toEqual([]);
    await service.start();
    expect(await events.next((e) => e.id === 'vol-1')).toMatchObject({ state: 'available' });
    expect((await volumes.read('vol-1', 500 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    expect((await volumes.read('vol-1', 5 * MiB, MiB)).equals(Buffer.alloc(MiB, 9))).toBe(true);
    expect(journal.entries.size).toBe(0);
  });

  it('stop() interrupts a copy like a crash: the journal note stays for the next start', async () => {
    const { service, snapshots, journal, events } = setup();
    await snapshots.create('snap-big', 64 * GiB);
    await service.createVolume({ volumeId: 'vol-1', sizeGiB: 64, snapshotId: 'snap-big' });
    await service.stop();
    expect([...journal.entries.keys()]).toEqual(['vol-1']);
    expect(events.events).toEqual([]);
  });
});
