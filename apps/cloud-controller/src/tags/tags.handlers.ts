import { Injectable } from '@nestjs/common';
import { checkDryRun, Ec2Error, FILTER_SHAPES, PAGE_SHAPES, readFilters, readTags } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { TagsService, type TagToDelete } from './tags.service.js';

/** CreateTags, DeleteTags, DescribeTags. */
@Injectable()
export class TagsHandlers {
  constructor(private readonly tags: TagsService) {}

  @Ec2Action('CreateTags', { params: ['ResourceId.N', 'Tag.N.Key', 'Tag.N.Value', 'DryRun'] })
  async createTags(ctx: Ec2Context) {
    const ids = ctx.params.list('ResourceId', { required: true });
    const tags = readTags(ctx.params);
    if (tags.length === 0) throw Ec2Error.missingParameter('Tag.1.Key');
    checkDryRun(ctx.params);
    await this.tags.createTags(ctx.account, ids, tags);
    return { return: true };
  }

  @Ec2Action('DeleteTags', { params: ['ResourceId.N', 'Tag.N.Key', 'Tag.N.Value', 'DryRun'] })
  async deleteTags(ctx: Ec2Context) {
    const ids = ctx.params.list('ResourceId', { required: true });
    const tags: TagToDelete[] = ctx.params.members('Tag').map((m) => ({ key: m.str('Key', { required: true }), value: m.str('Value') }));
    checkDryRun(ctx.params);
    await this.tags.deleteTags(ctx.account, ids, tags);
    return { return: true };
  }

  @Ec2Action('DescribeTags', { params: [...FILTER_SHAPES, ...PAGE_SHAPES, 'DryRun'] })
  async describeTags(ctx: Ec2Context) {
    const p = ctx.params;
    const filters = readFilters(p);
    const page = { maxResults: p.int('MaxResults'), nextToken: p.str('NextToken') };
    checkDryRun(p);
    const { tags, nextToken } = await this.tags.describeTags(ctx.account, filters, page);
    return { tagSet: tags, nextToken };
  }
}
