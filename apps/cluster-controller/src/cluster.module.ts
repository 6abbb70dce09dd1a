import { Module } from '@nestjs/common';
import type { DaemonContext } from '@koala/runtime';
import { LaunchService } from './instances/launch.service.js';
import { RegistryService } from './registry/registry.service.js';
import { SchedulerService } from './scheduler/scheduler.service.js';
import { VolumeRoutingService } from './volumes/volume-routing.service.js';

/** The cluster controller of one availability zone. */
export function clusterModule(ctx: Pick<DaemonContext, 'runtime'>) {
  @Module({ imports: [ctx.runtime], providers: [RegistryService, SchedulerService, LaunchService, VolumeRoutingService] })
  class ClusterControllerModule {}
  return ClusterControllerModule;
}
