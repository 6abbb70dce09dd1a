import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { ZoneNetworkState } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import { every, LOGGER, type Periodic } from '@koala/runtime';
import { NETWORK_BUS, type NetworkBusPort } from './network-bus.port.js';
import { NetworkService } from './network.service.js';
import { CLC_ROLE, runsBackground, type ClcRole } from '../cluster/clc-role.js';

/**
 * Sends each zone's desired network state to its nodes: after every change (`changed`), every
 * KOALA_NETWORK_REPUBLISH_MS, and to a node that asks (`networkState` request). Publications of
 * one zone never overlap: a change during a build runs one more build after it, so the last
 * state sent is never older than the last change.
 */
@Injectable()
export class NetworkPublisher implements OnApplicationBootstrap, OnModuleDestroy {
  private loop?: Periodic;
  private stopServing?: () => void;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();

  constructor(
    @Inject(NetworkService) private readonly network: NetworkService,
    @Inject(NETWORK_BUS) private readonly bus: NetworkBusPort,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Optional() @Inject(CLC_ROLE) private readonly role?: ClcRole,
  ) {}

  onApplicationBootstrap() {
    if (!runsBackground(this.role)) return; // worker 0 runs it
    this.stopServing = this.bus.serve(async (zone, node) => {
      // Only zones this cloud knows: clouds sharing one NATS must not answer for each other.
      if (!(await this.knows(zone))) return undefined;
      // The asking node is seen: it gets its address now if it has none yet.
      return this.network.state(zone, [node]);
    });
    this.loop = every(this.config.networkRepublishMs, () => this.publishAll(), { onError: (err) => this.logger.warn({ err }, 'network state republish failed') });
  }

  async onModuleDestroy() {
    this.stopServing?.();
    await this.loop?.stop();
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private async knows(zone: string): Promise<boolean> {
    return zone in this.config.zoneSubnets || (await this.network.zones()).includes(zone);
  }

  /** The zones' networks changed: publish their states (in the background; failures logged, the republish retries). */
  changed(zones: Iterable<string>): void {
    for (const zone of new Set(zones)) void this.publish(zone);
  }

  /** A security group's rules changed: the zones where it has members (SecurityGroupChanges). */
  rulesChanged(groupId: string): void {
    void this.network.zonesOfGroup(groupId).then(
      (zones) => this.changed(zones),
      (err) => this.logger.warn({ err, groupId }, 'zones of a changed group not found; the republish catches up'),
    );
  }

  /** Builds and publishes the zone's state; resolves once a state built after this call was sent. */
  publish(zone: string): Promise<void> {
    const running = this.inFlight.get(zone);
    if (running) {
      this.again.add(zone);
      return running.then(() => this.inFlight.get(zone));
    }
    const run = (async () => {
      try {
        do {
          this.again.delete(zone);
          try {
            const state: ZoneNetworkState = await this.network.state(zone);
            this.bus.publish(state);
          } catch (err) {
            this.logger.warn({ err, zone }, 'network state not published; the republish retries');
          }
        } while (this.again.has(zone));
      } finally {
        this.inFlight.delete(zone);
      }
    })();
    this.inFlight.set(zone, run);
    return run;
  }

  async publishAll(): Promise<void> {
    for (const zone of await this.network.zones()) await this.publish(zone);
  }
}
