import { Inject, Injectable, Optional, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { KOALA_VERSION, NodeHeartbeat, Subjects, type DomainReport, type Resources } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import type { NatsBus, SealKey } from '@koala/messaging';
import { BUS, CLOCK, every, LOGGER, StatusResponder, type Clock, type Periodic } from '@koala/runtime';
import { HOST_PROBE, type HostProbe } from '../host/host-probe.js';
import { NETWORK_STATE_VIEW, type NetworkStateView } from '../network/network-state-view.js';
import { NODE_SEAL_KEY } from '../volumes/volume-handlers.service.js';

/** Capacity already promised to instances on this node (instances module fills this in). */
export const ALLOCATED = Symbol('ALLOCATED');
export type AllocatedResources = () => Resources;

/** Optional: lets the instances module put its view (instance states, pending launches) on the reported domains. */
export const DOMAIN_VIEW = Symbol('DOMAIN_VIEW');
export type DomainView = (domains: DomainReport[]) => DomainReport[];

/** Announces this node to its zone's CC every KOALA_HEARTBEAT_MS (and once at start). */
@Injectable()
export class HeartbeatService implements OnModuleInit, OnApplicationShutdown {
  private loop?: Periodic;

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(HOST_PROBE) private readonly probe: HostProbe,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(ALLOCATED) private readonly allocated: AllocatedResources,
    private readonly status: StatusResponder,
    @Optional() @Inject(DOMAIN_VIEW) private readonly domainView?: DomainView,
    @Optional() @Inject(NETWORK_STATE_VIEW) private readonly network?: NetworkStateView,
    @Optional() @Inject(NODE_SEAL_KEY) private readonly sealKey?: SealKey,
  ) {}

  async onModuleInit() {
    this.status.setDetails(async () => ({ ...(await this.build()) }));
    await this.beat();
    this.loop = every(this.config.heartbeatMs, () => this.beat());
  }

  async onApplicationShutdown() {
    await this.loop?.stop();
  }

  async build(): Promise<NodeHeartbeat> {
    const [{ uri, hypervisor }, total, reported] = await Promise.all([this.probe.describe(), this.probe.total(), this.probe.domains()]);
    const domains = this.domainView ? this.domainView(reported) : reported;
    const used = this.allocated();
    const free = {
      cores: Math.max(0, total.cores - used.cores),
      memoryMiB: Math.max(0, total.memoryMiB - used.memoryMiB),
      diskGiB: Math.max(0, total.diskGiB - used.diskGiB),
    };
    const networkVersion = this.network?.current()?.version;
    return {
      node: this.config.nodeName,
      zone: this.config.zone,
      version: KOALA_VERSION,
      hypervisorUri: uri,
      hypervisor,
      total,
      free,
      domains,
      ...(networkVersion !== undefined ? { networkVersion } : {}),
      ...(this.sealKey ? { sealKey: this.sealKey.publicKey } : {}),
      sentAt: this.clock.now().toISOString(),
    };
  }

  async beat() {
    try {
      this.bus.publish(Subjects.nodeHeartbeat(this.config.zone), NodeHeartbeat, await this.build());
    } catch (err) {
      this.logger.warn({ err }, 'heartbeat failed');
    }
  }
}
