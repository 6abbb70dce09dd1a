import { Global, Module } from '@nestjs/common';
import { loadConfig, type KoalaConfig } from './schema.js';

/** Injection token for the validated configuration. */
export const KOALA_CONFIG = Symbol('KOALA_CONFIG');

@Global()
@Module({})
export class ConfigModule {
  /** Provides an already validated config (load it in main.ts so a bad value stops the process early). */
  static forRoot(config: KoalaConfig = loadConfig()) {
    return { module: ConfigModule, providers: [{ provide: KOALA_CONFIG, useValue: config }], exports: [KOALA_CONFIG] };
  }
}
