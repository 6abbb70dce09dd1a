import { Controller, Get, HttpCode, Inject, Optional, Res } from '@nestjs/common';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { KOALA_VERSION } from '@koala/contracts';
import type { NatsBus } from '@koala/messaging';
import { BUS } from '@koala/runtime';
import { CLC_ROLE, SINGLE_PROCESS, type ClcRole } from '../cluster/clc-role.js';

/**
 * `GET /healthz`: 200 when PostgreSQL and NATS answer, 503 otherwise. `koala up` waits on it.
 * Also says which process answered (pid, worker index, whether it runs the background jobs).
 */
@Controller()
export class HealthController {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(BUS) private readonly bus: NatsBus,
    @Optional() @Inject(CLC_ROLE) private readonly role: ClcRole = SINGLE_PROCESS,
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
    return { status: ok ? 'ok' : 'degraded', version: KOALA_VERSION, database, nats, pid: process.pid, worker: this.role.worker ?? null, background: this.role.background };
  }
}
