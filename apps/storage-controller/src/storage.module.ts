import { Module } from '@nestjs/common';
import { join } from 'node:path';
import { listExports } from '@koala/contracts';
import type { KoalaConfig } from '@koala/config';
import { LibvirtReconnector } from '@koala/libvirt';
import type { DaemonContext } from '@koala/runtime';
import { CLOCK, type Clock } from '@koala/runtime';
import { SealKey } from '@koala/messaging';
import { CLOSE_LIBVIRT, SEAL_KEY, StorageHandlers } from './handlers/storage.handlers.js';
import { StorageHeartbeatService } from './heartbeat/heartbeat.service.js';
import { execRunner, type CommandRunner } from './iscsi/command-runner.js';
import { IscsiExportService } from './iscsi/export.service.js';
import { openExport } from './iscsi/sealed-exports.js';
import { TgtAdmin } from './iscsi/tgt-admin.js';
import { DirPoolBackend } from './volumes/dir-pool-backend.js';
import { LogicalPoolBackend } from './volumes/logical-pool-backend.js';
import { FsPendingJournal } from './volumes/pending-journal.js';
import { JetStreamStorageEvents, STORAGE_EVENTS } from './volumes/storage-events.js';
import type { VolumeBackend } from './volumes/volume-backend.js';
import { VolumeService } from './volumes/volume.service.js';

/** The volume pool KOALA_STORAGE_BACKEND asks for. */
export function volumeBackend(config: KoalaConfig, libvirt: () => Promise<import('@koala/libvirt').Libvirt>): VolumeBackend {
  return config.storageBackend === 'logical'
    ? new LogicalPoolBackend({ libvirt, poolName: config.volumesPool, vgName: config.lvmVg })
    : new DirPoolBackend({ libvirt, poolName: config.volumesPool, targetPath: config.volumesDir ?? join(config.home, 'volumes') });
}

export interface StorageModuleOptions {
  /** tgtadm runner (tests may wrap it). */
  runner?: CommandRunner;
}

/** The storage controller of one availability zone. */
export function storageModule(ctx: Pick<DaemonContext, 'runtime' | 'config' | 'bus' | 'logger'>, opts: StorageModuleOptions = {}) {
  const { config, bus, logger } = ctx;
  const reconnector = new LibvirtReconnector({ uri: config.libvirtUri, socketPath: config.libvirtSocket }, { attempts: 5 });
  const libvirt = () => reconnector.get();
  const volumes = volumeBackend(config, libvirt);
  const snapshots = new DirPoolBackend({ libvirt, poolName: config.snapshotsPool, targetPath: config.snapshotsDir ?? join(config.home, 'snapshots') });
  // CHAP secrets come sealed for this key (replicas of a zone's SC share the file).
  const sealKey = SealKey.loadOrCreate(join(config.home, 'keys', `sc-${config.zone}.pem`));
  const exportsService = new IscsiExportService({
    tgt: new TgtAdmin(opts.runner ?? execRunner),
    volumes,
    desiredExports: async () => (await bus.request(listExports(), { zone: config.zone }, { timeoutMs: 2000 })).exports.map((e) => openExport(e, sealKey)),
    portal: config.iscsiPortal,
    logger,
  });

  @Module({
    imports: [ctx.runtime],
    providers: [
      { provide: IscsiExportService, useValue: exportsService },
      { provide: STORAGE_EVENTS, useFactory: (clock: Clock) => new JetStreamStorageEvents(bus, config.zone, clock, logger), inject: [CLOCK] },
      {
        provide: VolumeService,
        useFactory: (events: JetStreamStorageEvents) =>
          new VolumeService({
            volumes,
            snapshots,
            journal: new FsPendingJournal(join(config.home, 'storage', 'pending')),
            events,
            exports: exportsService,
            logger,
            capacityLimitBytes: config.storageCapacityBytes,
          }),
        inject: [STORAGE_EVENTS],
      },
      { provide: CLOSE_LIBVIRT, useValue: () => reconnector.close() },
      { provide: SEAL_KEY, useValue: sealKey },
      StorageHandlers,
      StorageHeartbeatService,
    ],
  })
  class StorageControllerModule {}
  return StorageControllerModule;
}
