import { Module } from '@nestjs/common';
import { join } from 'node:path';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import type { NatsBus } from '@koala/messaging';
import { BUS, CLOCK, LOGGER, type Clock, type DaemonContext } from '@koala/runtime';
import { CONFIG_DRIVE_BUILDER, type ConfigDriveBuilder } from './config-drive/config-drive.js';
import { NoCloudConfigDriveBuilder } from './config-drive/nocloud-config-drive-builder.js';
import { CONSOLE_LOG, FsConsoleLog, type ConsoleLog } from './console/console-log.js';
import { ALLOCATED, DOMAIN_VIEW, HeartbeatService } from './heartbeat/heartbeat.service.js';
import { HOST_PROBE } from './host/host-probe.js';
import { LibvirtHostProbe } from './host/libvirt-host-probe.js';
import { OsHostProbe } from './host/os-host-probe.js';
import { IMAGE_CACHE, type ImageCache } from './images/image-cache.js';
import { LibvirtImageCache } from './images/libvirt-image-cache.js';
import { INSTANCE_EVENTS, JetStreamInstanceEvents, type InstanceEventSink } from './instances/instance-events.js';
import { InstanceManager } from './instances/instance-manager.js';
import { INSTANCE_MANAGER, InstanceHandlers } from './instances/instance.handlers.js';
import { HYPERVISOR, type Hypervisor } from './libvirt/hypervisor.js';
import { LAUNCH_RECORDS, METADATA_RELAY_ENTRY, metadataProviders, type LaunchRecords } from './metadata/metadata.module.js';
import { LibvirtHypervisor } from './libvirt/libvirt-hypervisor.js';
import { NodeLibvirt } from './libvirt/node-libvirt.js';
import { NODE_LIBVIRT, NodeLibvirtModule } from './libvirt/node-libvirt.module.js';
import { NETWORK_AGENT, networkProviders } from './network/network.providers.js';
import type { NetworkAgent } from './network/network-agent.js';
import { VolumeAttacher } from './volumes/volume-attacher.js';
import { VolumesModule } from './volumes/volumes.module.js';

/** Optional replacements (tests): e.g. an image cache that needs no HTTP. */
export interface NodeModuleOverrides {
  imageCache?: (conn: NodeLibvirt) => ImageCache;
  configDrive?: ConfigDriveBuilder;
  /** The metadata relay's entry script (tests run from sources, where relay-main.js is not built). */
  relayEntry?: string;
}

/** The node controller of one hypervisor host. */
export function nodeModule(ctx: Pick<DaemonContext, 'runtime' | 'config'>, overrides: NodeModuleOverrides = {}) {
  const home = ctx.config.home;
  @Module({
    imports: [ctx.runtime, NodeLibvirtModule, VolumesModule],
    providers: [
      {
        provide: HOST_PROBE,
        inject: [NODE_LIBVIRT, LOGGER],
        useFactory: (conn: NodeLibvirt, logger: Logger) => {
          if (conn.isConnected) return new LibvirtHostProbe(conn, { poolName: ctx.config.ncInstancesPool, node: ctx.config.nodeName });
          logger.warn({ uri: ctx.config.libvirtUri, socket: ctx.config.libvirtSocket }, 'libvirt not reachable at start: reporting host resources from the OS');
          return new OsHostProbe(ctx.config.libvirtUri, home);
        },
      },
      {
        provide: HYPERVISOR,
        inject: [NODE_LIBVIRT, LOGGER],
        useFactory: (conn: NodeLibvirt, logger: Logger) =>
          new LibvirtHypervisor(conn, { poolPath: join(home, 'instances'), poolName: ctx.config.ncInstancesPool, domainType: ctx.config.ncDomainType }, logger),
      },
      {
        provide: IMAGE_CACHE,
        inject: [NODE_LIBVIRT, LOGGER],
        useFactory: (conn: NodeLibvirt, logger: Logger) => overrides.imageCache?.(conn) ?? LibvirtImageCache.fromConfig(ctx.config, () => conn.get(), logger),
      },
      { provide: CONFIG_DRIVE_BUILDER, useFactory: () => overrides.configDrive ?? new NoCloudConfigDriveBuilder() },
      { provide: CONSOLE_LOG, useFactory: () => new FsConsoleLog(join(home, 'console')) },
      { provide: INSTANCE_EVENTS, inject: [BUS], useFactory: (bus: NatsBus) => new JetStreamInstanceEvents(bus) },
      {
        provide: INSTANCE_MANAGER,
        inject: [KOALA_CONFIG, HYPERVISOR, IMAGE_CACHE, CONFIG_DRIVE_BUILDER, CONSOLE_LOG, INSTANCE_EVENTS, VolumeAttacher, NETWORK_AGENT, CLOCK, LOGGER, LAUNCH_RECORDS],
        useFactory: (
          config: KoalaConfig,
          hypervisor: Hypervisor,
          images: ImageCache,
          configDrive: ConfigDriveBuilder,
          consoleLog: ConsoleLog,
          events: InstanceEventSink,
          volumes: VolumeAttacher,
          network: NetworkAgent,
          clock: Clock,
          logger: Logger,
          launchRecords: LaunchRecords,
        ) =>
          new InstanceManager({
            zone: config.zone,
            node: config.nodeName,
            stopTimeoutMs: config.ncStopTimeoutMs,
            hypervisor,
            images,
            configDrive,
            consoleLog,
            events,
            volumes,
            network,
            clock,
            logger,
            launchRecords,
          }),
      },
      { provide: ALLOCATED, inject: [INSTANCE_MANAGER], useFactory: (m: InstanceManager) => () => m.allocated() },
      { provide: DOMAIN_VIEW, inject: [INSTANCE_MANAGER], useFactory: (m: InstanceManager) => (d: Parameters<InstanceManager['annotate']>[0]) => m.annotate(d) },
      ...networkProviders,
      InstanceHandlers,
      HeartbeatService,
      ...metadataProviders,
      ...(overrides.relayEntry ? [{ provide: METADATA_RELAY_ENTRY, useValue: overrides.relayEntry }] : []),
    ],
  })
  class NodeControllerModule {}
  return NodeControllerModule;
}
