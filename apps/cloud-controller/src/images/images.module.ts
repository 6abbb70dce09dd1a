import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KOALA_CONFIG, koalaPaths, type KoalaConfig } from '@koala/config';
import { MASTER_KEY } from '../auth/master-key.js';
import { TagsModule } from '../tags/tags.module.js';
import { BLOB_STORE, FsBlobStore } from './blob-store.js';
import { BlobUrlSigner } from './blob-url-signer.js';
import { HttpImageFetcher, IMAGE_FETCHER } from './image-fetcher.js';
import { IMAGE_LAUNCH } from './image-launch.port.js';
import { InstancesImageUsage } from './instances-image-usage.js';
import { BlobCollector } from './blob-collector.js';
import { IMAGE_USAGE } from './image-usage.port.js';
import { ImageBlobsController } from './image-blobs.controller.js';
import { ImagesHandlers } from './images.handlers.js';
import { IMAGES_STORE, ImagesRepository } from './images.repository.js';
import { BLOB_URL_SIGNER, ImagesService } from './images.service.js';

/**
 * Images and the image store. Exports `IMAGE_LAUNCH` (the instances module's way in) and
 * `ImagesService` (e.g. `collectUnreferencedBlobs()` after instances terminate).
 */
@Module({
  imports: [TagsModule],
  controllers: [ImageBlobsController],
  providers: [
    { provide: IMAGES_STORE, useFactory: (ds: DataSource) => new ImagesRepository(ds), inject: [DataSource] },
    ImagesService,
    ImagesHandlers,
    { provide: IMAGE_LAUNCH, useExisting: ImagesService },
    { provide: IMAGE_USAGE, useClass: InstancesImageUsage },
    BlobCollector,
    { provide: IMAGE_FETCHER, inject: [KOALA_CONFIG], useFactory: (c: KoalaConfig) => new HttpImageFetcher({ allow: c.imageFetchAllow }) },
    { provide: BLOB_STORE, inject: [KOALA_CONFIG], useFactory: (c: KoalaConfig) => new FsBlobStore(koalaPaths(c.home).imageStore) },
    { provide: BLOB_URL_SIGNER, inject: [MASTER_KEY], useFactory: (key: string) => new BlobUrlSigner(key) },
  ],
  exports: [IMAGE_LAUNCH, ImagesService],
})
export class ImagesModule {}
