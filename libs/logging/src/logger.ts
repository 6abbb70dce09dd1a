import type { LoggerService } from '@nestjs/common';
import { pino, type Logger, type DestinationStream } from 'pino';
import { currentCorrelationId } from './correlation.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** Keys whose values never reach a log line, wherever they appear in a logged object. */
const REDACT = [
  'secret',
  'secretAccessKey',
  'password',
  'chapPassword',
  'privateKey',
  'keyMaterial',
  'authorization',
  '*.secret',
  '*.secretAccessKey',
  '*.password',
  '*.chapPassword',
  '*.privateKey',
  '*.authorization',
];

/**
 * `err` as pino writes it, minus what a database error carries about the data: TypeORM's
 * QueryFailedError holds the bound `parameters` (user input, ciphertexts of secrets) and pg's
 * error a `detail` that quotes row values. The SQL text, the message and the code stay.
 */
export function serializeError(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const out = pino.stdSerializers.err(e) as unknown as Record<string, unknown>;
  delete out.parameters;
  delete out.detail;
  delete out.where;
  const driver = out.driverError as Record<string, unknown> | undefined;
  if (driver && typeof driver === 'object') out.driverError = { code: driver.code, message: driver.message };
  return out;
}

/** One JSON logger per process, tagged with the component; each line carries the correlation id. */
export function createLogger(component: string, level: LogLevel = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { component, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: '[redacted]' },
      serializers: { err: serializeError },
      mixin: () => {
        const correlationId = currentCorrelationId();
        return correlationId ? { correlationId } : {};
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** Adapts pino to Nest's LoggerService so Nest's own messages are JSON too. */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string) {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string) {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string) {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string) {
    this.logger.trace({ context }, String(message));
  }
}
