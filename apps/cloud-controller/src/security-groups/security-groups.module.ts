import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { TagsModule } from '../tags/tags.module.js';
import { InstancesSecurityGroupUsage } from './instances-security-group-usage.js';
import { SECURITY_GROUP_CHANGES, SECURITY_GROUP_USAGE } from './security-group-usage.js';
import { NetworkModule } from '../network/network.module.js';
import { NetworkPublisher } from '../network/network-publisher.js';
import { SecurityGroupsHandlers } from './security-groups.handlers.js';
import { SecurityGroupsRepository } from './security-groups.repository.js';
import { SecurityGroupsService } from './security-groups.service.js';

@Module({
  imports: [TagsModule, NetworkModule],
  providers: [
    { provide: SecurityGroupsRepository, inject: [DataSource], useFactory: (ds: DataSource) => new SecurityGroupsRepository(ds) },
    SecurityGroupsService,
    SecurityGroupsHandlers,
    { provide: SECURITY_GROUP_USAGE, useClass: InstancesSecurityGroupUsage },
    { provide: SECURITY_GROUP_CHANGES, useExisting: NetworkPublisher },
  ],
  exports: [SecurityGroupsService],
})
export class SecurityGroupsModule {}
