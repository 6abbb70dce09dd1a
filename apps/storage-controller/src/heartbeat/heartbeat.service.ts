import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { KOALA_VERSION, StorageHeartbeat, Subjects } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import type { NatsBus } from '@koala/messaging';
import { BUS, CLOCK, COMPONENT, every, LOGGER, StatusResponder, type Clock, type ComponentIdentity, type Periodic } from '@koala/runtime';
import { VolumeService } from '../volumes/volume.service.js';

/** Announces this zone's storage controller and its volume capacity every KOALA_HEARTBEAT_MS. */
@Injectable()
export class StorageHeartbeatService implements OnModuleInit, OnApplicationShutdown {
  private loop?: Periodic;

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(COMPONENT) private readonly identity: ComponentIdentity,
    private readonly status: StatusResponder,
    private readonly volumes: VolumeService,
  ) {}

  async onModuleInit() {
    this.status.setDetails(async () => {
      const hb = await this.build();
      return { backend: hb.backend, capacityBytes: hb.capacityBytes, availableBytes: hb.availableBytes };
    });
    await this.beat();
    this.loop = every(this.config.heartbeatMs, () => this.beat());
  }

  async onApplicationShutdown() {
    await this.loop?.stop();
  }

  /** The backend's real figures: the capacity limit and what is left of it after provisioned volumes. */
  async build(): Promise<StorageHeartbeat> {
    const cap = await this.volumes.capacity();
    return {
      scId: this.identity.id,
      zone: this.config.zone,
      version: KOALA_VERSION,
      backend: cap.backend,
      capacityBytes: cap.capacityBytes,
      availableBytes: cap.availableBytes,
      sentAt: this.clock.now().toISOString(),
    };
  }

  async beat() {
    try {
      this.bus.publish(Subjects.storageHeartbeat(this.config.zone), StorageHeartbeat, await this.build());
    } catch (err) {
      this.logger.warn({ err }, 'heartbeat failed');
    }
  }
}
