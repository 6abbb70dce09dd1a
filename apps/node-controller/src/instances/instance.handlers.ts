import { Inject, Injectable, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { nodeConsoleOutput, nodeInstanceAction, runInstance } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { NatsBus } from '@koala/messaging';
import { BUS } from '@koala/runtime';
import type { Subscription } from '@nats-io/transport-node';
import { InstanceManager } from './instance-manager.js';

export const INSTANCE_MANAGER = Symbol('INSTANCE_MANAGER');

/** The NC's instance commands on NATS: one line each into the InstanceManager. */
@Injectable()
export class InstanceHandlers implements OnModuleInit, BeforeApplicationShutdown {
  private subs: Subscription[] = [];

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(INSTANCE_MANAGER) private readonly instances: InstanceManager,
  ) {}

  async onModuleInit() {
    await this.instances.start();
    const { zone, nodeName: node } = this.config;
    this.subs = [
      this.bus.handle(runInstance(zone, node), (spec) => this.instances.run(spec)),
      this.bus.handle(nodeInstanceAction(zone, node), (req) => this.instances.action(req.instanceId, req.action, { force: req.force })),
      this.bus.handle(nodeConsoleOutput(zone, node), (req) => this.instances.consoleOutput(req.instanceId)),
    ];
  }

  async beforeApplicationShutdown() {
    for (const s of this.subs) s.unsubscribe();
    await this.instances.stop();
  }
}
