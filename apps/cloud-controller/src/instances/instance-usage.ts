import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { SecurityGroupUsage } from '../security-groups/security-group-usage.js';

/** SecurityGroupUsage: the non-terminated instances in a group (DeleteSecurityGroup → InvalidGroup.InUse). */
@Injectable()
export class InstancesSecurityGroupUsage implements SecurityGroupUsage {
  async instancesUsing(groupId: string, em: EntityManager): Promise<string[]> {
    const rows: Array<{ id: string }> = await em.query(
      `SELECT i.id FROM instance_security_groups g JOIN instances i ON i.id = g.instance_id
       WHERE g.group_id = $1 AND i.state <> 'terminated' ORDER BY i.id`,
      [groupId],
    );
    return rows.map((r) => r.id);
  }
}

/** The images module's ImageUsage port (images/image-usage.port.ts): the images that non-terminated instances were launched from (for the images module to bind). */
@Injectable()
export class InstancesImageUsage {
  async imagesInUse(imageIds: readonly string[], em: EntityManager): Promise<Set<string>> {
    if (!imageIds.length) return new Set();
    const rows: Array<{ id: string }> = await em.query(
      `SELECT DISTINCT x.id FROM instances i, LATERAL (VALUES (i.image_id), (i.kernel_id), (i.ramdisk_id)) AS x(id)
       WHERE i.state <> 'terminated' AND x.id = ANY($1)`,
      [[...imageIds]],
    );
    return new Set(rows.map((r) => r.id));
  }
}
