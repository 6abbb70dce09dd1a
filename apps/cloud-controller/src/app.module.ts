import { Module } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { DaemonContext } from '@koala/runtime';
import { AuthModule } from './auth/auth.module.js';
import { ClustersService } from './clusters/clusters.service.js';
import { ClcRoleModule, SINGLE_PROCESS, type ClcRole } from './cluster/clc-role.js';
import { Ec2Module } from './ec2/ec2.module.js';
import { HealthController } from './health/health.controller.js';
import { MetricsController } from './health/metrics.controller.js';
import { InstanceTypesModule } from './instance-types/instance-types.module.js';
import { PersistenceModule } from './persistence/persistence.module.js';
import { RegionsModule } from './regions/regions.module.js';
import { KeyPairsModule } from './key-pairs/key-pairs.module.js';
import { SecurityGroupsModule } from './security-groups/security-groups.module.js';
import { TagsModule } from './tags/tags.module.js';
import { AddressesModule } from './addresses/addresses.module.js';
import { InstancesModule } from './instances/instances.module.js';
import { VolumesModule } from './volumes/volumes.module.js';
import { ImagesModule } from './images/images.module.js';
import { IdentityModule } from './identity/identity.module.js';
import { QuotasModule } from './quotas/quotas.module.js';

/** The cloud controller: the EC2 endpoint and the owner of all persistent state. */
export function cloudModule(ctx: Pick<DaemonContext, 'runtime'>, ds: DataSource, opts: { masterKey: string; role?: ClcRole }) {
  @Module({
    imports: [
      ctx.runtime,
      ClcRoleModule.forRoot(opts.role ?? SINGLE_PROCESS),
      PersistenceModule.forRoot(ds),
      AuthModule.forRoot(opts),
      Ec2Module,
      RegionsModule,
      InstanceTypesModule,
      QuotasModule,
      TagsModule,
      KeyPairsModule,
      SecurityGroupsModule,
      AddressesModule,
      ImagesModule,
      InstancesModule,
      VolumesModule,
      IdentityModule,
    ],
    controllers: [HealthController, MetricsController],
    providers: [ClustersService],
    exports: [ClustersService],
  })
  class CloudControllerModule {}
  return CloudControllerModule;
}
