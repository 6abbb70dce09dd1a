import { Module } from '@nestjs/common';
import { ClustersService } from '../clusters/clusters.service.js';
import { SnapshotsHandlers } from '../snapshots/snapshots.handlers.js';
import { SnapshotsService } from '../snapshots/snapshots.service.js';
import { NoImagesSnapshotUsage, SNAPSHOT_USAGE } from '../snapshots/snapshot-usage.port.js';
import { TagsModule } from '../tags/tags.module.js';
import { BlockDevicesService } from './block-devices.service.js';
import { CHAP_SECRETS, MasterKeyChapSecrets } from './chap-credentials.js';
import { StorageBusService } from './storage-events.consumer.js';
import { NatsZoneStorageGateway, ZONE_STORAGE } from './storage-gateway.js';
import { VolumeSweeperService } from './volume-sweeper.service.js';
import { VolumesHandlers } from './volumes.handlers.js';
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
    SnapshotsService,
    SnapshotsHandlers,
    VolumesService,
    VolumesHandlers,
    BlockDevicesService,
    StorageBusService,
    VolumeSweeperService,
  ],
  exports: [VolumesService, SnapshotsService, BlockDevicesService],
})
export class VolumesModule {}
