import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { TagsModule } from '../tags/tags.module.js';
import { KEY_MATERIAL, NodeKeyMaterial } from './key-material.js';
import { KeyPairsHandlers } from './key-pairs.handlers.js';
import { KEY_PAIRS_STORE, KeyPairsRepository } from './key-pairs.repository.js';
import { KeyPairsService } from './key-pairs.service.js';

@Module({
  imports: [TagsModule],
  providers: [
    { provide: KEY_PAIRS_STORE, useFactory: (ds: DataSource) => new KeyPairsRepository(ds), inject: [DataSource] },
    KeyPairsService,
    KeyPairsHandlers,
    { provide: KEY_MATERIAL, useClass: NodeKeyMaterial },
  ],
  exports: [KeyPairsService],
})
export class KeyPairsModule {}
