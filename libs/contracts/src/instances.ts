/**
 * Instance lifecycle messages between CLC, CC and NC (a compatibility contract; see subjects.ts).
 *
 * Flow of a launch:
 *  1. CLC writes the reservation and `maxCount` pending instances in one transaction, then asks
 *     the zone's CC to place them: `placeInstances` (request/reply).
 *  2. CC reserves capacity for as many as fit (at least `minCount`, at most all), under one lock,
 *     with the configured policy, and answers the placements at once; if fewer than `minCount`
 *     fit it reserves nothing and answers `InsufficientInstanceCapacity`.
 *     The CLC deletes the instances that were not placed. The CC then sends `runInstance` to
 *     each chosen NC; a failure to deliver releases that reservation and emits a `failed` event.
 *  3. The NC acknowledges `runInstance` at once and does the work (image cache, disks, config
 *     drive, define + start), publishing `InstanceEvent`s as the instance moves.
 *  4. Events go to the JetStream stream `KOALA_EVENTS` (subjects `koala.v1.events.>`): the CLC
 *     consumes them durably (a restarted CLC replays what it missed) and the CC watches them to
 *     release reservations. Heartbeats (domains per node) let the CLC reconcile lost events.
 */
import { z } from 'zod';
import { requestContract } from './contract.js';
import { InstanceMetadataOptions, InstanceNetworkSpec } from './network.js';
import { Subjects } from './subjects.js';

/** EC2 instance states (codes: pending 0, running 16, shutting-down 32, terminated 48, stopping 64, stopped 80). */
export const InstanceState = z.enum(['pending', 'running', 'shutting-down', 'terminated', 'stopping', 'stopped']);
export type InstanceState = z.infer<typeof InstanceState>;
export const INSTANCE_STATE_CODES: Record<InstanceState, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

/** Resources an instance type needs on a node. */
export const InstanceResources = z.object({
  vcpus: z.number().int().positive(),
  memoryMiB: z.number().int().positive(),
  /** Root disk size in GiB (the overlay grows up to it). */
  rootDiskGiB: z.number().int().nonnegative(),
  /** Ephemeral disk in GiB (0 = none). */
  ephemeralGiB: z.number().int().nonnegative(),
});
export type InstanceResources = z.infer<typeof InstanceResources>;

/** One image an NC must have cached: fetched by digest from the CLC's image store. */
export const ImageBlob = z.object({
  imageId: z.string(),
  /** sha256 of the bytes, lower-case hex; the NC verifies it and caches by it. */
  sha256: z.string().regex(/^[a-f0-9]{64}$/),
  sizeBytes: z.number().int().nonnegative(),
  format: z.enum(['raw', 'qcow2']),
  /** Authenticated (signed, expiring) URL on the CLC's image store. */
  url: z.string().url(),
});
export type ImageBlob = z.infer<typeof ImageBlob>;

export const ImageSpec = z.discriminatedUnion('virtualizationType', [
  z.object({ virtualizationType: z.literal('hvm'), root: ImageBlob }),
  z.object({
    virtualizationType: z.literal('paravirtual'),
    root: ImageBlob,
    kernel: ImageBlob,
    ramdisk: ImageBlob.optional(),
    /** Extra kernel command line (the NC adds root= and console=). */
    kernelArgs: z.string().optional(),
  }),
]);
export type ImageSpec = z.infer<typeof ImageSpec>;

/** Everything an NC needs to build and start one instance. */
export const InstanceSpec = z.object({
  instanceId: z.string().regex(/^i-[0-9a-f]{8,17}$/),
  reservationId: z.string(),
  accountId: z.string(),
  instanceType: z.string(),
  resources: InstanceResources,
  image: ImageSpec,
  /** base64 user-data as given to RunInstances (≤ 16 KiB decoded). */
  userData: z.string().optional(),
  keyName: z.string().optional(),
  /** OpenSSH public key line of the key pair, for the config drive. */
  publicKey: z.string().optional(),
  hostname: z.string(),
  availabilityZone: z.string(),
  launchIndex: z.number().int().nonnegative(),
  /** The instance's interface (absent: no network, as on simulated test-driver nodes). */
  network: InstanceNetworkSpec.optional(),
  /** Instance metadata service options at launch (the live ones travel in the network state). */
  metadataOptions: InstanceMetadataOptions.optional(),
});
export type InstanceSpec = z.infer<typeof InstanceSpec>;

