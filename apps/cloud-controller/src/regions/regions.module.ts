import { Module } from '@nestjs/common';
import { ClustersService } from '../clusters/clusters.service.js';
import { InstanceTypesModule } from '../instance-types/instance-types.module.js';
import { RegionsHandlers } from './regions.handlers.js';
import { RegionsService } from './regions.service.js';

/** DescribeRegions and DescribeAvailabilityZones. */
@Module({ imports: [InstanceTypesModule], providers: [ClustersService, RegionsService, RegionsHandlers] })
export class RegionsModule {}
