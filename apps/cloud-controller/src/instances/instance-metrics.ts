import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { metrics } from '@koala/metrics';
import { InstancesRepository } from './instances.repository.js';

export const launchesInFlight = metrics.gauge({ name: 'koala_launches_in_flight', help: 'RunInstances calls the CLC is working on (reserve, place, record).' });
export const instancesByState = metrics.gauge({ name: 'koala_instances', help: 'Instances by zone and state (read from the database at scrape time).', labelNames: ['zone', 'state'] });

/** Refreshes `koala_instances` before each scrape. */
@Injectable()
export class InstanceMetrics implements OnModuleInit, OnModuleDestroy {
  private remove?: () => void;
  constructor(@Inject(InstancesRepository) private readonly repo: Pick<InstancesRepository, 'countByState'>) {}

  onModuleInit() {
    this.remove = metrics.addCollector(async () => {
      const rows = await this.repo.countByState();
      instancesByState.reset();
      for (const r of rows) instancesByState.set({ zone: r.zone, state: r.state }, r.n);
    });
  }

  onModuleDestroy() {
    this.remove?.();
  }
}
