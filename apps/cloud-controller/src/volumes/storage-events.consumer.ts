import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { listExports, QueueGroups, StorageEvent, EVENTS_STREAM_SPEC } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import type { EventStream, NatsBus } from '@koala/messaging';
import { BUS, LOGGER } from '@koala/runtime';
import type { Subscription } from '@nats-io/transport-node';
import { SnapshotsService } from '../snapshots/snapshots.service.js';
import { VolumesService } from './volumes.service.js';
import { CLC_ROLE, runsBackground, type ClcRole } from '../cluster/clc-role.js';

/** Subjects of storage events (every zone). */
export const STORAGE_EVENTS_FILTER = 'koala.v1.events.volume.>';

/**
 * The CLC's side of the storage bus: consumes StorageEvents durably (consumer
 * `KOALA_VOLUME_EVENTS_CONSUMER`, default `clc-volumes`; a restarted CLC replays what it missed)
 * and answers the SCs' `listExports` (queue group `clc`).
 */
@Injectable()
export class StorageBusService implements OnApplicationBootstrap, OnModuleDestroy {
  private stream?: EventStream;
  private exportsSub?: Subscription;

  constructor(
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(VolumesService) private readonly volumes: VolumesService,
    @Inject(SnapshotsService) private readonly snapshots: SnapshotsService,
    @Optional() @Inject(CLC_ROLE) private readonly role?: ClcRole,
  ) {}

  async onApplicationBootstrap() {
    if (!runsBackground(this.role)) return; // worker 0 runs it
    this.exportsSub = this.bus.handle(listExports(), async ({ zone }) => ({ exports: await this.volumes.exports(zone) }), { queue: QueueGroups.cloud });
    const stream = this.bus.events(EVENTS_STREAM_SPEC);
    await stream.ensure();
    await stream.consume(this.config.volumeEventsConsumer, STORAGE_EVENTS_FILTER, StorageEvent, async (ev) => {
      if (ev.kind === 'volume') await this.volumes.applyEvent(ev);
      else await this.snapshots.applyEvent(ev);
    });
    this.stream = stream;
    this.logger.info({ consumer: this.config.volumeEventsConsumer }, 'consuming storage events; answering listExports');
  }

  onModuleDestroy() {
    this.stream?.stop();
    this.stream = undefined;
    this.exportsSub?.unsubscribe();
  }
}
