import { Module } from '@nestjs/common';
import { TagsModule } from '../tags/tags.module.js';
import { KEY_MATERIAL, NodeKeyMaterial } from './key-material.js';
import { KeyPairsHandlers } from './key-pairs.handlers.js';
import { KeyPairsService } from './key-pairs.service.js';

@Module({
  imports: [TagsModule],
  providers: [KeyPairsService, KeyPairsHandlers, { provide: KEY_MATERIAL, useClass: NodeKeyMaterial }],
  exports: [KeyPairsService],
})
export class KeyPairsModule {}
