/**
 * Volume and snapshot messages between CLC, SC, CC and NC (a compatibility contract).
 *
 *  CreateVolume:  CLC writes the volume `creating`, asks the zone's SC `createVolume`; the SC
 *                 acks, creates it in its backend and emits a VolumeEvent (available | error).
 *  AttachVolume:  CLC marks the attachment `attaching`, asks the SC `exportVolume` for the
 *                 attaching node (tgt target, LUN 1, CHAP, bound to that node's initiator),
 *                 then asks the CC `attachVolume`, which forwards to the instance's NC; the NC
 *                 defines the CHAP secret in libvirt and hot-plugs an iSCSI network disk.
 *                 The secret travels sealed for the SC (its `sc.seal-key`) and for the NC (the
 *                 `sealKey` of its heartbeat): see `chapSecretSealed` below.
 *                 Any failure rolls back (NC detach, SC unexport) and the volume is `available`.
 *  DetachVolume:  CC `detachVolume` -> NC unplugs; then SC `unexportVolume`.
 *  Snapshots:     SC `createSnapshot` copies the volume into the snapshot pool, emitting
 *                 progress events; `createVolume` with `snapshotId` restores one.
 */
import { z } from 'zod';
import { requestContract } from './contract.js';
import { Subjects } from './subjects.js';

export const VolumeState = z.enum(['creating', 'available', 'in-use', 'deleting', 'deleted', 'error']);
export type VolumeState = z.infer<typeof VolumeState>;
export const AttachmentState = z.enum(['attaching', 'attached', 'detaching', 'detached']);
export const SnapshotState = z.enum(['pending', 'completed', 'error']);

const Ack = z.object({ accepted: z.boolean() });

/** The iSCSI initiator name a node uses (QEMU's initiator is told this name by libvirt). */
export const nodeInitiatorIqn = (node: string) => `iqn.2026-11.dev.koala:node:${node}`;
/** The tgt target of one volume. */
export const volumeTargetIqn = (volumeId: string) => `iqn.2026-11.dev.koala:${volumeId}`;

// ---- CLC -> SC -------------------------------------------------------------------------

export const CreateVolumeRequest = z.object({ volumeId: z.string(), sizeGiB: z.number().int().positive(), snapshotId: z.string().optional() });
export const createVolume = (zone: string) => requestContract('sc.create-volume', Subjects.storageCommand(zone, 'create-volume'), CreateVolumeRequest, Ack);

export const DeleteVolumeRequest = z.object({ volumeId: z.string() });
export const deleteVolume = (zone: string) => requestContract('sc.delete-volume', Subjects.storageCommand(zone, 'delete-volume'), DeleteVolumeRequest, Ack);

/**
 * CHAP secrets travel sealed for the one component that uses them (`chapSecretSealed`: the SC's
 * or the NC's public key, context = the volume id; libs/messaging sealed.ts): NATS and the CC
 * in between never see them. `chapSecret` in clear is only for a recipient that announced no
 * key (older components); one of the two is always there.
 */
const hasSecret = (t: { chapSecret?: string; chapSecretSealed?: string }) => t.chapSecret !== undefined || t.chapSecretSealed !== undefined;
const NO_SECRET = { message: 'chapSecret or chapSecretSealed is required' };

/** Where and how a node logs in to a volume's target. */
export const IscsiTarget = z
  .object({
    iqn: z.string(),
    lun: z.number().int().positive(),
    /** host:port of the tgt portal. */
    portal: z.string(),
    chapUser: z.string(),
    chapSecret: z.string().optional(),
    chapSecretSealed: z.string().optional(),
  })
  .refine(hasSecret, NO_SECRET);
export type IscsiTarget = z.infer<typeof IscsiTarget>;
/** What an SC answers to an export: the target, without the secret (the CLC has it). */
export const ExportedTarget = z.object({ iqn: z.string(), lun: z.number().int().positive(), portal: z.string(), chapUser: z.string() });
export type ExportedTarget = z.infer<typeof ExportedTarget>;

/**
 * Export a volume to one node. The CLC chooses the CHAP credentials and keeps them (encrypted),
 * so an SC that restarts, or finds tgtd restarted, rebuilds the same targets by asking the CLC
 * `listExports` — tgt itself keeps nothing across restarts.
 */