// ---- CLC -> CC ------------------------------------------------------------------------

export const PlaceInstancesRequest = z.object({
  reservationId: z.string(),
  minCount: z.number().int().positive(),
  /** One entry per instance the CLC wrote (maxCount of them), in launch-index order. */
  instances: z.array(InstanceSpec).min(1),
});
export const Placement = z.object({ instanceId: z.string(), node: z.string() });
export const PlaceInstancesResponse = z.object({ placements: z.array(Placement) });
export type PlaceInstancesResponse = z.infer<typeof PlaceInstancesResponse>;

export const placeInstances = (zone: string) => requestContract('cc.place-instances', Subjects.clusterCommand(zone, 'place-instances'), PlaceInstancesRequest, PlaceInstancesResponse);

/** Actions on an existing instance, routed CLC -> CC -> the instance's NC. */
export const InstanceAction = z.enum(['terminate', 'stop', 'start', 'reboot']);
export type InstanceAction = z.infer<typeof InstanceAction>;

export const InstanceActionRequest = z.object({
  instanceId: z.string(),
  node: z.string(),
  action: InstanceAction,
  /** stop: destroy at once instead of an ACPI shutdown. */
  force: z.boolean().optional(),
});
/** Accepted: the NC will report the outcome as InstanceEvents. */
export const InstanceActionResponse = z.object({ accepted: z.boolean() });

export const instanceAction = (zone: string) => requestContract('cc.instance-action', Subjects.clusterCommand(zone, 'instance-action'), InstanceActionRequest, InstanceActionResponse);

export const ConsoleOutputRequest = z.object({ instanceId: z.string(), node: z.string(), latest: z.boolean().optional() });
/** The serial console log, base64 (≤ 64 KiB: the most recent output). */
export const ConsoleOutputResponse = z.object({ output: z.string(), timestamp: z.string() });

export const consoleOutput = (zone: string) => requestContract('cc.console-output', Subjects.clusterCommand(zone, 'console-output'), ConsoleOutputRequest, ConsoleOutputResponse);

// ---- CC -> NC -------------------------------------------------------------------------

export const RunInstanceRequest = InstanceSpec;
export const RunInstanceResponse = z.object({ accepted: z.boolean() });
export const runInstance = (zone: string, node: string) => requestContract('nc.run-instance', Subjects.nodeCommand(zone, node, 'run-instance'), RunInstanceRequest, RunInstanceResponse);

export const nodeInstanceAction = (zone: string, node: string) =>
  requestContract('nc.instance-action', Subjects.nodeCommand(zone, node, 'instance-action'), InstanceActionRequest, InstanceActionResponse);

export const nodeConsoleOutput = (zone: string, node: string) => requestContract('nc.console-output', Subjects.nodeCommand(zone, node, 'console-output'), ConsoleOutputRequest, ConsoleOutputResponse);

// ---- events (NC/CC -> JetStream -> CLC, CC) ---------------------------------------------

export const StateReason = z.object({ code: z.string(), message: z.string() });
export type StateReason = z.infer<typeof StateReason>;

/**
 * An instance changed state on a node. `failed` means the launch could not complete: the CLC
 * marks the instance terminated with `reason` (e.g. Server.InternalError) and the NC has
 * already removed whatever it had created.
 */
export const InstanceEvent = z.object({
  instanceId: z.string(),
  zone: z.string(),
  node: z.string(),
  state: z.union([InstanceState, z.literal('failed')]),
  reason: StateReason.optional(),
  /** Why the guest stopped by itself: the CLC applies InstanceInitiatedShutdownBehavior. */
  guestInitiated: z.boolean().optional(),
  at: z.string(),
});
export type InstanceEvent = z.infer<typeof InstanceEvent>;

export const EVENTS_STREAM = 'KOALA_EVENTS';
export const EventSubjects = {
  all: 'koala.v1.events.>',
  instance: (zone: string) => `koala.v1.events.instance.${zone}`,
  volume: (zone: string) => `koala.v1.events.volume.${zone}`,
} as const;

/**
 * The one definition of the events stream every component declares (the first to start creates
 * it; all must declare it alike): every event subject, kept a day.
 */
export const EVENTS_STREAM_SPEC = { name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: 24 * 3600_000 } as const;
