import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { LibvirtReconnector } from '@koala/libvirt';
import type { Logger } from '@koala/logging';
import { LOGGER } from '@koala/runtime';
import { VolumeAttacher } from './volume-attacher.js';
import { VolumeHandlersService } from './volume-handlers.service.js';

/** The libvirt connection of the volumes module (its own, until the NC shares one). */
export const VOLUMES_LIBVIRT = Symbol('VOLUMES_LIBVIRT');

/**
 * EBS-style volumes on this node: iSCSI hot-plug into running domains. Exports `VolumeAttacher`
 * so the instance manager can call `releaseAll(instanceId)` on terminate.
 */
@Module({
  providers: [
    {
      provide: VOLUMES_LIBVIRT,
      inject: [KOALA_CONFIG],
      useFactory: (config: KoalaConfig) => new LibvirtReconnector({ uri: config.libvirtUri, socketPath: config.libvirtSocket }, { attempts: 5 }),
    },
    {
      provide: VolumeAttacher,
      inject: [KOALA_CONFIG, LOGGER, VOLUMES_LIBVIRT],
      useFactory: (config: KoalaConfig, logger: Logger, libvirt: LibvirtReconnector) =>
        new VolumeAttacher({ libvirt, node: config.nodeName, logger: logger.child({ module: 'volumes' }) }),
    },
    VolumeHandlersService,
  ],
  exports: [VolumeAttacher],
})
export class VolumesModule implements OnApplicationShutdown {
  constructor(@Inject(VOLUMES_LIBVIRT) private readonly libvirt: LibvirtReconnector) {}

  async onApplicationShutdown() {
    await this.libvirt.close();
  }
}
