/**
 * Message payloads exchanged over NATS, defined once and validated on both sides (zod).
 * Changing a field is a compatibility change (see subjects.ts): add optional fields only.
 */
import { z } from 'zod';

export const ComponentKind = z.enum(['cloud-controller', 'cluster-controller', 'node-controller', 'storage-controller']);
export type ComponentKind = z.infer<typeof ComponentKind>;

/** What every component answers on `Subjects.status`. */
export const ComponentStatus = z.object({
  component: ComponentKind,
  id: z.string(),
  version: z.string(),
  zone: z.string().optional(),
  host: z.string(),
  pid: z.number().int(),
  startedAt: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type ComponentStatus = z.infer<typeof ComponentStatus>;

export const Resources = z.object({
  cores: z.number().int().nonnegative(),
  memoryMiB: z.number().int().nonnegative(),
  diskGiB: z.number().int().nonnegative(),
});
export type Resources = z.infer<typeof Resources>;

/** A domain as an NC reports it: enough for the CLC to reconcile instance states. */
export const DomainReport = z.object({
  name: z.string(),
  instanceId: z.string().optional(),
  state: z.string(),
});
export type DomainReport = z.infer<typeof DomainReport>;

/** NC -> CC, every KOALA_HEARTBEAT_MS. */
export const NodeHeartbeat = z.object({
  node: z.string(),
  zone: z.string(),
  version: z.string(),
  hypervisorUri: z.string(),
  hypervisor: z.string().optional(),
  total: Resources,
  free: Resources,
  domains: z.array(DomainReport),
  /** Version of the zone's desired network state this node has fully applied (absent: none yet). */
  networkVersion: z.number().int().nonnegative().optional(),
  /** The node's public key for secrets sealed to it (CHAP secrets of attachments; see volumes.ts). */
  sealKey: z.string().optional(),
  sentAt: z.string(),
});
export type NodeHeartbeat = z.infer<typeof NodeHeartbeat>;

export const NodeState = z.enum(['up', 'down']);

/**
 * A node as the CC's registry knows it: its last heartbeat's capacity, without the domains
 * (a zone of 10k instances would carry ~1 MiB of them: NATS's payload limit). Domains are
 * read page by page with `listDomains`.
 */
export const NodeSummary = NodeHeartbeat.omit({ domains: true }).extend({
  domainCount: z.number().int().nonnegative(),
  state: NodeState,
  lastSeen: z.string(),
});
export type NodeSummary = z.infer<typeof NodeSummary>;

export const ListNodesRequest = z.object({});
export const ListNodesResponse = z.object({ zone: z.string(), nodes: z.array(NodeSummary) });
export type ListNodesResponse = z.infer<typeof ListNodesResponse>;

/** One node's domains as its last heartbeat reported them. */
export const NodeDomains = z.object({ node: z.string(), state: NodeState, lastSeen: z.string(), domains: z.array(DomainReport) });
export type NodeDomains = z.infer<typeof NodeDomains>;

/** The most domains one `listDomains` page carries (~105 B each: well under 1 MiB). */
export const MAX_DOMAINS_PER_PAGE = 5000;

/**
 * A page of the zone's nodes with their domains, in node-name order after `after`. A page holds
 * whole nodes, as many as fit in `maxDomains` (at least one); `next` is the `after` of the next
 * page, absent on the last.
 */
export const ListDomainsRequest = z.object({
  after: z.string().optional(),
  maxDomains: z.number().int().positive().max(MAX_DOMAINS_PER_PAGE).optional(),
});
export type ListDomainsRequest = z.infer<typeof ListDomainsRequest>;
export const ListDomainsResponse = z.object({ zone: z.string(), nodes: z.array(NodeDomains), next: z.string().optional() });
export type ListDomainsResponse = z.infer<typeof ListDomainsResponse>;

/** What a CC answers on `Subjects.clustersDescribe`. */
export const ClusterSummary = z.object({
  zone: z.string(),
  ccId: z.string(),
  state: z.enum(['available', 'impaired', 'unavailable']),
  policy: z.string(),
  nodes: z.number().int(),
  nodesUp: z.number().int(),
  total: Resources,
  free: Resources,
});
export type ClusterSummary = z.infer<typeof ClusterSummary>;

/** SC -> CC/CLC, every KOALA_HEARTBEAT_MS. */
export const StorageHeartbeat = z.object({
  scId: z.string(),
  zone: z.string(),
  version: z.string(),
  backend: z.string(),
  capacityBytes: z.number().nonnegative(),
  availableBytes: z.number().nonnegative(),
  sentAt: z.string(),
});
export type StorageHeartbeat = z.infer<typeof StorageHeartbeat>;

/** An error carried in a reply: an EC2-style code the CLC can pass on to the user. */
export const RemoteError = z.object({ code: z.string(), message: z.string() });
export type RemoteError = z.infer<typeof RemoteError>;
