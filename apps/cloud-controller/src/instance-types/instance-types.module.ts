import { Module } from '@nestjs/common';
import { InstanceTypesHandlers } from './instance-types.handlers.js';
import { InstanceTypesService } from './instance-types.service.js';

/** DescribeInstanceTypes and the `InstanceTypesService` lookup used by instance launches. */
@Module({ providers: [InstanceTypesService, InstanceTypesHandlers], exports: [InstanceTypesService] })
export class InstanceTypesModule {}
