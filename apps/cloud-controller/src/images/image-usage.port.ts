import type { Tx } from './images.repository.js';

/**
 * Port: which images non-terminated instances use. DeregisterImage keeps the blobs of such
 * images (the image itself disappears from DescribeImages at once, as in AWS). Bound to
 * InstancesImageUsage in ImagesModule; the instances work calls
 * `ImagesService.collectUnreferencedBlobs()` when instances terminate.
 */
export interface ImageUsage {
  /** The subset of `imageIds` that some non-terminated instance was launched from. */
  imagesInUse(imageIds: readonly string[], tx: Tx): Promise<Set<string>>;
}
export const IMAGE_USAGE = Symbol('IMAGE_USAGE');
