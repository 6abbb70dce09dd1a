/**
 * NATS subjects: a COMPATIBILITY CONTRACT between CLC, CC, NC and SC.
 * Renaming one breaks a running cluster mid-upgrade; add a new version (`koala.v2...`) instead.
 *
 * Layout: koala.v1.<scope>...
 *   koala.v1.status                          every component answers (scatter-gather)
 *   koala.v1.clusters.describe               every CC answers with its zone summary
 *   koala.v1.clc.<command>                   requests to the CLCs (queue group `clc`)
 *   koala.v1.zone.<zone>.cc.<command>        requests to a zone's CC (queue group per zone)
 *   koala.v1.zone.<zone>.node.heartbeat      NC -> CC announcements
 *   koala.v1.zone.<zone>.node.<node>.<cmd>   CC -> one NC
 *   koala.v1.zone.<zone>.sc.<command>        requests to a zone's SC
 *   koala.v1.zone.<zone>.network.state       CLC -> NCs: the zone's desired network (publish)
 */
const PREFIX = 'koala.v1';

const token = (kind: string, value: string): string => {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(value)) throw new Error(`invalid ${kind} for a NATS subject: "${value}"`);
  return value;
};

export const Subjects = {
  status: `${PREFIX}.status`,
  clustersDescribe: `${PREFIX}.clusters.describe`,
  /** Requests to the cloud controllers (queue group `clc`). */
  cloudCommand: (command: string) => `${PREFIX}.clc.${command}`,
  clusterCommand: (zone: string, command: string) => `${PREFIX}.zone.${token('zone', zone)}.cc.${command}`,
  nodeHeartbeat: (zone: string) => `${PREFIX}.zone.${token('zone', zone)}.node.heartbeat`,
  nodeCommand: (zone: string, node: string, command: string) => `${PREFIX}.zone.${token('zone', zone)}.node.${token('node', node)}.${command}`,
  storageHeartbeat: (zone: string) => `${PREFIX}.zone.${token('zone', zone)}.sc.heartbeat`,
  zoneNetworkState: (zone: string) => `${PREFIX}.zone.${token('zone', zone)}.network.state`,
  storageCommand: (zone: string, command: string) => `${PREFIX}.zone.${token('zone', zone)}.sc.${command}`,
} as const;

/** Queue groups: replicas of one role in one zone share the work. */
export const QueueGroups = {
  cloud: 'clc',
  cluster: (zone: string) => `cc-${zone}`,
  storage: (zone: string) => `sc-${zone}`,
} as const;
