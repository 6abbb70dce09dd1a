import type { Tag, TagSpecification } from '@koala/ec2-query';
import type { Caller } from '../../persistence/access-scope.js';
import { tagsFromSpecifications } from '../tag-rules.js';

/**
 * For specs of services that tag what they create: TagsService's four methods those services
 * use, on a map of tags by resource id (the TagSpecification rules are the real ones). `failApply`
 * / `failDelete` make those calls fail as a database would.
 */
export class FakeTags {
  readonly tags = new Map<string, Tag[]>();
  failApply = false;
  failDelete = false;
  checkTagSpecifications(resourceType: string, specs: readonly TagSpecification[]): void {
    tagsFromSpecifications(resourceType, specs);
  }
  async applyTagSpecifications(_caller: Caller, resourceType: string, resourceId: string, specs: readonly TagSpecification[]): Promise<Tag[]> {
    if (this.failApply) throw new Error('tags: database failure');
    const tags = tagsFromSpecifications(resourceType, specs);
    if (tags.length) this.tags.set(resourceId, tags);
    return tags;
  }
  async tagsOf(ids: readonly string[]): Promise<Map<string, Tag[]>> {
    return new Map(ids.map((id) => [id, this.tags.get(id) ?? []]));
  }
  async deleteAllFor(id: string): Promise<void> {
    if (this.failDelete) throw new Error('tags: database failure');
    this.tags.delete(id);
  }
}
