import { Controller, Get, HttpCode, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { KOALA_VERSION } from '@koala/contracts';
import type { NatsBus } from '@koala/messaging';
import { BUS } from '@koala/runtime';

/** `GET /healthz`: 200 when PostgreSQL and NATS answer, 503 otherwise. `koala up` waits on it. */
@Controller()
export class HealthController {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(BUS) private readonly bus: NatsBus,
  ) {}

  @Get('healthz')
  @HttpCode(200)
  async health(@Res({ passthrough: true }) res: Response) {
    const database = await this.ds
      .query('SELECT 1')
      .then(() => true)
      .catch(() => false);
    const nats = this.bus.isConnected;
    const ok = database && nats;
    if (!ok) res.status(503);
    return { status: ok ? 'ok' : 'degraded', version: KOALA_VERSION, database, nats };
  }
}
