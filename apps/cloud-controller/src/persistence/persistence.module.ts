import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** Provides the (already initialised) DataSource; services take repositories from it. */
@Global()
@Module({})
export class PersistenceModule implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  static forRoot(ds: DataSource) {
    return { module: PersistenceModule, providers: [{ provide: DataSource, useValue: ds }], exports: [DataSource] };
  }

  async onApplicationShutdown() {
    if (this.ds.isInitialized) await this.ds.destroy();
  }
}
