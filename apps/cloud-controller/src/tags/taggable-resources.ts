import { Injectable } from '@nestjs/common';
import { Ec2Error, idPrefixOf, isValidId, type NotFoundCode } from '@koala/ec2-query';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import type { Tx } from './tags.repository.js';

// Until every resource folder imports these from their new homes (Caller: persistence/access-scope.js).
export type { Caller } from '../persistence/access-scope.js';
export { entityOwners } from './tags.repository.js';

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
  /** Owner account of each of `ids` that exists (the kind's repository answers it, in `tx`). */
  owners(tx: Tx, ids: readonly string[]): Promise<Map<string, string>>;
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
   * Resolves every id to its kind and owner; an id that does not exist, or that the caller may
   * not change (the one access rule: owner or admin), → the kind's NotFound code.
   */
  async resolve(tx: Tx, caller: Caller, ids: readonly string[]): Promise<Map<string, { kind: TaggableKind; owner: string }>> {
    const byKind = new Map<TaggableKind, string[]>();
    for (const id of ids) {
      const kind = this.kindOf(id);
      byKind.set(kind, [...(byKind.get(kind) ?? []), id]);
    }
    const out = new Map<string, { kind: TaggableKind; owner: string }>();
    for (const [kind, kindIds] of byKind) {
      const owners = await kind.owners(tx, kindIds);
      for (const id of kindIds) {
        const owner = owners.get(id);
        if (owner === undefined || !allows(accessOf(caller, { accountId: owner }), 'change')) throw Ec2Error.notFound(kind.notFoundCode, id);
        out.set(id, { kind, owner });
      }
    }
    return out;
  }
}
