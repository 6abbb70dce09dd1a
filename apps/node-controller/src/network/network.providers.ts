import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit, type Provider } from '@nestjs/common';
import { networkState, Subjects, ZoneNetworkState } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import type { NatsBus } from '@koala/messaging';
import { BUS, LOGGER } from '@koala/runtime';
import type { Subscription } from '@nats-io/transport-node';
import type { NodeLibvirt } from '../libvirt/node-libvirt.js';
import { NODE_LIBVIRT } from '../libvirt/node-libvirt.module.js';
import { ExecHostNetCommands } from './host-net-commands.js';
import { LibvirtNetworkPort } from './libvirt-network-port.js';
import { NetworkAgent } from './network-agent.js';
import { HOST_NET_COMMANDS, NETWORK_STATE_VIEW, type HostNetCommands } from './network-state-view.js';

export const NETWORK_AGENT = Symbol('NETWORK_AGENT');

/**
 * Whether this node networks its guests: never on libvirt's test driver (simulated hosts), and
 * only where an uplink or a namespace is configured, so an NC on a development machine never
 * starts a bridge or touches the machine's own firewall.
 */
export const networkingEnabled = (c: Pick<KoalaConfig, 'libvirtUri' | 'nodeNetns' | 'nodeUplink'>) => !c.libvirtUri.startsWith('test:') && !!(c.nodeNetns || c.nodeUplink);

/** Subscribes the agent to the zone's network state and runs it for the NC's lifetime. */
@Injectable()
export class NetworkAgentService implements OnModuleInit, OnApplicationShutdown {
  private sub?: Subscription;

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(NETWORK_AGENT) private readonly agent: NetworkAgent,
  ) {}

  onModuleInit() {
    if (!this.agent.enabled) return;
    this.sub = this.bus.subscribe(Subjects.zoneNetworkState(this.config.zone), ZoneNetworkState, (state) => {
      this.agent.receive(state);
    });
    this.agent.start();
  }

  async onApplicationShutdown() {
    this.sub?.unsubscribe();
    await this.agent.stop();
  }
}

/** The network agent and its ports (NETWORK_STATE_VIEW and HOST_NET_COMMANDS serve the metadata service too). */
export const networkProviders: Provider[] = [
  { provide: HOST_NET_COMMANDS, inject: [KOALA_CONFIG], useFactory: (c: KoalaConfig) => new ExecHostNetCommands({ netns: c.nodeNetns }) },
  {
    provide: NETWORK_AGENT,
    inject: [KOALA_CONFIG, NODE_LIBVIRT, HOST_NET_COMMANDS, BUS, LOGGER],
    useFactory: (c: KoalaConfig, conn: NodeLibvirt, host: HostNetCommands, bus: NatsBus, logger: Logger) =>
      new NetworkAgent({
        zone: c.zone,
        config: { node: c.nodeName, bridge: c.nodeBridge, uplink: c.nodeUplink, publicIf: c.nodePublicIf, metadataPort: c.metadataPort },
        enabled: networkingEnabled(c),
        host,
        libvirt: new LibvirtNetworkPort(conn),
        fetchState: () => bus.request(networkState(), { zone: c.zone, node: c.nodeName }, { timeoutMs: 5000 }),
        logger,
      }),
  },
  { provide: NETWORK_STATE_VIEW, useExisting: NETWORK_AGENT },
  NetworkAgentService,
];
