import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { TaggableResources } from './taggable-resources.js';
import { TagsHandlers } from './tags.handlers.js';
import { TagsRepository } from './tags.repository.js';
import { TagsService } from './tags.service.js';

/** Tags of every resource; resource modules import it to register their kind and to tag on create. */
@Module({
  providers: [{ provide: TagsRepository, inject: [DataSource], useFactory: (ds: DataSource) => new TagsRepository(ds) }, TaggableResources, TagsService, TagsHandlers],
  exports: [TaggableResources, TagsService],
})
export class TagsModule {}
