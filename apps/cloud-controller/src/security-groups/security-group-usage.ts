import type { Tx } from './security-groups.repository.js';

/**
 * Port: which instances use a security group. DeleteSecurityGroup refuses with
 * `InvalidGroup.InUse` while this answers any id (InstancesSecurityGroupUsage, bound in the
 * security groups module).
 */
export interface SecurityGroupUsage {
  /** Ids of the non-terminated instances using `groupId` (`tx`: the caller's transaction). */
  instancesUsing(groupId: string, tx: Tx): Promise<string[]>;
}
export const SECURITY_GROUP_USAGE = Symbol('SECURITY_GROUP_USAGE');

/** Port: told after a group's rules changed (the network module republishes the zones of its members). */
export interface SecurityGroupChanges {
  rulesChanged(groupId: string): void;
}
export const SECURITY_GROUP_CHANGES = Symbol('SECURITY_GROUP_CHANGES');
