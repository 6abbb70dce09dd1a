import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ImagesModule } from '../images/images.module.js';
import { ClustersService } from '../clusters/clusters.service.js';
import { InstanceTypesModule } from '../instance-types/instance-types.module.js';
import { SecurityGroupsModule } from '../security-groups/security-groups.module.js';
import { TagsModule } from '../tags/tags.module.js';
import { VolumesModule } from '../volumes/volumes.module.js';
import { NetworkModule } from '../network/network.module.js';
import { CLUSTER_GATEWAY, NatsClusterGateway } from './cluster-gateway.js';
import { InstanceEventsConsumer } from './instance-events.consumer.js';
import { InstanceMetrics } from './instance-metrics.js';
import { InstanceLifecycleService } from './instance-lifecycle.service.js';
import { InstanceReconcilerService } from './instance-reconciler.service.js';
import { InstancesHandlers } from './instances.handlers.js';
import { InstancesRepository } from './instances.repository.js';
import { InstancesService } from './instances.service.js';

/**
 * Instances: the EC2 actions, the instance-event consumer and the reconciliation loop.
 * Images are resolved through the images module's `IMAGE_LAUNCH` port (bound at start: without
 * it the app does not start). Block-device mappings go through the volumes module's
 * BlockDevicesService. Every query is in InstancesRepository.
 */
@Module({
  imports: [ImagesModule, TagsModule, InstanceTypesModule, SecurityGroupsModule, VolumesModule, NetworkModule],
  providers: [
    ClustersService,
    { provide: CLUSTER_GATEWAY, useClass: NatsClusterGateway },
    { provide: InstancesRepository, useFactory: (ds: DataSource) => new InstancesRepository(ds), inject: [DataSource] },
    InstanceLifecycleService,
    InstancesService,
    InstancesHandlers,
    InstanceEventsConsumer,
    InstanceReconcilerService,
    InstanceMetrics,
  ],
  exports: [InstancesService, InstanceLifecycleService],
})
export class InstancesModule {}
