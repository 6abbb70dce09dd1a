import { Module } from '@nestjs/common';
import { join } from 'node:path';
import { SealKey } from '@koala/messaging';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { LOGGER } from '@koala/runtime';
import { NODE_LIBVIRT } from '../libvirt/node-libvirt.module.js';
import type { NodeLibvirt } from '../libvirt/node-libvirt.js';
import { VolumeAttacher } from './volume-attacher.js';
import { NODE_SEAL_KEY, VolumeHandlersService } from './volume-handlers.service.js';

/**
 * EBS-style volumes on this node: iSCSI hot-plug into running domains, over the NC's one
 * libvirt connection (NodeLibvirtModule). Exports `VolumeAttacher` so the instance manager can
 * call `releaseAll(instanceId)` on terminate.
 */
@Module({
  providers: [
    {
      provide: VolumeAttacher,
      inject: [KOALA_CONFIG, LOGGER, NODE_LIBVIRT],
      useFactory: (config: KoalaConfig, logger: Logger, libvirt: NodeLibvirt) => new VolumeAttacher({ libvirt, node: config.nodeName, logger: logger.child({ module: 'volumes' }) }),
    },
    { provide: NODE_SEAL_KEY, inject: [KOALA_CONFIG], useFactory: (config: KoalaConfig) => SealKey.loadOrCreate(join(config.home, 'keys', `nc-${config.nodeName}.pem`)) },
    VolumeHandlersService,
  ],
  exports: [VolumeAttacher, NODE_SEAL_KEY],
})
export class VolumesModule {}
