import { Ec2Error, type Tag, type TagSpecification } from '@koala/ec2-query';

/** AWS limits on user tags. */
export const MAX_TAGS_PER_RESOURCE = 50;
export const MAX_TAG_KEY_LENGTH = 128;
export const MAX_TAG_VALUE_LENGTH = 256;

/** Length in Unicode characters (what AWS counts), not UTF-16 code units. */
function chars(s: string): number {
  return [...s].length;
}

/** Validates keys and values; `aws:` keys are reserved. Later duplicates of a key win. */
export function validateTags(tags: readonly Tag[], param = 'Tag'): Tag[] {
  const byKey = new Map<string, string>();
  tags.forEach((t, i) => {
    const n = i + 1;
    if (t.key === '') throw Ec2Error.invalidParameterValue(`${param}.${n}.Key`, '', 'Tag key must not be empty.');
    if (chars(t.key) > MAX_TAG_KEY_LENGTH) {
      throw new Ec2Error('InvalidParameterValue', `Tag key exceeds the maximum length of ${MAX_TAG_KEY_LENGTH} characters`);
    }
    if (chars(t.value) > MAX_TAG_VALUE_LENGTH) {
      throw new Ec2Error('InvalidParameterValue', `Tag value exceeds the maximum length of ${MAX_TAG_VALUE_LENGTH} characters`);
    }
    if (t.key.toLowerCase().startsWith('aws:')) {
      throw new Ec2Error('InvalidParameterValue', "Tag keys starting with 'aws:' are reserved for internal use");
    }
    byKey.set(t.key, t.value);
  });
  if (byKey.size > MAX_TAGS_PER_RESOURCE) throw tagLimitExceeded();
  return [...byKey].map(([key, value]) => ({ key, value }));
}

export function tagLimitExceeded(): Ec2Error {
  return new Ec2Error('TagLimitExceeded', 'The maximum number of Tags for a resource has been reached.');
}

/**
 * The tags a create call asked for: every `TagSpecification.N` must name `resourceType`
 * (`InvalidParameterValue` otherwise); tags of several specifications are merged.
 */
export function tagsFromSpecifications(resourceType: string, specs: readonly TagSpecification[]): Tag[] {
  const all: Tag[] = [];
  for (const s of specs) {
    if (s.resourceType !== resourceType) {
      throw new Ec2Error('InvalidParameterValue', `'${s.resourceType}' is not a valid taggable resource type for this operation.`);
    }
    all.push(...s.tags);
  }
  return validateTags(all, 'TagSpecification.N.Tag');
}
