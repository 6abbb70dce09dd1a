import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { copySnapshot, createSnapshot, createVolume, deleteSnapshot, deleteVolume, exportVolume, QueueGroups, storageSealKey, unexportVolume } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import type { NatsBus, SealKey } from '@koala/messaging';
import { metrics } from '@koala/metrics';
import { BUS, every, LOGGER, type Periodic } from '@koala/runtime';
import { IscsiExportService } from '../iscsi/export.service.js';
import { openExport } from '../iscsi/sealed-exports.js';
import { STORAGE_EVENTS, type StorageEventSink } from '../volumes/storage-events.js';
import { VolumeService } from '../volumes/volume.service.js';

const ACK = { accepted: true } as const;
/** Handler time: for create/delete/snapshot/copy that is accepting the work (its end is a storage event). */
const opSeconds = metrics.histogram({
  name: 'koala_volume_operation_duration_seconds',
  help: 'SC volume and snapshot requests by zone, operation and outcome (ok, error), in seconds.',
  labelNames: ['zone', 'op', 'outcome'],
});
/** Closes the SC's libvirt connection (after background work stopped). */
export const CLOSE_LIBVIRT = Symbol('CLOSE_LIBVIRT');
/** The SC's key pair for CHAP secrets sealed to it. */
export const SEAL_KEY = Symbol('SC_SEAL_KEY');

/**
 * The SC's side of the volume contracts (queue group per zone, so SC replicas share work).
 * Thin: each handler calls one service method. Long work is acknowledged first and reported
 * later as a StorageEvent; exports answer with the target directly.
 */
@Injectable()
export class StorageHandlers implements OnModuleInit, OnApplicationShutdown {
  private iscsiLoop?: Periodic;

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(STORAGE_EVENTS) private readonly events: StorageEventSink,
    private readonly volumes: VolumeService,
    private readonly exports: IscsiExportService,
    @Inject(CLOSE_LIBVIRT) private readonly closeLibvirt: () => Promise<void>,
    @Inject(SEAL_KEY) private readonly sealKey: SealKey,
  ) {}

  async onModuleInit() {
    await this.events.ensure();
    await this.volumes.start();
    const zone = this.config.zone;
    const queue = QueueGroups.storage(zone);
    const timed = <T>(op: string, fn: () => Promise<T>) => opSeconds.time({ zone, op }, fn);
    this.bus.handle(createVolume(zone), (req) => timed('create_volume', async () => (await this.volumes.createVolume(req), ACK)), { queue });
    this.bus.handle(deleteVolume(zone), (req) => timed('delete_volume', async () => (await this.volumes.deleteVolume(req.volumeId), ACK)), { queue });
    this.bus.handle(createSnapshot(zone), (req) => timed('create_snapshot', async () => (await this.volumes.createSnapshot(req), ACK)), { queue });
    this.bus.handle(deleteSnapshot(zone), (req) => timed('delete_snapshot', async () => (await this.volumes.deleteSnapshot(req.snapshotId), ACK)), { queue });
    this.bus.handle(copySnapshot(zone), (req) => timed('copy_snapshot', async () => (await this.volumes.copySnapshot(req), ACK)), { queue });
    this.bus.handle(exportVolume(zone), (req) => timed('export_volume', () => this.exports.export(openExport(req, this.sealKey))), { queue });
    this.bus.handle(storageSealKey(zone), () => ({ sealKey: this.sealKey.publicKey }), { queue });
    this.bus.handle(unexportVolume(zone), (req) => timed('unexport_volume', async () => (await this.exports.unexport(req.volumeId), ACK)), { queue });
    // Rebuild tgt now (tgtd may have restarted while we were away), then keep it in shape.
    this.iscsiLoop = every(this.config.iscsiReconcileMs, () => this.exports.reconcile(), { onError: (err) => this.logger.warn({ err }, 'iSCSI reconcile failed') });
    void this.iscsiLoop.runNow();
  }

  async onApplicationShutdown() {
    await this.iscsiLoop?.stop();
    await this.volumes.stop();
    await this.closeLibvirt();
  }
}
