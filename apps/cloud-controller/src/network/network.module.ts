import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { NETWORK_BUS, NatsNetworkBus } from './network-bus.port.js';
import { NetworkPublisher } from './network-publisher.js';
import { NETWORK_STORE, NetworkRepository } from './network.repository.js';
import { NetworkService } from './network.service.js';
import { NatsZoneNodes, ZONE_NODES } from './zone-nodes.port.js';
import { NetworkHandlers } from './network.handlers.js';
import { VpcHandlers } from './vpc.handlers.js';
import { VpcService } from './vpc.service.js';
import { ClustersService } from '../clusters/clusters.service.js';

/** Guest networking: allocation, the zones' desired states and their publication, the default-VPC face. */
@Module({
  providers: [
    { provide: NETWORK_STORE, useFactory: (ds: DataSource) => new NetworkRepository(ds), inject: [DataSource] },
    { provide: NETWORK_BUS, useClass: NatsNetworkBus },
    { provide: ZONE_NODES, useClass: NatsZoneNodes },
    NetworkService,
    NetworkPublisher,
    NetworkHandlers,
    ClustersService,
    VpcService,
    VpcHandlers,
  ],
  exports: [NetworkService, NetworkPublisher],
})
export class NetworkModule {}
