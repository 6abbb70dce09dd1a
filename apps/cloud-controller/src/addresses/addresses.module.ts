import { Module } from '@nestjs/common';
import { TagsModule } from '../tags/tags.module.js';
import { AddressesHandlers } from './addresses.handlers.js';
import { AddressesService } from './addresses.service.js';

@Module({
  imports: [TagsModule],
  providers: [AddressesService, AddressesHandlers],
  exports: [AddressesService],
})
export class AddressesModule {}
