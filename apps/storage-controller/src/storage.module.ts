import { Module } from '@nestjs/common';
import type { DaemonContext } from '@koala/runtime';
import { StorageHeartbeatService } from './heartbeat/heartbeat.service.js';

/** The storage controller of one availability zone. */
export function storageModule(ctx: Pick<DaemonContext, 'runtime'>) {
  @Module({ imports: [ctx.runtime], providers: [StorageHeartbeatService] })
  class StorageControllerModule {}
  return StorageControllerModule;
}
