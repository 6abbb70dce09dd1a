import { Inject, Injectable } from '@nestjs/common';
import { applyFilters, paginate, type Filter, type FilterSpec, type Tag, type TagSpecification } from '@koala/ec2-query';
import type { Caller } from '../persistence/access-scope.js';
import { TaggableResources } from './taggable-resources.js';
import { MAX_TAGS_PER_RESOURCE, tagLimitExceeded, tagsFromSpecifications, validateTags } from './tag-rules.js';
import { TagsRepository, type TagRow, type TagsStore, type Tx } from './tags.repository.js';

/** A tag to delete: `value` undefined → whatever the value; a string → only when equal. */
export interface TagToDelete {
  key: string;
  value?: string;
}

export type TagDescription = {
  resourceId: string;
  resourceType: string;
  key: string;
  value: string;
};

const TAG_FILTERS: FilterSpec<TagRow> = {
  key: (t) => t.key,
  value: (t) => t.value,
  'resource-id': (t) => t.resourceId,
  'resource-type': (t) => t.resourceType,
};

/**
 * Tags of every resource kind: CreateTags, DeleteTags, DescribeTags and TagSpecification.
 * Methods taking a `tx` run in the caller's transaction (a create's or delete's), else on the pool.
 */
@Injectable()
export class TagsService {
  constructor(
    @Inject(TagsRepository) private readonly repo: TagsStore,
    @Inject(TaggableResources) private readonly registry: TaggableResources,
  ) {}

  /** CreateTags: add or overwrite `tags` on every resource (all or nothing). */
  async createTags(caller: Caller, resourceIds: readonly string[], tags: readonly Tag[]): Promise<void> {
    const valid = validateTags(tags);
    await this.repo.transaction(async (tx) => {
      const resolved = await this.registry.resolve(tx, caller, unique(resourceIds));
      for (const [id, { kind, owner }] of resolved) await this.upsert(tx, owner, kind.resourceType, id, valid);
    });
  }

  /** DeleteTags: no `tags` → every tag of the resources. */
  async deleteTags(caller: Caller, resourceIds: readonly string[], tags: readonly TagToDelete[]): Promise<void> {
    await this.repo.transaction(async (tx) => {
      const ids = unique(resourceIds);
      await this.registry.resolve(tx, caller, ids);
      if (tags.length === 0) return this.repo.delete(tx, ids);
      for (const t of tags) await this.repo.delete(tx, ids, t);
    });
  }

  /** DescribeTags: the tags the caller may see (the admin: everyone's), filtered, sorted by resource id and key. */
  async describeTags(caller: Caller, filters: readonly Filter[], page: { maxResults?: number; nextToken?: string }): Promise<{ tags: TagDescription[]; nextToken?: string }> {
    const rows = await this.repo.visible(caller);
    const matching = applyFilters(rows, filters, TAG_FILTERS).sort((a, b) => cmp(sortKey(a), sortKey(b)));
    const { page: items, nextToken } = paginate(matching, { ...page, keyOf: sortKey, scope: 'DescribeTags' });
    return {
      tags: items.map((t) => ({ resourceId: t.resourceId, resourceType: t.resourceType, key: t.key, value: t.value })),
      nextToken,
    };
  }

  /**
   * Tags requested by a create call's `TagSpecification.N`, written in `tx` (the create's
   * transaction) so a bad tag leaves nothing half-written.
   */
  async applyTagSpecifications(caller: Caller, resourceType: string, resourceId: string, specs: readonly TagSpecification[], tx?: Tx): Promise<Tag[]> {
    const tags = tagsFromSpecifications(resourceType, specs);
    if (tags.length) await this.upsert(tx, caller.id, resourceType, resourceId, tags);
    return tags;
  }

  /** Validate TagSpecifications without writing (call before a create to fail early). */
  checkTagSpecifications(resourceType: string, specs: readonly TagSpecification[]): void {
    tagsFromSpecifications(resourceType, specs);
  }

  /** Tags of each of `resourceIds` (every id present in the map, possibly with []), sorted by key. */
  async tagsOf(resourceIds: readonly string[], tx?: Tx): Promise<Map<string, Tag[]>> {
    const out = new Map<string, Tag[]>(resourceIds.map((id) => [id, []]));
    if (resourceIds.length === 0) return out;
    for (const r of await this.repo.of(tx, unique(resourceIds))) out.get(r.resourceId)?.push({ key: r.key, value: r.value });
    return out;
  }

  /** Removes every tag of a deleted resource (call inside the delete's transaction). */
  async deleteAllFor(resourceId: string, tx?: Tx): Promise<void> {
    await this.repo.delete(tx, [resourceId]);
  }

  private async upsert(tx: Tx | undefined, accountId: string, resourceType: string, resourceId: string, tags: readonly Tag[]) {
    const count = await this.repo.upsert(tx, { accountId, resourceType, resourceId }, tags);
    if (count > MAX_TAGS_PER_RESOURCE) throw tagLimitExceeded();
  }
}

/** TagsService outside Nest (the `koala` CLI, tests): on `ds`, for the kinds registered in `registry`. */
export function createTagsService(ds: ConstructorParameters<typeof TagsRepository>[0], registry: TaggableResources): TagsService {
  return new TagsService(new TagsRepository(ds), registry);
}

function unique(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}
function sortKey(t: TagRow): string {
  return `${t.resourceId}\u0000${t.key}`;
}
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `tagSet` items as EC2 renders them. */
export function tagSet(tags: readonly Tag[] | undefined): Array<{ key: string; value: string }> {
  return (tags ?? []).map((t) => ({ key: t.key, value: t.value }));
}
