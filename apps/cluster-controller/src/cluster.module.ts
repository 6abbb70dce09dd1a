import { Module } from '@nestjs/common';
import type { DaemonContext } from '@koala/runtime';
import { RegistryService } from './registry/registry.service.js';

/** The cluster controller of one availability zone. */
export function clusterModule(ctx: Pick<DaemonContext, 'runtime'>) {
  @Module({ imports: [ctx.runtime], providers: [RegistryService] })
  class ClusterControllerModule {}
  return ClusterControllerModule;
}
