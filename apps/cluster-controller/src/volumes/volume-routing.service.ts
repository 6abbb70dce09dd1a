import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { attachVolume, detachVolume, nodeAttachVolume, nodeDetachVolume, QueueGroups } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { NatsBus } from '@koala/messaging';
import { BUS } from '@koala/runtime';
import { nodeErrors } from '../node-errors.js';

/** Routes volume attach/detach from the CLC to the NC that runs the instance. */
@Injectable()
export class VolumeRoutingService implements OnModuleInit {
  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(BUS) private readonly bus: NatsBus,
  ) {}

  onModuleInit() {
    const zone = this.config.zone;
    const queue = QueueGroups.cluster(zone);
    // Hot-plug through QEMU's iSCSI initiator logs in to the target first: allow for it.
    this.bus.handle(attachVolume(zone), (req) => this.bus.request(nodeAttachVolume(zone, req.node), req, { timeoutMs: 60_000 }).catch(nodeErrors(req.node)), { queue });
    this.bus.handle(detachVolume(zone), (req) => this.bus.request(nodeDetachVolume(zone, req.node), req, { timeoutMs: 60_000 }).catch(nodeErrors(req.node)), { queue });
  }
}
