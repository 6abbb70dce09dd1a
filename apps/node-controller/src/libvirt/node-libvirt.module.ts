import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { LOGGER } from '@koala/runtime';
import { NodeLibvirt } from './node-libvirt.js';

/** Injection token of the node controller's one libvirt connection. */
export const NODE_LIBVIRT = Symbol('NODE_LIBVIRT');

/**
 * Provides the NC's single libvirt connection to every module of the node controller (host
 * probe, hypervisor, image cache, volumes) and closes it last.
 */
@Global()
@Module({
  providers: [
    {
      provide: NODE_LIBVIRT,
      inject: [KOALA_CONFIG, LOGGER],
      useFactory: async (config: KoalaConfig, logger: Logger) => {
        const conn = new NodeLibvirt({ uri: config.libvirtUri, socketPath: config.libvirtSocket }, logger);
        await conn.start();
        return conn;
      },
    },
  ],
  exports: [NODE_LIBVIRT],
})
export class NodeLibvirtModule implements OnApplicationShutdown {
  constructor(@Inject(NODE_LIBVIRT) private readonly conn: NodeLibvirt) {}

  async onApplicationShutdown() {
    await this.conn.close();
  }
}
