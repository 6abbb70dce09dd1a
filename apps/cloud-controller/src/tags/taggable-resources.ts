import { Injectable } from '@nestjs/common';
import { Ec2Error, idPrefixOf, isValidId, type NotFoundCode } from '@koala/ec2-query';
import { In, type EntityManager, type EntityTarget, type FindOptionsWhere, type ObjectLiteral } from 'typeorm';

export type { Caller } from '../persistence/access-scope.js';
import type { Caller } from '../persistence/access-scope.js';

/**
 * A kind of resource that can carry tags, registered by its service (key pairs, groups,
 * addresses now; instances, volumes, snapshots, images later).
 */
export interface TaggableKind {
  /** Id prefix without the dash: `key`, `sg`, `eipalloc`. */
  prefix: string;
  /** EC2 resource type (DescribeTags `resourceType`, TagSpecification `ResourceType`). */
  resourceType: string;
  /** Error code for an id of this kind that does not exist (or is not visible). */
  notFoundCode: NotFoundCode;
  /** Owner account of each of `ids` that exists. */
  owners(em: EntityManager, ids: readonly string[]): Promise<Map<string, string>>;
}

/**
 * `TaggableKind.owners` for a resource table with an `accountId` column (every Koala resource):
 * the owner of each id that exists, keyed by `idColumn` (default `id`); `where` excludes rows
 * that no longer count (deleted volumes, deregistered images).
 */
export function entityOwners<T extends ObjectLiteral & { accountId: string }>(
  entity: EntityTarget<T>,
  opts: { idColumn?: keyof T & string; where?: FindOptionsWhere<T> } = {},
): TaggableKind['owners'] {
  const idColumn = opts.idColumn ?? 'id';
  return async (em, ids) => {
    const where = { ...opts.where, [idColumn]: In([...ids]) } as FindOptionsWhere<T>;
    const rows = await em.getRepository(entity).find({ where, select: { [idColumn]: true, accountId: true } as never });
    return new Map(rows.map((r) => [r[idColumn] as string, r.accountId]));
  };
}

/** The registry of taggable kinds, keyed by id prefix. */
@Injectable()
export class TaggableResources {
  private readonly kinds = new Map<string, TaggableKind>();

  register(kind: TaggableKind): void {
    const existing = this.kinds.get(kind.prefix);
    if (existing && existing !== kind && existing.resourceType !== kind.resourceType) {
      throw new Error(`taggable prefix ${kind.prefix} registered twice`);
    }
    this.kinds.set(kind.prefix, kind);
  }

  /** The kind of `id`; unknown prefix or malformed id → `InvalidID`. */
  kindOf(id: string): TaggableKind {
    const prefix = idPrefixOf(id);
    const kind = prefix ? this.kinds.get(prefix) : undefined;
    if (!kind || !isValidId(kind.prefix, id)) throw Ec2Error.malformed('InvalidID', id);
    return kind;
  }

  /** A registered kind by resource type (e.g. `security-group`), if any. */
  byResourceType(resourceType: string): TaggableKind | undefined {
    for (const k of this.kinds.values()) if (k.resourceType === resourceType) return k;
    return undefined;
  }

  /**
   * Resolves every id to its kind and owner; an id that does not exist, or that belongs to
   * another account and the caller is not the admin, → the kind's NotFound code.
   */
  async resolve(em: EntityManager, caller: Caller, ids: readonly string[]): Promise<Map<string, { kind: TaggableKind; owner: string }>> {
    const byKind = new Map<TaggableKind, string[]>();
    for (const id of ids) {
      const kind = this.kindOf(id);
      byKind.set(kind, [...(byKind.get(kind) ?? []), id]);
    }
    const out = new Map<string, { kind: TaggableKind; owner: string }>();
    for (const [kind, kindIds] of byKind) {
      const owners = await kind.owners(em, kindIds);
      for (const id of kindIds) {
        const owner = owners.get(id);
        if (owner === undefined || (owner !== caller.id && !caller.isAdmin)) throw Ec2Error.notFound(kind.notFoundCode, id);
        out.set(id, { kind, owner });
      }
    }
    return out;
  }
}
