import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ClustersService } from '../clusters/clusters.service.js';
import { SnapshotsHandlers } from '../snapshots/snapshots.handlers.js';
import { SnapshotsService } from '../snapshots/snapshots.service.js';
import { NoImagesSnapshotUsage, SNAPSHOT_USAGE } from '../snapshots/snapshot-usage.port.js';
import { SNAPSHOT_STORAGE, SNAPSHOT_VOLUMES } from '../snapshots/snapshot-volumes.port.js';
import { SnapshotsRepository } from '../snapshots/snapshots.repository.js';
import { TagsModule } from '../tags/tags.module.js';
import { BlockDeviceRepository } from './block-device.repository.js';
import { BlockDevicesService } from './block-devices.service.js';
import { CHAP_SECRETS, MasterKeyChapSecrets } from './chap-credentials.js';
import { RESTORABLE_SNAPSHOTS } from './restorable-snapshots.port.js';
import { StorageBusService } from './storage-events.consumer.js';
import { NatsZoneStorageGateway, ZONE_STORAGE } from './storage-gateway.js';
import { VolumeSweeperService } from './volume-sweeper.service.js';
import { VolumesHandlers } from './volumes.handlers.js';
import { VolumesRepository } from './volumes.repository.js';
import { VolumesService } from './volumes.service.js';

/**
 * Volumes and snapshots (one module: both ride the same SC contract and event stream).
 * Exports VolumesService, whose `releaseForInstances` / `sweep` keep volumes off terminated instances,
 * and BlockDevicesService (RunInstances' block-device mappings).
 */
@Module({
  imports: [TagsModule],
  providers: [
    ClustersService,
    { provide: ZONE_STORAGE, useClass: NatsZoneStorageGateway },
    { provide: CHAP_SECRETS, useClass: MasterKeyChapSecrets },
    { provide: SNAPSHOT_USAGE, useClass: NoImagesSnapshotUsage },
    { provide: SnapshotsRepository, useFactory: (ds: DataSource) => new SnapshotsRepository(ds), inject: [DataSource] },
    { provide: SNAPSHOT_STORAGE, useExisting: ZONE_STORAGE },
    { provide: SNAPSHOT_VOLUMES, useExisting: VolumesRepository },
    SnapshotsService,
    SnapshotsHandlers,
    { provide: RESTORABLE_SNAPSHOTS, useExisting: SnapshotsService },
    { provide: VolumesRepository, useFactory: (ds: DataSource) => new VolumesRepository(ds), inject: [DataSource] },
    VolumesService,
    VolumesHandlers,
    { provide: BlockDeviceRepository, useFactory: (ds: DataSource) => new BlockDeviceRepository(ds), inject: [DataSource] },
    BlockDevicesService,
    StorageBusService,
    VolumeSweeperService,
  ],
  exports: [VolumesService, SnapshotsService, BlockDevicesService],
})
export class VolumesModule {}
