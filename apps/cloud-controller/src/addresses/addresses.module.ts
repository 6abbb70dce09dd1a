import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { NetworkModule } from '../network/network.module.js';
import { TagsModule } from '../tags/tags.module.js';
import { AddressesHandlers } from './addresses.handlers.js';
import { ADDRESSES_STORE, AddressesRepository } from './addresses.repository.js';
import { AddressesService } from './addresses.service.js';

@Module({
  imports: [TagsModule, NetworkModule],
  providers: [{ provide: ADDRESSES_STORE, useFactory: (ds: DataSource) => new AddressesRepository(ds), inject: [DataSource] }, AddressesService, AddressesHandlers],
  exports: [AddressesService],
})
export class AddressesModule {}
