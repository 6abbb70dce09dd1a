import { Inject, Injectable } from '@nestjs/common';
import { applyFilters, paginate, type Filter, type FilterSpec, type Tag, type TagSpecification } from '@koala/ec2-query';
import { DataSource, In, type EntityManager } from 'typeorm';
import { TagEntity } from './tag.entity.js';
import { TaggableResources, type Caller } from './taggable-resources.js';
import { MAX_TAGS_PER_RESOURCE, tagLimitExceeded, tagsFromSpecifications, validateTags } from './tag-rules.js';

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

const TAG_FILTERS: FilterSpec<TagEntity> = {
  key: (t) => t.key,
  value: (t) => t.value,
  'resource-id': (t) => t.resourceId,
  'resource-type': (t) => t.resourceType,
};

/** Tags of every resource kind: CreateTags, DeleteTags, DescribeTags and TagSpecification. */
@Injectable()
export class TagsService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    private readonly registry: TaggableResources,
  ) {}

  /** CreateTags: add or overwrite `tags` on every resource (all or nothing). */
  async createTags(caller: Caller, resourceIds: readonly string[], tags: readonly Tag[]): Promise<void> {
    const valid = validateTags(tags);
    await this.ds.transaction(async (em) => {
      const resolved = await this.registry.resolve(em, caller, unique(resourceIds));
      for (const [id, { kind, owner }] of resolved) await this.upsert(em, owner, kind.resourceType, id, valid);
    });
  }

  /** DeleteTags: no `tags` → every tag of the resources. */
  async deleteTags(caller: Caller, resourceIds: readonly string[], tags: readonly TagToDelete[]): Promise<void> {
    await this.ds.transaction(async (em) => {
      const ids = unique(resourceIds);
      await this.registry.resolve(em, caller, ids);
      const repo = em.getRepository(TagEntity);
      if (tags.length === 0) {
        await repo.delete({ resourceId: In(ids) });
        return;
      }
      for (const t of tags) {
        await repo.delete(t.value === undefined ? { resourceId: In(ids), key: t.key } : { resourceId: In(ids), key: t.key, value: t.value });
      }
    });
  }

  /** DescribeTags: the caller's tags (the admin's: everyone's), filtered, sorted by resource id and key. */
  async describeTags(
    caller: Caller,
    filters: readonly Filter[],
    page: { maxResults?: number; nextToken?: string },
  ): Promise<{ tags: TagDescription[]; nextToken?: string }> {
    const rows = await this.ds.getRepository(TagEntity).find({ where: caller.isAdmin ? {} : { accountId: caller.id } });
    const matching = applyFilters(rows, filters, TAG_FILTERS).sort((a, b) => cmp(sortKey(a), sortKey(b)));
    const { page: items, nextToken } = paginate(matching, { ...page, keyOf: sortKey, scope: 'DescribeTags' });
    return {
      tags: items.map((t) => ({ resourceId: t.resourceId, resourceType: t.resourceType, key: t.key, value: t.value })),
      nextToken,
    };
  }

  /**
   * Tags requested by a create call's `TagSpecification.N`, written with `em` (the create's
   * transaction) so a bad tag leaves nothing half-written.
   */
  async applyTagSpecifications(
    caller: Caller,
    resourceType: string,
    resourceId: string,
    specs: readonly TagSpecification[],
    em: EntityManager = this.ds.manager,
  ): Promise<Tag[]> {
    const tags = tagsFromSpecifications(resourceType, specs);
    if (tags.length) await this.upsert(em, caller.id, resourceType, resourceId, tags);
    return tags;
  }

  /** Validate TagSpecifications without writing (call before a create to fail early). */
  checkTagSpecifications(resourceType: string, specs: readonly TagSpecification[]): void {
    tagsFromSpecifications(resourceType, specs);
  }

  /** Tags of each of `resourceIds` (every id present in the map, possibly with []), sorted by key. */
  async tagsOf(resourceIds: readonly string[], em: EntityManager = this.ds.manager): Promise<Map<string, Tag[]>> {
    const out = new Map<string, Tag[]>(resourceIds.map((id) => [id, []]));
    if (resourceIds.length === 0) return out;
    const rows = await em.getRepository(TagEntity).find({ where: { resourceId: In(unique(resourceIds)) }, order: { key: 'ASC' } });
    for (const r of rows) out.get(r.resourceId)?.push({ key: r.key, value: r.value });
    return out;
  }

  /** Removes every tag of a deleted resource (call inside the delete's transaction). */
  async deleteAllFor(resourceId: string, em: EntityManager = this.ds.manager): Promise<void> {
    await em.getRepository(TagEntity).delete({ resourceId });
  }

  private async upsert(em: EntityManager, accountId: string, resourceType: string, resourceId: string, tags: readonly Tag[]) {
    await em
      .createQueryBuilder()
      .insert()
      .into(TagEntity)
      .values(tags.map((t) => ({ accountId, resourceType, resourceId, key: t.key, value: t.value })))
      .orUpdate(['value'], ['resource_id', 'key'])
      .execute();
    const count = await em.getRepository(TagEntity).count({ where: { resourceId } });
    if (count > MAX_TAGS_PER_RESOURCE) throw tagLimitExceeded();
  }
}

function unique(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}
function sortKey(t: TagEntity): string {
  return `${t.resourceId}\u0000${t.key}`;
}
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `tagSet` items as EC2 renders them. */
export function tagSet(tags: readonly Tag[] | undefined): Array<{ key: string; value: string }> {
  return (tags ?? []).map((t) => ({ key: t.key, value: t.value }));
}
