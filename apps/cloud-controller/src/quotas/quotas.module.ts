import { Global, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { InstanceTypesModule } from '../instance-types/instance-types.module.js';
import { QuotaService } from './quota.service.js';
import { QUOTAS_STORE, QuotasRepository } from './quotas.repository.js';

/** Per-account quotas, global: every resource module checks its creates with QuotaService. */
@Global()
@Module({
  imports: [InstanceTypesModule],
  providers: [{ provide: QUOTAS_STORE, inject: [DataSource], useFactory: (ds: DataSource) => new QuotasRepository(ds) }, QuotaService],
  exports: [QuotaService],
})
export class QuotasModule {}
