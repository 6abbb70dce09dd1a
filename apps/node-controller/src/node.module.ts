import { Module } from '@nestjs/common';
import type { DaemonContext } from '@koala/runtime';
import { ALLOCATED, HeartbeatService } from './heartbeat/heartbeat.service.js';
import { HOST_PROBE } from './host/host-probe.js';
import { OsHostProbe } from './host/os-host-probe.js';
import { VolumesModule } from './volumes/volumes.module.js';

/** The node controller of one hypervisor host. */
export function nodeModule(ctx: Pick<DaemonContext, 'runtime' | 'config'>) {
  @Module({
    imports: [ctx.runtime, VolumesModule],
    providers: [
      { provide: HOST_PROBE, useValue: new OsHostProbe(ctx.config.libvirtUri, ctx.config.home) },
      { provide: ALLOCATED, useValue: () => ({ cores: 0, memoryMiB: 0, diskGiB: 0 }) },
      HeartbeatService,
    ],
  })
  class NodeControllerModule {}
  return NodeControllerModule;
}
