/**
 * Guest networking between CLC and NCs (a compatibility contract; see subjects.ts and
 * docs/NETWORKING.md).
 *
 * The CLC is the one source of truth: it allocates every instance's private IP and MAC and every
 * node's address on the zone segment, owns public addresses and security-group membership, and
 * builds one versioned desired state per zone. It publishes that state on
 * `koala.v1.zone.<zone>.network.state` whenever it changes and again every
 * `KOALA_NETWORK_REPUBLISH_MS`; an NC that starts (or missed a version) asks for it with
 * `networkState(zone)`. Each NC reconciles the whole state idempotently and reports the version
 * it has applied in its heartbeat (`NodeHeartbeat.networkVersion`).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { requestContract } from './contract.js';
import { Subjects } from './subjects.js';

const ipv4 = z.string().regex(/^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/);
const cidr = z.string().regex(/^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\/(?:3[0-2]|[12]?\d)$/);
/** Locally administered unicast MAC, lower-case (`02:xx:...` or another `x2/x6/xa/xe` first octet). */
const mac = z.string().regex(/^[0-9a-f][26ae](?::[0-9a-f]{2}){5}$/);
const groupId = z.string().regex(/^sg-[0-9a-f]{8,17}$/);

/**
 * One security-group rule as the NC enforces it. `protocol`: `tcp`, `udp`, `icmp` or `all`.
 * tcp/udp: `fromPort..toPort` (inclusive). icmp: `fromPort` = ICMP type, `toPort` = code, -1 = any.
 * `all`: ports ignored. Sources (ingress) or destinations (egress): any of `cidrs` or any member
 * of `groupIds` (current private IPs of that group's instances, across the zone).
 */
export const NetworkRule = z.object({
  protocol: z.enum(['tcp', 'udp', 'icmp', 'all']),
  fromPort: z.number().int().min(-1).max(65535),
  toPort: z.number().int().min(-1).max(65535),
  cidrs: z.array(cidr),
  groupIds: z.array(groupId),
});
export type NetworkRule = z.infer<typeof NetworkRule>;

/** A security group: what its members accept (ingress) and may send (egress). */
export const NetworkGroup = z.object({
  groupId,
  name: z.string(),
  ingress: z.array(NetworkRule),
  egress: z.array(NetworkRule),
});
export type NetworkGroup = z.infer<typeof NetworkGroup>;

/** A node's own address on the zone segment: DHCP server and default gateway of its guests. */
export const NetworkNode = z.object({ node: z.string(), address: ipv4 });
export type NetworkNode = z.infer<typeof NetworkNode>;

/** EC2 `MetadataOptions` of an instance (InstanceSpec.metadataOptions); EC2's defaults. */
export const InstanceMetadataOptions = z.object({
  httpTokens: z.enum(['optional', 'required']).default('optional'),
  httpPutResponseHopLimit: z.number().int().min(1).max(64).default(1),
  httpEndpoint: z.enum(['enabled', 'disabled']).default('enabled'),
});
export type InstanceMetadataOptions = z.infer<typeof InstanceMetadataOptions>;

/** One instance's interface. `node` hosts it (only that NC adds its DHCP entry and filter). */
export const NetworkInterfaceState = z.object({
  instanceId: z.string().regex(/^i-[0-9a-f]{8,17}$/),
  node: z.string(),
  /** The CLC's id of the interface (DescribeInstances' networkInterfaceId; the metadata service's `interface-id`). */
  interfaceId: z
    .string()
    .regex(/^eni-[0-9a-f]{8,17}$/)
    .optional(),
  mac,
  privateIp: ipv4,
  /** Elastic or launch-time public address, DNATed to `privateIp` on every node of the zone. */
  publicIp: ipv4.optional(),
  groupIds: z.array(groupId),
  /** Live metadata-service options (ModifyInstanceMetadataOptions changes them at run time). */
  metadataOptions: InstanceMetadataOptions.optional(),
});
export type NetworkInterfaceState = z.infer<typeof NetworkInterfaceState>;

/** The whole desired network of one zone. Versions only grow; an NC ignores an older one. */
export const ZoneNetworkState = z.object({
  zone: z.string(),
  version: z.number().int().nonnegative(),
  /** The zone's (default) subnet: every private IP and node address lies in it. */
  subnet: cidr,
  /** Search domain and DNS suffix of private names (`ip-10-0-0-5.<suffix>`). */
  dnsSuffix: z.string(),
  nodes: z.array(NetworkNode),
  interfaces: z.array(NetworkInterfaceState),
  groups: z.array(NetworkGroup),
  generatedAt: z.string(),
});
export type ZoneNetworkState = z.infer<typeof ZoneNetworkState>;

/** Instance-side network of a launch (InstanceSpec.network): what the NC puts in the domain. */
export const InstanceNetworkSpec = z.object({
  mac,
  privateIp: ipv4,
  subnet: cidr,
  privateDnsName: z.string(),
  publicIp: ipv4.optional(),
  groups: z.array(z.object({ groupId, name: z.string() })),
});
export type InstanceNetworkSpec = z.infer<typeof InstanceNetworkSpec>;

// ---- default-VPC ids -----------------------------------------------------------------------
// Koala has no VPC objects: the region's default VPC and each zone's default subnet have ids
// derived from the names, the same for the CLC (DescribeInstances) and the NC (metadata).
const hashId = (prefix: string, seed: string): string => `${prefix}-${createHash('sha256').update(seed).digest('hex').slice(0, 17)}`;
export const defaultVpcId = (region: string): string => hashId('vpc', `koala-vpc:${region}`);
export const defaultSubnetId = (region: string, zone: string): string => hashId('subnet', `koala-subnet:${region}:${zone}`);

// ---- NC -> CLC: the current state (at start, or after a gap in versions) ---------------
export const NetworkStateRequest = z.object({ zone: z.string(), node: z.string() });
export const networkState = () => requestContract('clc.network-state', Subjects.cloudCommand('network-state'), NetworkStateRequest, ZoneNetworkState);

// ---- CLC -> NCs: published on change and periodically ---------------------------------
export const networkStateSubject = (zone: string) => Subjects.zoneNetworkState(zone);
