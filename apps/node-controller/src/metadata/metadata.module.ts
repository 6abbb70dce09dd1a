import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InstanceSpec } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { CLOCK, LOGGER, type Clock } from '@koala/runtime';
import { NETWORK_STATE_VIEW, type NetworkStateView } from '../network/network-state-view.js';
import { TOKEN_CONNMARK } from '../network/network-plan.js';
import { ImdsTokens } from './imds-tokens.js';
import { FsLaunchSpecStore, LAUNCH_SPEC_STORE, launchRecordOf, type LaunchSpecStore } from './launch-spec-store.js';
import { MetadataServer } from './metadata-server.js';
import { RelaySupervisor } from './relay-supervisor.js';

/** The instance manager's hook (`InstanceManagerOptions.launchRecords`). */
export const LAUNCH_RECORDS = Symbol('LAUNCH_RECORDS');
export type LaunchRecords = { put(spec: InstanceSpec, acceptedAt: Date): Promise<void>; remove(instanceId: string): Promise<void> };

/** The compiled relay beside this file (dist/apps/node-controller/src/metadata/relay-main.js). */
export const RELAY_ENTRY = fileURLToPath(new URL('./relay-main.js', import.meta.url));
/** Optional: another relay entry (tests run from sources, where there is no relay-main.js). */
export const METADATA_RELAY_ENTRY = Symbol('METADATA_RELAY_ENTRY');

export const metadataPaths = (config: Pick<KoalaConfig, 'home' | 'nodeName'>) => ({
  socket: join(config.home, 'run', `metadata-${config.nodeName}.sock`),
  records: join(config.home, 'nc', config.nodeName, 'instances'),
});

/**
 * Runs the node's metadata service: the server on its UNIX socket from the start, the relay
 * once the network agent has applied a state that gives this node an address. Without a
 * NetworkStateView (no network agent in this build) it stays off.
 */
@Injectable()
export class MetadataService implements OnApplicationBootstrap, OnApplicationShutdown {
  private server?: MetadataServer;
  private relay?: RelaySupervisor;

  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(LAUNCH_SPEC_STORE) private readonly store: LaunchSpecStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Optional() @Inject(NETWORK_STATE_VIEW) private readonly view?: NetworkStateView,
    @Optional() @Inject(METADATA_RELAY_ENTRY) private readonly relayEntry?: string,
  ) {}

  async onApplicationBootstrap() {
    if (!this.view) {
      this.logger.warn('metadata service off: no network state view in this NC');
      return;
    }
    const logger = this.logger.child({ module: 'metadata' });
    const paths = metadataPaths(this.config);
    const server = new MetadataServer({
      socketPath: paths.socket,
      node: this.config.nodeName,
      region: this.config.region,
      view: this.view,
      store: this.store,
      tokens: new ImdsTokens(this.clock),
      logger,
    });
    // Instances run without a metadata service (they have their config drive): an NC that cannot
    // serve it says so loudly and goes on.
    try {
      await server.start();
      this.server = server;
    } catch (err) {
      logger.error({ err, socket: paths.socket }, 'metadata service off: cannot listen on its socket');
      return;
    }
    const entry = this.relayEntry ?? RELAY_ENTRY;
    if (!existsSync(entry)) {
      logger.error({ entry }, 'metadata service unreachable by guests: the relay is not built');
      return;
    }
    // KOALA_NODE_NETNS belongs to the network agent's configuration; read when present.
    const netns = (this.config as KoalaConfig & { nodeNetns?: string }).nodeNetns;
    this.relay = new RelaySupervisor({
      node: this.config.nodeName,
      view: this.view,
      entry,
      socketPath: paths.socket,
      port: this.config.metadataPort,
      tokenMark: TOKEN_CONNMARK,
      ...(netns ? { netns } : {}),
      logger,
    });
    this.relay.start();
  }

  /** The relay's supervisor once started (status, tests). */
  get relaySupervisor(): RelaySupervisor | undefined {
    return this.relay;
  }

  async onApplicationShutdown() {
    await this.relay?.stop();
    await this.server?.stop();
  }
}

/** Spread into the NC module's providers (they need NETWORK_STATE_VIEW from the same scope). */
export const metadataProviders: Provider[] = [
  { provide: LAUNCH_SPEC_STORE, inject: [KOALA_CONFIG], useFactory: (config: KoalaConfig) => new FsLaunchSpecStore(metadataPaths(config).records) },
  {
    provide: LAUNCH_RECORDS,
    inject: [LAUNCH_SPEC_STORE],
    useFactory: (store: LaunchSpecStore): LaunchRecords => ({ put: (spec, at) => store.put(launchRecordOf(spec, at)), remove: (id) => store.remove(id) }),
  },
  MetadataService,
];
