/**
 * A fake storage controller (SC) plus the CC's attach/detach for one zone, on the real NATS:
 * answers the contract of libs/contracts/src/volumes.ts, records every export/unexport and
 * attach/detach, and publishes StorageEvents through the real JetStream stream as the real SC
 * will. Lets the CLC's volume work be tested end to end while the real SC/NC are written.
 */
import {
  attachVolume,
  copySnapshot,
  createSnapshot,
  createVolume,
  deleteSnapshot,
  deleteVolume,
  detachVolume,
  EventSubjects,
  exportVolume,
  QueueGroups,
  StorageEvent,
  unexportVolume,
  volumeTargetIqn,
  type ExportVolumeRequest,
  EVENTS_STREAM_SPEC,
} from '@koala/contracts';
import { NatsBus, type EventStream } from '@koala/messaging';

const codeError = (code: string, message: string) => Object.assign(new Error(message), { code });

export class FakeStorage {
  readonly volumes = new Map<string, number>();
  readonly snapshots = new Map<string, number>();
  /** Current exports: volume id → request (with the CHAP secret the CLC chose). */
  readonly exports = new Map<string, ExportVolumeRequest>();
  readonly log: string[] = [];
  /** Guest devices attached at the "NC": volume id → device. */
  readonly attached = new Map<string, string>();
  /** Make the NC fail the next attaches with this code. */
  failAttach?: string;
  /** Make the NC fail detaches as an unreachable node would (the CC answers Unavailable). */
  detachUnreachable = false;
  /** Snapshot copies report progress in these steps. */
  progressSteps = [25, 50, 75];
  private events!: EventStream;

  private constructor(
    readonly zone: string,
    private readonly bus: NatsBus,
  ) {}

  static async start(zone: string, natsUrl = 'nats://127.0.0.1:4222'): Promise<FakeStorage> {
    const bus = await NatsBus.connect({ url: natsUrl, name: `fake-storage-${zone}` });
    const s = new FakeStorage(zone, bus);
    await s.serve();
    return s;
  }

  private emit(kind: 'volume' | 'snapshot', id: string, state: StorageEvent['state'], extra: Partial<StorageEvent> = {}) {
    return this.events.publish(EventSubjects.volume(this.zone), StorageEvent, { kind, id, zone: this.zone, state, at: new Date().toISOString(), ...extra });
  }

  private later(fn: () => Promise<void>) {
    setTimeout(() => void fn().catch(() => undefined), 50);
  }

  private async snapshotProgress(id: string, size: number) {
    for (const p of this.progressSteps) await this.emit('snapshot', id, 'pending', { progress: p });
    this.snapshots.set(id, size);
    await this.emit('snapshot', id, 'completed', { progress: 100 });
  }

  private async serve() {
    const { zone, bus } = this;
    this.events = bus.events(EVENTS_STREAM_SPEC);
    await this.events.ensure();
    const sc = { queue: QueueGroups.storage(zone) };
    const cc = { queue: QueueGroups.cluster(zone) };
    bus.handle(
      createVolume(zone),
      (r) => {
        this.log.push(`create ${r.volumeId}`);
        if (r.sizeGiB > 1000) throw codeError('InsufficientVolumeCapacity', `no room for ${r.sizeGiB} GiB`);
        if (r.snapshotId && !this.snapshots.has(r.snapshotId)) throw codeError('InvalidSnapshot.NotFound', `snapshot ${r.snapshotId} is not here`);
        this.later(async () => {
          this.volumes.set(r.volumeId, r.sizeGiB);
          await this.emit('volume', r.volumeId, 'available', { sizeBytes: r.sizeGiB * 1024 ** 3 });
        });
        return { accepted: true };
      },
      sc,
    );
    bus.handle(
      deleteVolume(zone),
      (r) => {
        this.log.push(`delete ${r.volumeId}`);
        this.later(async () => {
          this.exports.delete(r.volumeId);
          this.volumes.delete(r.volumeId);
          await this.emit('volume', r.volumeId, 'deleted');
        });
        return { accepted: true };
      },
      sc,
    );
    bus.handle(
      exportVolume(zone),
      (r) => {
        this.log.push(`export ${r.volumeId} ${r.node}`);
        if (!this.volumes.has(r.volumeId)) throw codeError('InvalidVolume.NotFound', `volume ${r.volumeId} is not here`);
        this.exports.set(r.volumeId, r);
        return { iqn: volumeTargetIqn(r.volumeId), lun: 1, portal: '127.0.0.1:3260', chapUser: r.chapUser, chapSecret: r.chapSecret };
      },
      sc,
    );
    bus.handle(
      unexportVolume(zone),
      (r) => {
        this.log.push(`unexport ${r.volumeId}`);
        this.exports.delete(r.volumeId);
        return { accepted: true };
      },
      sc,
    );
    bus.handle(
      createSnapshot(zone),
      (r) => {
        this.log.push(`snapshot ${r.snapshotId} ${r.volumeId}`);
        const size = this.volumes.get(r.volumeId);
        if (size === undefined) throw codeError('InvalidVolume.NotFound', `volume ${r.volumeId} is not here`);
        this.later(() => this.snapshotProgress(r.snapshotId, size));
        return { accepted: true };
      },
      sc,
    );
    bus.handle(
      copySnapshot(zone),
      (r) => {
        this.log.push(`copy ${r.sourceSnapshotId} ${r.snapshotId}`);
        const size = this.snapshots.get(r.sourceSnapshotId);
        if (size === undefined) throw codeError('InvalidSnapshot.NotFound', `snapshot ${r.sourceSnapshotId} is not here`);
        this.later(() => this.snapshotProgress(r.snapshotId, size));
        return { accepted: true };
      },
      sc,
    );
    bus.handle(
      deleteSnapshot(zone),
      (r) => {
        this.log.push(`delete-snapshot ${r.snapshotId}`);
        this.snapshots.delete(r.snapshotId);
        return { accepted: true };
      },
      sc,
    );
    bus.handle(
      attachVolume(zone),
      (r) => {
        this.log.push(`attach ${r.volumeId} ${r.instanceId} ${r.device}`);
        if (this.failAttach) throw codeError(this.failAttach, `the node could not log in to ${r.target.iqn}`);
        if (!this.exports.has(r.volumeId) || r.target.chapSecret !== this.exports.get(r.volumeId)!.chapSecret) throw codeError('InternalError', 'no export');
        const dev = `vd${String.fromCharCode(98 + this.attached.size)}`;
        this.attached.set(r.volumeId, dev);
        return { guestDevice: dev };
      },
      cc,
    );
    bus.handle(
      detachVolume(zone),
      (r) => {
        this.log.push(`detach ${r.volumeId} ${r.instanceId}${r.force ? ' force' : ''}`);
        if (this.detachUnreachable) throw codeError('Unavailable', `node of ${r.instanceId} is not answering`);
        this.attached.delete(r.volumeId);
        return { accepted: true };
      },
      cc,
    );
    await bus.flush();
  }

  async close() {
    await this.bus.close();
  }
}
