import { Module } from '@nestjs/common';
import { TaggableResources } from './taggable-resources.js';
import { TagsHandlers } from './tags.handlers.js';
import { TagsService } from './tags.service.js';

/** Tags of every resource; resource modules import it to register their kind and to tag on create. */
@Module({
  providers: [TaggableResources, TagsService, TagsHandlers],
  exports: [TaggableResources, TagsService],
})
export class TagsModule {}
