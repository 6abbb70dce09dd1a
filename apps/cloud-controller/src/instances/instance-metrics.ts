import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { metrics } from '@koala/metrics';

export const launchesInFlight = metrics.gauge({ name: 'koala_launches_in_flight', help: 'RunInstances calls the CLC is working on (reserve, place, record).' });
export const instancesByState = metrics.gauge({ name: 'koala_instances', help: 'Instances by zone and state (read from the database at scrape time).', labelNames: ['zone', 'state'] });

/** Counts of instances by zone and state: one grouped query. */
export function countInstancesByState(ds: DataSource): Promise<Array<{ zone: string; state: string; n: number }>> {
  return ds.query(`SELECT zone, state, count(*)::int AS n FROM instances GROUP BY zone, state`);
}

/** Refreshes `koala_instances` before each scrape. */
@Injectable()
export class InstanceMetrics implements OnModuleInit, OnModuleDestroy {
  private remove?: () => void;
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  onModuleInit() {
    this.remove = metrics.addCollector(async () => {
      const rows = await countInstancesByState(this.ds);
      instancesByState.reset();
      for (const r of rows) instancesByState.set({ zone: r.zone, state: r.state }, r.n);
    });
  }

  onModuleDestroy() {
    this.remove?.();
  }
}
