import { Inject, Injectable, Optional, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { every, LOGGER, type Periodic } from '@koala/runtime';
import { ImagesService } from './images.service.js';
import { CLC_ROLE, runsBackground, type ClcRole } from '../cluster/clc-role.js';

/**
 * Deletes image blobs nobody needs any more: a deregistered image's bytes stay while instances
 * launched from it run, and go once they are terminated. Runs on the reconcile interval.
 */
@Injectable()
export class BlobCollector implements OnModuleInit, OnApplicationShutdown {
  private loop?: Periodic;

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly images: ImagesService,
    @Optional() @Inject(CLC_ROLE) private readonly role?: ClcRole,
  ) {}

  onModuleInit() {
    if (!runsBackground(this.role)) return; // worker 0 runs it
    this.loop = every(Math.max(this.config.reconcileIntervalMs, 10_000), () => this.collect());
  }

  async onApplicationShutdown() {
    await this.loop?.stop();
  }

  async collect(): Promise<string[]> {
    try {
      const deleted = await this.images.collectUnreferencedBlobs();
      if (deleted.length) this.logger.info({ deleted }, 'deleted unreferenced image blobs');
      return deleted;
    } catch (err) {
      this.logger.warn({ err }, 'blob collection failed');
      return [];
    }
  }
}
