import { Injectable } from '@nestjs/common';
import type { Tx } from './security-groups.repository.js';

/**
 * Port: which instances use a security group. DeleteSecurityGroup refuses with
 * `InvalidGroup.InUse` while this answers any id. The instances work provides the real
 * implementation (bind `SECURITY_GROUP_USAGE` to it in the security groups module).
 */
export interface SecurityGroupUsage {
  /** Ids of the non-terminated instances using `groupId` (`tx`: the caller's transaction). */
  instancesUsing(groupId: string, tx: Tx): Promise<string[]>;
}
export const SECURITY_GROUP_USAGE = Symbol('SECURITY_GROUP_USAGE');

/** Until instances exist no group is used by any instance. */
@Injectable()
export class NoInstancesSecurityGroupUsage implements SecurityGroupUsage {
  async instancesUsing(): Promise<string[]> {
    return [];
  }
}

/** Port: told after a group's rules changed (the network module republishes the zones of its members). */
export interface SecurityGroupChanges {
  rulesChanged(groupId: string): void;
}
export const SECURITY_GROUP_CHANGES = Symbol('SECURITY_GROUP_CHANGES');
