import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { serveScrape } from '@koala/metrics';

/**
 * `GET /metrics` on the EC2 port (Prometheus text 0.0.4): from loopback, or from elsewhere with
 * `Authorization: Bearer $KOALA_METRICS_TOKEN`; anyone else gets 403 (the EC2 port is public).
 */
@Controller()
export class MetricsController {
  constructor(@Inject(KOALA_CONFIG) private readonly config: KoalaConfig) {}

  @Get('metrics')
  scrape(@Req() req: Request, @Res() res: Response): Promise<void> {
    return serveScrape(req, res, { token: this.config.metricsToken });
  }
}
