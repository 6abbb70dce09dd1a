import { Module } from '@nestjs/common';
import { TagsModule } from '../tags/tags.module.js';
import { InstancesSecurityGroupUsage } from '../instances/instance-usage.js';
import { SECURITY_GROUP_USAGE } from './security-group-usage.js';
import { SecurityGroupsHandlers } from './security-groups.handlers.js';
import { SecurityGroupsService } from './security-groups.service.js';

@Module({
  imports: [TagsModule],
  providers: [SecurityGroupsService, SecurityGroupsHandlers, { provide: SECURITY_GROUP_USAGE, useClass: InstancesSecurityGroupUsage }],
  exports: [SecurityGroupsService],
})
export class SecurityGroupsModule {}
