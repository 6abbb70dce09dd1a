import { Injectable } from '@nestjs/common';
import type { SecurityGroupUsage } from './security-group-usage.js';
import type { Tx } from './security-groups.repository.js';

/**
 * SecurityGroupUsage read straight from the instances' tables: the non-terminated instances in a
 * group (DeleteSecurityGroup → InvalidGroup.InUse). A query, not a call into the instances folder,
 * so security groups depend on nothing of instances.
 */
@Injectable()
export class InstancesSecurityGroupUsage implements SecurityGroupUsage {
  async instancesUsing(groupId: string, tx: Tx): Promise<string[]> {
    const rows: Array<{ id: string }> = await tx.query(
      `SELECT i.id FROM instance_security_groups g JOIN instances i ON i.id = g.instance_id
       WHERE g.group_id = $1 AND i.state <> 'terminated' ORDER BY i.id`,
      [groupId],
    );
    return rows.map((r) => r.id);
  }
}
