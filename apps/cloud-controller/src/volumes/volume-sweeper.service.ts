import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { LOGGER } from '@koala/runtime';
import { RECONCILE_TICKER, type Ticker } from '../instances/instance-reconciler.service.js';
import { BlockDevicesService } from './block-devices.service.js';
import { VolumesService } from './volumes.service.js';

/**
 * Every KOALA_VOLUME_SWEEP_MS: release volumes whose instance terminated (VolumesService.sweep),
 * then the "pending attachments" step of RunInstances' block-device mappings (BlockDevicesService.step).
 */
@Injectable()
export class VolumeSweeperService implements OnApplicationBootstrap, OnModuleDestroy {
  private cancel?: () => void;

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(RECONCILE_TICKER) private readonly ticker: Ticker,
    @Inject(VolumesService) private readonly volumes: VolumesService,
    @Inject(BlockDevicesService) private readonly blockDevices: BlockDevicesService,
  ) {}

  onApplicationBootstrap() {
    this.cancel = this.ticker.every(this.config.volumeSweepMs, async () => {
      try {
        const n = await this.volumes.sweep();
        if (n) this.logger.info({ volumes: n }, 'released volumes of terminated instances');
      } catch (err) {
        this.logger.warn({ err }, 'volume sweep failed');
      }
      try {
        await this.blockDevices.step();
      } catch (err) {
        this.logger.warn({ err }, 'block-device mapping step failed');
      }
    });
  }

  onModuleDestroy() {
    this.cancel?.();
  }
}
