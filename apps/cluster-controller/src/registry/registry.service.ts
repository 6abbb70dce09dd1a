import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { ClusterSummary, listDomains, listNodes, MAX_DOMAINS_PER_PAGE, NodeHeartbeat, QueueGroups, Subjects } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import type { NatsBus } from '@koala/messaging';
import { BUS, CLOCK, COMPONENT, LOGGER, StatusResponder, type Clock, type ComponentIdentity } from '@koala/runtime';
import { NodeRegistry } from './node-registry.js';

/** Wires the node registry to NATS: heartbeats in, node lists and zone summaries out. */
@Injectable()
export class RegistryService implements OnModuleInit {
  readonly registry: NodeRegistry;
  private readonly listeners: ((hb: NodeHeartbeat) => void)[] = [];

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(COMPONENT) private readonly identity: ComponentIdentity,
    private readonly status: StatusResponder,
  ) {
    this.registry = new NodeRegistry(config.zone, config.nodeTimeoutMs);
  }

  onModuleInit() {
    const zone = this.config.zone;
    this.bus.subscribe(Subjects.nodeHeartbeat(zone), NodeHeartbeat, (hb) => {
      const now = this.clock.now();
      const wasUp = this.registry.isUp(hb.node, now);
      this.registry.record(hb, now);
      for (const l of this.listeners) l(hb);
      if (!wasUp) this.logger.info({ node: hb.node, total: hb.total }, 'node up');
    });
    this.bus.handle(listNodes(zone), () => ({ zone, nodes: this.registry.list(this.clock.now()) }), { queue: QueueGroups.cluster(zone) });
    this.bus.handle(listDomains(zone), (req) => ({ zone, ...this.registry.domainsPage(this.clock.now(), req.after, req.maxDomains ?? MAX_DOMAINS_PER_PAGE) }), {
      queue: QueueGroups.cluster(zone),
    });
    this.bus.answer(Subjects.clustersDescribe, () => this.summary());
    this.status.setDetails(() => ({ policy: this.config.schedulerPolicy, ...this.registry.capacity(this.clock.now()) }));
  }

  /** Called for every heartbeat of this zone (after the registry recorded it). */
  onHeartbeat(listener: (hb: NodeHeartbeat) => void) {
    this.listeners.push(listener);
  }

  summary(): ClusterSummary {
    const cap = this.registry.capacity(this.clock.now());
    return ClusterSummary.parse({
      zone: this.config.zone,
      ccId: this.identity.id,
      state: cap.nodesUp > 0 ? 'available' : cap.nodes > 0 ? 'impaired' : 'available',
      policy: this.config.schedulerPolicy,
      ...cap,
    });
  }
}
