import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { nodeAttachVolume, nodeDetachVolume } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { NatsBus, SealKey } from '@koala/messaging';
import type { Subscription } from '@nats-io/transport-node';
import { BUS } from '@koala/runtime';
import { openAttachRequest, VolumeAttacher } from './volume-attacher.js';

/** The node's key pair for CHAP secrets sealed to it (announced in its heartbeat). */
export const NODE_SEAL_KEY = Symbol('NODE_SEAL_KEY');

/** Answers `nodeAttachVolume` / `nodeDetachVolume` for this node (zone + node from the config). */
@Injectable()
export class VolumeHandlersService implements OnModuleInit, OnApplicationShutdown {
  private subs: Subscription[] = [];

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(BUS) private readonly bus: NatsBus,
    private readonly attacher: VolumeAttacher,
    @Inject(NODE_SEAL_KEY) private readonly sealKey: SealKey,
  ) {}

  onModuleInit() {
    registerVolumeHandlers(this.bus, this.config.zone, this.config.nodeName, this.attacher, this.subs, this.sealKey);
  }

  onApplicationShutdown() {
    for (const s of this.subs.splice(0)) s.unsubscribe();
  }
}

/** The NATS handlers, also used by tests on a private nats-server. */
export function registerVolumeHandlers(bus: NatsBus, zone: string, node: string, attacher: VolumeAttacher, subs: Subscription[] = [], sealKey?: SealKey): Subscription[] {
  subs.push(
    bus.handle(nodeAttachVolume(zone, node), (req) => attacher.attach(openAttachRequest(req, sealKey))),
    bus.handle(nodeDetachVolume(zone, node), async (req) => {
      await attacher.detach(req);
      return { accepted: true };
    }),
  );
  return subs;
}
