import { Injectable } from '@nestjs/common';
import type { ImageUsage } from './image-usage.port.js';
import type { Tx } from './images.repository.js';

/**
 * ImageUsage read straight from the instances' table: the images (machine, kernel, ramdisk) that
 * non-terminated instances were launched from. A query, not a call into the instances folder, so
 * images depends on nothing of instances (which launches images through ImageLaunchPort).
 */
@Injectable()
export class InstancesImageUsage implements ImageUsage {
  async imagesInUse(imageIds: readonly string[], tx: Tx): Promise<Set<string>> {
    if (!imageIds.length) return new Set();
    const rows: Array<{ id: string }> = await tx.query(
      `SELECT DISTINCT x.id FROM instances i, LATERAL (VALUES (i.image_id), (i.kernel_id), (i.ramdisk_id)) AS x(id)
       WHERE i.state <> 'terminated' AND x.id = ANY($1)`,
      [[...imageIds]],
    );
    return new Set(rows.map((r) => r.id));
  }
}
