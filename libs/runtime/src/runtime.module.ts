import { Global, Inject, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { hostname } from 'node:os';
import { ComponentStatus, KOALA_VERSION, Subjects } from '@koala/contracts';
import { ConfigModule, KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { NatsBus } from '@koala/messaging';
import { startMetricsServer, type MetricsServer } from '@koala/metrics';
import { BUS, CLOCK, COMPONENT, LOGGER, systemClock, type ComponentIdentity } from './tokens.js';

/** Extra facts a component adds to its status answer (capacity, node count, ...). */
export const STATUS_DETAILS = Symbol('STATUS_DETAILS');
export type StatusDetails = () => Record<string, unknown> | Promise<Record<string, unknown>>;

class StatusResponder implements OnModuleInit, OnApplicationShutdown {
  private details: StatusDetails = () => ({});
  constructor(
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(COMPONENT) private readonly identity: ComponentIdentity,
  ) {}

  setDetails(details: StatusDetails) {
    this.details = details;
  }

  onModuleInit() {
    if (this.identity.answersStatus === false) return;
    this.bus.answer(Subjects.status, async () =>
      ComponentStatus.parse({
        component: this.identity.kind,
        id: this.identity.id,
        version: KOALA_VERSION,
        zone: this.identity.zone,
        host: hostname(),
        pid: process.pid,
        startedAt: this.identity.startedAt.toISOString(),
        details: await this.details(),
      }),
    );
  }

  async onApplicationShutdown() {
    await this.bus.close();
  }
}

export { StatusResponder };

/** A CC's, NC's or SC's own `/metrics` port (KOALA_METRICS_PORT; 0 = off). The CLC uses its API port. */
class MetricsPort implements OnModuleInit, OnApplicationShutdown {
  private server?: MetricsServer;
  constructor(
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(COMPONENT) private readonly identity: ComponentIdentity,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit() {
    if (!this.config.metricsPort || this.identity.kind === 'cloud-controller') return;
    // metrics never take a component down: a port in use is logged and the component goes on
    try {
      this.server = await startMetricsServer({ port: this.config.metricsPort, host: this.config.metricsHost, token: this.config.metricsToken });
      this.logger.info({ port: this.server.port, host: this.config.metricsHost }, 'metrics listening');
    } catch (err) {
      this.logger.error({ err, port: this.config.metricsPort, host: this.config.metricsHost }, 'metrics port not opened');
    }
  }

  async onApplicationShutdown() {
    await this.server?.close();
  }
}

/**
 * Everything a Koala daemon needs: validated config, JSON logger, NATS bus, clock, and an
 * answer on `koala.v1.status`. The bus is connected before the module is built so that a
 * daemon that cannot reach NATS keeps retrying instead of starting half-wired.
 */
@Global()
@Module({})
export class RuntimeModule {
  static forRoot(opts: { config: KoalaConfig; logger: Logger; bus: NatsBus; identity: ComponentIdentity }) {
    return {
      module: RuntimeModule,
      imports: [ConfigModule.forRoot(opts.config)],
      providers: [
        { provide: LOGGER, useValue: opts.logger },
        { provide: BUS, useValue: opts.bus },
        { provide: COMPONENT, useValue: opts.identity },
        { provide: CLOCK, useValue: systemClock },
        StatusResponder,
        MetricsPort,
      ],
      exports: [ConfigModule, LOGGER, BUS, COMPONENT, CLOCK, StatusResponder],
    };
  }
}

export { KOALA_CONFIG };
