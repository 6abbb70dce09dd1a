import { Ec2Error, isValidId, type IdPrefix, type MalformedCode, type NotFoundCode } from '@koala/ec2-query';
import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { Caller } from '../tags/taggable-resources.js';

/**
 * The rows of one resource table a caller may see, sorted by id: its own (the admin: every
 * account's). Explicitly named ids must all be well-formed (`malformed`) and visible
 * (`notFound`, naming every missing one), as EC2 answers. `qb` (alias `alias`) may already
 * narrow the rows, e.g. to keep deleted ones only for a retention period.
 */
export async function findVisible<T extends ObjectLiteral & { id: string }>(
  qb: SelectQueryBuilder<T>,
  alias: string,
  caller: Caller,
  ids: readonly string[],
  codes: { prefix: IdPrefix; malformed: MalformedCode; notFound: NotFoundCode },
): Promise<T[]> {
  for (const id of ids) if (!isValidId(codes.prefix, id)) throw Ec2Error.malformed(codes.malformed, id);
  qb.orderBy(`${alias}.id`, 'ASC');
  if (!caller.isAdmin) qb.andWhere(`${alias}.account_id = :account`, { account: caller.id });
  const wanted = [...new Set(ids)];
  if (wanted.length) qb.andWhere(`${alias}.id IN (:...ids)`, { ids: wanted });
  const rows = await qb.getMany();
  const found = new Set(rows.map((r) => r.id));
  const missing = wanted.filter((id) => !found.has(id));
  if (missing.length) throw Ec2Error.notFound(codes.notFound, missing);
  return rows;
}
