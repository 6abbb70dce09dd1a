import { Inject, Injectable } from '@nestjs/common';
import {
  attachVolume,
  copySnapshot,
  createSnapshot,
  createVolume,
  deleteSnapshot,
  deleteVolume,
  detachVolume,
  exportVolume,
  storageSealKey,
  unexportVolume,
  type ExportedTarget,
  type ExportVolumeRequest,
  type IscsiTarget,
} from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { BusUnavailableError, type NatsBus } from '@koala/messaging';
import { BUS } from '@koala/runtime';
import { ClustersService } from '../clusters/clusters.service.js';

/**
 * Port: what volumes and snapshots ask of a zone (its SC, and its CC for attach/detach), per the
 * contract of libs/contracts/src/volumes.ts. Errors are the bus's: `BusRemoteError` (the
 * component's EC2 code) or `BusUnavailableError` (nobody answered in time).
 */
export interface ZoneStorageGateway {
  /** Zones whose CC answers now. */
  zones(): Promise<string[]>;
  createVolume(zone: string, r: { volumeId: string; sizeGiB: number; snapshotId?: string }): Promise<void>;
  deleteVolume(zone: string, volumeId: string): Promise<void>;
  exportVolume(zone: string, r: ExportVolumeRequest): Promise<ExportedTarget>;
  /**
   * Public keys to seal CHAP secrets for: the zone's SC, and a node (from its heartbeat, via the
   * CC). Undefined only when the component announces none (an older one: nobody serves the
   * question, or the heartbeat has no key); any other failure throws.
   */
  storageSealKey(zone: string): Promise<string | undefined>;
  nodeSealKey(zone: string, node: string): Promise<string | undefined>;
  unexportVolume(zone: string, volumeId: string): Promise<void>;
  createSnapshot(zone: string, r: { snapshotId: string; volumeId: string }): Promise<void>;
  deleteSnapshot(zone: string, snapshotId: string): Promise<void>;
  copySnapshot(zone: string, r: { sourceSnapshotId: string; snapshotId: string }): Promise<void>;
  /** CC → the instance's NC. Resolves with the guest device libvirt chose. */
  attachVolume(zone: string, r: { instanceId: string; node: string; volumeId: string; device: string; target: IscsiTarget }): Promise<{ guestDevice: string }>;
  detachVolume(zone: string, r: { instanceId: string; node: string; volumeId: string; force?: boolean }): Promise<void>;
}
export const ZONE_STORAGE = Symbol('ZONE_STORAGE');

const SC_TIMEOUT_MS = 15_000;
const noResponders = (e: unknown) => e instanceof BusUnavailableError && /no responders|503/i.test(e.message);

/** The real gateway: NATS requests to `koala.v1.zone.<zone>.sc.*` and `.cc.*`. */
@Injectable()
export class NatsZoneStorageGateway implements ZoneStorageGateway {
  constructor(
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(ClustersService) private readonly clusters: ClustersService,
  ) {}

  async zones() {
    return (await this.clusters.describe()).map((c) => c.zone);
  }
  async createVolume(zone: string, r: { volumeId: string; sizeGiB: number; snapshotId?: string }) {
    await this.bus.request(createVolume(zone), r, { timeoutMs: SC_TIMEOUT_MS });
  }
  async deleteVolume(zone: string, volumeId: string) {
    await this.bus.request(deleteVolume(zone), { volumeId }, { timeoutMs: SC_TIMEOUT_MS });
  }
  exportVolume(zone: string, r: ExportVolumeRequest) {
    return this.bus.request(exportVolume(zone), r, { timeoutMs: 30_000 });
  }
  async storageSealKey(zone: string) {
    return this.bus.request(storageSealKey(zone), {}, { timeoutMs: 10_000 }).then(
      (r) => r.sealKey,
      (e) => (noResponders(e) ? undefined : Promise.reject(e)),
    );
  }
  async nodeSealKey(zone: string, node: string) {
    const nodes = await this.clusters.nodes(zone, 10_000).catch((e) => (noResponders(e) ? undefined : Promise.reject(e)));
    return nodes?.nodes.find((n) => n.node === node)?.sealKey;
  }
  async unexportVolume(zone: string, volumeId: string) {
    await this.bus.request(unexportVolume(zone), { volumeId }, { timeoutMs: 30_000 });
  }
  async createSnapshot(zone: string, r: { snapshotId: string; volumeId: string }) {
    await this.bus.request(createSnapshot(zone), r, { timeoutMs: SC_TIMEOUT_MS });
  }
  async deleteSnapshot(zone: string, snapshotId: string) {
    await this.bus.request(deleteSnapshot(zone), { snapshotId }, { timeoutMs: SC_TIMEOUT_MS });
  }
  async copySnapshot(zone: string, r: { sourceSnapshotId: string; snapshotId: string }) {
    await this.bus.request(copySnapshot(zone), r, { timeoutMs: SC_TIMEOUT_MS });
  }
  attachVolume(zone: string, r: { instanceId: string; node: string; volumeId: string; device: string; target: IscsiTarget }) {
    return this.bus.request(attachVolume(zone), r, { timeoutMs: this.config.volumeAttachTimeoutMs });
  }
  async detachVolume(zone: string, r: { instanceId: string; node: string; volumeId: string; force?: boolean }) {
    await this.bus.request(detachVolume(zone), r, { timeoutMs: this.config.volumeAttachTimeoutMs });
  }
}
