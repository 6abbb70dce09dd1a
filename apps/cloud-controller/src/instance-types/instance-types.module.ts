import { Module } from '@nestjs/common';
import { ClustersService } from '../clusters/clusters.service.js';
import { InstanceTypeAvailabilityService } from './instance-type-availability.service.js';
import { InstanceTypesHandlers } from './instance-types.handlers.js';
import { InstanceTypesService } from './instance-types.service.js';

/** DescribeInstanceTypes and the `InstanceTypesService` lookup used by instance launches. */
@Module({ providers: [InstanceTypesService, InstanceTypesHandlers, ClustersService, InstanceTypeAvailabilityService], exports: [InstanceTypesService] })
export class InstanceTypesModule {}
