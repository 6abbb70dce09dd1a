/**
 * PostgreSQL error classes the cloud controller reacts to. Free of TypeORM on purpose: a
 * `QueryFailedError` carries the driver's `code` (and `driverError.code`), a plain `pg` error
 * carries `code`, and in-memory fakes throw `uniqueViolation()` so services decide the same way
 * on either.
 */

/** SQLSTATE unique_violation. */
export const UNIQUE_VIOLATION = '23505';

/** Whether `e` is a unique-constraint violation (a duplicate key). */
export function isUniqueViolation(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as { code?: unknown; driverError?: { code?: unknown } };
  return x.code === UNIQUE_VIOLATION || x.driverError?.code === UNIQUE_VIOLATION;
}

/** The error a fake repository throws where PostgreSQL would report a duplicate key. */
export function uniqueViolation(constraint: string): Error {
  return Object.assign(new Error(`duplicate key value violates unique constraint "${constraint}"`), { code: UNIQUE_VIOLATION, constraint });
}
