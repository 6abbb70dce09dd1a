import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/**
 * The correlation id follows one user request from the CLC through NATS to a CC and an NC.
 * It rides in the async context inside a process and in the `koala-correlation-id` NATS header
 * between processes; the EC2 request id is used as the correlation id of an API call.
 */
export const CORRELATION_HEADER = 'koala-correlation-id';

const store = new AsyncLocalStorage<{ correlationId: string }>();

export function currentCorrelationId(): string | undefined {
  return store.getStore()?.correlationId;
}

export function withCorrelationId<T>(correlationId: string | undefined, fn: () => T): T {
  return store.run({ correlationId: correlationId ?? randomUUID() }, fn);
}
