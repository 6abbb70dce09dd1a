import type { Logger } from '@koala/logging';
import type { CopySnapshotRequest, CreateSnapshotRequest, CreateVolumeRequest } from '@koala/contracts';
import type { z } from 'zod';
import { KeyedLock } from '@koala/runtime';
import { copyVolume, CopyAbortedError } from './volume-copier.js';
import { pendingKey, type PendingJournal, type PendingWork } from './pending-journal.js';
import type { StorageEventSink } from './storage-events.js';
import { StorageError, type VolumeBackend } from './volume-backend.js';

export const GiB = 1024 ** 3;

/** Removes a volume's iSCSI export (target and CHAP account) before the volume goes. */
export interface ExportRemover {
  forget(volumeId: string): Promise<void>;
}

export interface VolumeServiceOptions {
  volumes: VolumeBackend;
  snapshots: VolumeBackend;
  journal: PendingJournal;
  events: StorageEventSink;
  exports: ExportRemover;
  logger: Logger;
  /** Most bytes of volumes (by size) this SC holds; 0 = the volume pool's capacity. */
  capacityLimitBytes: number;
  /** Snapshot progress is published each time it crosses a multiple of this (percent). */
  progressStep?: number;
  copyWindowBytes?: number;
}

export interface CapacityReport {
  backend: string;
  capacityBytes: number;
  availableBytes: number;
  provisionedBytes: number;
}

type Reason = { code: string; message: string };
const reasonOf = (err: unknown): Reason => (err instanceof StorageError ? { code: err.code, message: err.message } : { code: 'Server.InternalError', message: (err as Error)?.message ?? String(err) });

/**
 * The storage controller's rules for volumes and snapshots. Requests are checked and
 * acknowledged at once; the work runs in the background, one operation per id at a time, and
 * ends in a StorageEvent. Each long operation is noted in the pending journal first and the
 * note is removed only when the volume/snapshot is complete, so a crash never leaves a
 * half-written volume that passes for complete: `start()` deletes it and redoes the work.
 */
export class VolumeService {
  private readonly lock = new KeyedLock();
  /** Sizes of volumes being created (counted against the capacity before they exist). */
  private readonly reserved = new Map<string, number>();
  private readonly abort = new AbortController();
  private readonly running = new Set<Promise<void>>();
  /** Volume and snapshot ids whose creation is queued or running. */
  private readonly creating = new Set<string>();

  constructor(private readonly o: VolumeServiceOptions) {}

  /** Opens both pools and resumes the work a previous run left unfinished. */
  async start(): Promise<void> {
    await this.o.volumes.open();
    await this.o.snapshots.open();
    for (const work of await this.o.journal.list()) {
      this.o.logger.warn({ work }, 'unfinished storage work from an earlier run: removing the partial copy and redoing it');
      this.creating.add(pendingKey(work));
      if (work.op === 'create-volume') this.reserved.set(work.volumeId, work.sizeGiB * GiB);
      this.background(work.op === 'create-volume' ? `vol:${work.volumeId}` : `snap:${work.snapshotId}`, () => this.redo(work));
    }
  }