export const ExportVolumeRequest = z
  .object({ volumeId: z.string(), node: z.string(), initiatorIqn: z.string(), chapUser: z.string(), chapSecret: z.string().min(12).optional(), chapSecretSealed: z.string().optional() })
  .refine(hasSecret, NO_SECRET);
export type ExportVolumeRequest = z.infer<typeof ExportVolumeRequest>;
export const exportVolume = (zone: string) => requestContract('sc.export-volume', Subjects.storageCommand(zone, 'export-volume'), ExportVolumeRequest, ExportedTarget);

/** The SC's public key for secrets sealed to it. */
export const SealKeyResponse = z.object({ sealKey: z.string() });
export const storageSealKey = (zone: string) => requestContract('sc.seal-key', Subjects.storageCommand(zone, 'seal-key'), z.object({}), SealKeyResponse);

export const UnexportVolumeRequest = z.object({ volumeId: z.string() });
export const unexportVolume = (zone: string) => requestContract('sc.unexport-volume', Subjects.storageCommand(zone, 'unexport-volume'), UnexportVolumeRequest, Ack);

export const CreateSnapshotRequest = z.object({ snapshotId: z.string(), volumeId: z.string() });
export const createSnapshot = (zone: string) => requestContract('sc.create-snapshot', Subjects.storageCommand(zone, 'create-snapshot'), CreateSnapshotRequest, Ack);

export const DeleteSnapshotRequest = z.object({ snapshotId: z.string() });
export const deleteSnapshot = (zone: string) => requestContract('sc.delete-snapshot', Subjects.storageCommand(zone, 'delete-snapshot'), DeleteSnapshotRequest, Ack);

/** Copy a snapshot within the region (to the SC of `zone`). */
export const CopySnapshotRequest = z.object({ sourceSnapshotId: z.string(), snapshotId: z.string() });
export const copySnapshot = (zone: string) => requestContract('sc.copy-snapshot', Subjects.storageCommand(zone, 'copy-snapshot'), CopySnapshotRequest, Ack);

// ---- SC -> CLC ---------------------------------------------------------------------------

/** Every export the CLC believes should exist in `zone` (volumes attaching or attached). */
export const ListExportsRequest = z.object({ zone: z.string() });
export const ListExportsResponse = z.object({ exports: z.array(ExportVolumeRequest) });
export const listExports = () => requestContract('clc.list-exports', Subjects.cloudCommand('list-exports'), ListExportsRequest, ListExportsResponse);

// ---- CLC -> CC -> NC ---------------------------------------------------------------------

export const AttachVolumeRequest = z.object({ instanceId: z.string(), node: z.string(), volumeId: z.string(), device: z.string(), target: IscsiTarget });
/** The guest device libvirt assigned (e.g. vdd). */
export const AttachVolumeResponse = z.object({ guestDevice: z.string() });
export const attachVolume = (zone: string) => requestContract('cc.attach-volume', Subjects.clusterCommand(zone, 'attach-volume'), AttachVolumeRequest, AttachVolumeResponse);
export const nodeAttachVolume = (zone: string, node: string) => requestContract('nc.attach-volume', Subjects.nodeCommand(zone, node, 'attach-volume'), AttachVolumeRequest, AttachVolumeResponse);

export const DetachVolumeRequest = z.object({ instanceId: z.string(), node: z.string(), volumeId: z.string(), force: z.boolean().optional() });
export const detachVolume = (zone: string) => requestContract('cc.detach-volume', Subjects.clusterCommand(zone, 'detach-volume'), DetachVolumeRequest, Ack);
export const nodeDetachVolume = (zone: string, node: string) => requestContract('nc.detach-volume', Subjects.nodeCommand(zone, node, 'detach-volume'), DetachVolumeRequest, Ack);

// ---- events (SC -> JetStream -> CLC) -------------------------------------------------------

export const StorageEvent = z.object({
  kind: z.enum(['volume', 'snapshot']),
  /** volume id or snapshot id. */
  id: z.string(),
  zone: z.string(),
  state: z.union([VolumeState, SnapshotState]),
  /** Snapshot progress, 0-100. */
  progress: z.number().int().min(0).max(100).optional(),
  sizeBytes: z.number().int().nonnegative().optional(),
  reason: z.object({ code: z.string(), message: z.string() }).optional(),
  at: z.string(),
});
export type StorageEvent = z.infer<typeof StorageEvent>;
