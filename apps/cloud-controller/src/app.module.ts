import { Module } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { DaemonContext } from '@koala/runtime';
import { ClustersService } from './clusters/clusters.service.js';
import { HealthController } from './health/health.controller.js';
import { PersistenceModule } from './persistence/persistence.module.js';

/** The cloud controller: the EC2 endpoint and the owner of all persistent state. */
export function cloudModule(ctx: Pick<DaemonContext, 'runtime'>, ds: DataSource) {
  @Module({
    imports: [ctx.runtime, PersistenceModule.forRoot(ds)],
    controllers: [HealthController],
    providers: [ClustersService],
    exports: [ClustersService],
  })
  class CloudControllerModule {}
  return CloudControllerModule;
}