  /** Stops background work as a crash would (journal notes stay; the next start redoes them). */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled([...this.running]);
  }

  // ---- volumes ---------------------------------------------------------------------------

  async createVolume(req: z.output<typeof CreateVolumeRequest>): Promise<void> {
    const key = `vol:${req.volumeId}`;
    if (this.creating.has(req.volumeId)) return; // that operation reports
    this.creating.add(req.volumeId);
    let started = false;
    try {
      // One admission at a time, so two creates cannot both take the last free bytes.
      await this.lock.run('admission', async () => {
        if (await this.o.volumes.exists(req.volumeId)) {
          if (await this.o.journal.has(req.volumeId)) return; // resumed by start()
          const vol = await this.o.volumes.get(req.volumeId);
          this.background(key, () => this.emitVolume(req.volumeId, 'available', { sizeBytes: vol?.capacityBytes }));
          return;
        }
        const sizeBytes = req.sizeGiB * GiB;
        if (req.snapshotId) {
          const snap = await this.o.snapshots.get(req.snapshotId);
          if (!snap || (await this.o.journal.has(req.snapshotId))) throw new StorageError('InvalidSnapshot.NotFound', `snapshot ${req.snapshotId} does not exist or is not completed`);
          if (snap.capacityBytes > sizeBytes)
            throw new StorageError('InvalidParameterValue', `volume size ${req.sizeGiB} GiB is smaller than snapshot ${req.snapshotId} (${snap.capacityBytes} bytes)`);
        }
        const cap = await this.capacity();
        if (sizeBytes > cap.availableBytes) {
          throw new StorageError('InsufficientVolumeCapacity', `zone storage has ${cap.availableBytes} bytes free of ${cap.capacityBytes}; a ${req.sizeGiB} GiB volume does not fit`);
        }
        this.reserved.set(req.volumeId, sizeBytes);
        started = true;
        this.background(key, () => this.doCreateVolume({ op: 'create-volume', volumeId: req.volumeId, sizeGiB: req.sizeGiB, snapshotId: req.snapshotId }));
      });
    } finally {
      if (!started) this.creating.delete(req.volumeId);
    }
  }

  async deleteVolume(volumeId: string): Promise<void> {
    this.background(`vol:${volumeId}`, async () => {
      try {
        await this.o.exports.forget(volumeId);
        await this.o.volumes.delete(volumeId);
        await this.o.journal.remove(volumeId);
        await this.emitVolume(volumeId, 'deleted');
      } catch (err) {
        this.o.logger.error({ err, volumeId }, 'volume delete failed');
        await this.emitVolume(volumeId, 'error', { reason: reasonOf(err) });
      }
    });
  }

  private async doCreateVolume(work: Extract<PendingWork, { op: 'create-volume' }>): Promise<void> {
    const { volumeId } = work;
    try {
      await this.createVolumeNow(work);
    } finally {
      this.creating.delete(volumeId);
    }
  }

  private async createVolumeNow(work: Extract<PendingWork, { op: 'create-volume' }>): Promise<void> {
    const { volumeId } = work;
    try {
      await this.o.journal.add(work);
      await this.o.volumes.delete(volumeId); // a partial copy of an earlier attempt
      const sizeBytes = work.sizeGiB * GiB;
      await this.o.volumes.create(volumeId, sizeBytes);
      if (work.snapshotId) {
        const snap = await this.o.snapshots.get(work.snapshotId);
        if (!snap) throw new StorageError('InvalidSnapshot.NotFound', `snapshot ${work.snapshotId} does not exist`);
        await copyVolume(this.o.snapshots, work.snapshotId, this.o.volumes, volumeId, { lengthBytes: snap.capacityBytes, windowBytes: this.o.copyWindowBytes, signal: this.abort.signal });
      }
      await this.o.journal.remove(volumeId);
      this.reserved.delete(volumeId);
      await this.emitVolume(volumeId, 'available', { sizeBytes });
    } catch (err) {
      if (err instanceof CopyAbortedError || this.abort.signal.aborted) return; // redone at next start
      this.o.logger.error({ err, volumeId }, 'volume create failed');
      await this.o.volumes.delete(volumeId).catch(() => undefined);
      await this.o.journal.remove(volumeId).catch(() => undefined);
      this.reserved.delete(volumeId);
      await this.emitVolume(volumeId, 'error', { reason: reasonOf(err) });
    }
  }

  // ---- snapshots -------------------------------------------------------------------------

  async createSnapshot(req: z.output<typeof CreateSnapshotRequest>): Promise<void> {
    await this.admitSnapshot(req.snapshotId, async () => {
      if (!(await this.o.volumes.exists(req.volumeId)) || (await this.o.journal.has(req.volumeId))) {
        throw new StorageError('InvalidVolume.NotFound', `volume ${req.volumeId} does not exist here or is not available`);
      }
      return { op: 'create-snapshot', snapshotId: req.snapshotId, volumeId: req.volumeId };
    });
  }

  async copySnapshot(req: z.output<typeof CopySnapshotRequest>): Promise<void> {
    await this.admitSnapshot(req.snapshotId, async () => {
      if (!(await this.snapshotComplete(req.sourceSnapshotId))) throw new StorageError('InvalidSnapshot.NotFound', `snapshot ${req.sourceSnapshotId} does not exist or is not completed`);
      return { op: 'copy-snapshot', snapshotId: req.snapshotId, sourceSnapshotId: req.sourceSnapshotId };
    });
  }

  /** Idempotent start of a snapshot: a completed one is reported again, a running one left alone. */
  private async admitSnapshot(snapshotId: string, check: () => Promise<Extract<PendingWork, { op: 'create-snapshot' | 'copy-snapshot' }>>): Promise<void> {
    const key = `snap:${snapshotId}`;
    if (this.creating.has(snapshotId)) return;
    this.creating.add(snapshotId);
    let started = false;
    try {
      if (await this.o.journal.has(snapshotId)) return; // resumed by start()
      if (await this.o.snapshots.exists(snapshotId)) return this.background(key, () => this.emitCompleted(snapshotId));
      const work = await check();
      started = true;
      this.background(key, () => this.doCopy(work));
    } finally {
      if (!started) this.creating.delete(snapshotId);
    }
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    this.background(`snap:${snapshotId}`, async () => {
      try {
        await this.o.snapshots.delete(snapshotId);
        await this.o.journal.remove(snapshotId);
        await this.o.events.publish({ kind: 'snapshot', id: snapshotId, state: 'deleted' });
      } catch (err) {
        this.o.logger.error({ err, snapshotId }, 'snapshot delete failed');
        await this.o.events.publish({ kind: 'snapshot', id: snapshotId, state: 'error', reason: reasonOf(err) });
      }
    });
  }

  private async snapshotComplete(id: string): Promise<boolean> {
    return (await this.o.snapshots.exists(id)) && !(await this.o.journal.has(id));
  }

  private async emitCompleted(snapshotId: string) {
    const snap = await this.o.snapshots.get(snapshotId);
    await this.o.events.publish({ kind: 'snapshot', id: snapshotId, state: 'completed', progress: 100, sizeBytes: snap?.capacityBytes });
  }

  /** Snapshot (from a volume) or snapshot copy (from a snapshot), with progress events. */
  private async doCopy(work: Extract<PendingWork, { op: 'create-snapshot' | 'copy-snapshot' }>): Promise<void> {
    const { snapshotId } = work;
    const [source, sourceId] = work.op === 'create-snapshot' ? [this.o.volumes, work.volumeId] : [this.o.snapshots, work.sourceSnapshotId];
    const run = async () => {
      try {
        await this.o.journal.add(work);
        await this.o.snapshots.delete(snapshotId);
        const src = await source.get(sourceId);
        if (!src) throw new StorageError(work.op === 'create-snapshot' ? 'InvalidVolume.NotFound' : 'InvalidSnapshot.NotFound', `${sourceId} does not exist`);
        await this.o.events.publish({ kind: 'snapshot', id: snapshotId, state: 'pending', progress: 0 });
        await this.o.snapshots.create(snapshotId, src.capacityBytes);
        const step = this.o.progressStep ?? 10;
        let reported = 0;
        await copyVolume(source, sourceId, this.o.snapshots, snapshotId, {
          lengthBytes: src.capacityBytes,
          windowBytes: this.o.copyWindowBytes,
          signal: this.abort.signal,
          onProgress: async (p) => {
            if (p < 100 && p >= reported + step) {
              reported = p - (p % step);
              await this.o.events.publish({ kind: 'snapshot', id: snapshotId, state: 'pending', progress: reported });
            }
          },
        });
        await this.o.journal.remove(snapshotId);
        await this.o.events.publish({ kind: 'snapshot', id: snapshotId, state: 'completed', progress: 100, sizeBytes: src.capacityBytes });
      } catch (err) {
        if (err instanceof CopyAbortedError || this.abort.signal.aborted) return;
        this.o.logger.error({ err, snapshotId }, 'snapshot failed');
        await this.o.snapshots.delete(snapshotId).catch(() => undefined);
        await this.o.journal.remove(snapshotId).catch(() => undefined);
        await this.o.events.publish({ kind: 'snapshot', id: snapshotId, state: 'error', reason: reasonOf(err) });
      }
    };
    // The source is held too, so it is not deleted mid-copy.
    try {
      await this.lock.run(work.op === 'create-snapshot' ? `vol:${work.volumeId}` : `snap:${work.sourceSnapshotId}`, run);
    } finally {
      this.creating.delete(snapshotId);
    }
  }

  private redo(work: PendingWork): Promise<void> {
    switch (work.op) {
      case 'create-volume':
        return this.doCreateVolume(work);
      default:
        return this.doCopy(work);
    }
  }

  // ---- capacity --------------------------------------------------------------------------

  /**
   * The zone's volume capacity: the limit (KOALA_STORAGE_CAPACITY_BYTES, else the pool's size)
   * minus what volumes are provisioned (their sizes, plus creates in flight). A thin pool
   * (sparse files) may hold more than its free space; a thick one (LVM) never more than free.
   */
  async capacity(): Promise<CapacityReport> {
    const pool = await this.o.volumes.capacity();
    const vols = await this.o.volumes.list();
    const present = new Set(vols.map((v) => v.id));
    // A volume still being created counts at least at its requested size: a sparse restore into
    // it keeps the file shorter than its capacity until the copy ends (see writeSegments).
    let provisioned = vols.reduce((s, v) => s + Math.max(v.capacityBytes, this.reserved.get(v.id) ?? 0), 0);
    for (const [id, bytes] of this.reserved) if (!present.has(id)) provisioned += bytes;
    const limit = this.o.capacityLimitBytes > 0 ? this.o.capacityLimitBytes : pool.capacityBytes;
    let available = Math.max(0, limit - provisioned);
    if (!this.o.volumes.thin) {
      let reservedAbsent = 0;
      for (const [id, bytes] of this.reserved) if (!present.has(id)) reservedAbsent += bytes;
      available = Math.min(available, Math.max(0, pool.availableBytes - reservedAbsent));
    }
    return { backend: this.o.volumes.kind, capacityBytes: limit, availableBytes: available, provisionedBytes: provisioned };
  }

  // ---- plumbing --------------------------------------------------------------------------

  private emitVolume(volumeId: string, state: 'available' | 'deleted' | 'error', extra: { sizeBytes?: number; reason?: Reason } = {}) {
    return this.o.events.publish({ kind: 'volume', id: volumeId, state, ...extra });
  }

  /** Runs `fn` under the id's lock, after the caller's ack (never blocks the reply). */
  private background(key: string, fn: () => Promise<void>): void {
    const p = this.lock
      .run(key, fn)
      .catch((err) => this.o.logger.error({ err, key }, 'background storage work failed'))
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }
}
