import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { every, LOGGER, type Periodic } from '@koala/runtime';
import { BlockDevicesService } from './block-devices.service.js';
import { VolumesService } from './volumes.service.js';
import { CLC_ROLE, runsBackground, type ClcRole } from '../cluster/clc-role.js';

/**
 * Every KOALA_VOLUME_SWEEP_MS: release volumes whose instance terminated (VolumesService.sweep),
 * then the "pending attachments" step of RunInstances' block-device mappings (BlockDevicesService.step).
 */
@Injectable()
export class VolumeSweeperService implements OnApplicationBootstrap, OnModuleDestroy {
  private loop?: Periodic;

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: Pick<KoalaConfig, 'volumeSweepMs'>,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(VolumesService) private readonly volumes: Pick<VolumesService, 'sweep'>,
    @Inject(BlockDevicesService) private readonly blockDevices: Pick<BlockDevicesService, 'step'>,
    @Optional() @Inject(CLC_ROLE) private readonly role?: ClcRole,
  ) {}

  onApplicationBootstrap() {
    if (!runsBackground(this.role)) return; // worker 0 runs it
    this.loop = every(this.config.volumeSweepMs, async () => {
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

  async onModuleDestroy() {
    await this.loop?.stop();
  }
}
