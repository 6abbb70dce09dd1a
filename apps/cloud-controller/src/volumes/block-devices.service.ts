import { Inject, Injectable } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { Ec2Error, type TagSpecification } from '@koala/ec2-query';
import type { Logger } from '@koala/logging';
import { CLOCK, LOGGER, type Clock } from '@koala/runtime';
import type { Caller } from '../persistence/access-scope.js';
import { TagsService } from '../tags/tags.service.js';
import type { EbsMapping } from './block-device-mapping.js';
import { BlockDeviceRepository, type BlockDeviceRow, type BlockDeviceStore, type MappedVolume, type OpenBlockDevice, type Tx } from './block-device.repository.js';
import { VOLUME_RESOURCE_TYPE, VolumesService } from './volumes.service.js';

/** What the mappings need of VolumesService (a fake in the unit spec). */
export type MappingVolumes = Pick<VolumesService, 'create' | 'delete' | 'attach'>;

/** The ClientToken of the volume of a mapping: a retried create (CLC restart) finds the same volume. */
export const mappingClientToken = (instanceId: string, deviceName: string) => `koala-bdm:${instanceId}:${deviceName}`;

/** What one step of a mapping works with. */
interface Step {
  row: OpenBlockDevice;
  now: Date;
  key: { instanceId: string; deviceName: string };
  /** The instance is gone, terminated or shutting down. */
  ended: boolean;
  /** Claims older than this are abandoned (a CLC stopped mid-way). */
  stale: Date;
}

/** The mapping's volume is created and attached as the instance's owner; its release may delete it whoever asks. */
const ownerOf = (row: OpenBlockDevice): Caller => ({ id: row.accountId, isAdmin: false });
const asAdmin = (row: OpenBlockDevice): Caller => ({ id: row.accountId, isAdmin: true });

const reasonOf = (e: unknown): { code: string; message: string } =>
  e instanceof Ec2Error ? { code: e.code, message: e.message } : { code: 'Server.InternalError', message: (e as Error)?.message ?? String(e) };

/**
 * RunInstances' EBS block-device mappings. The request is checked up front (nothing written on a
 * bad mapping); each launched instance then gets one row per mapping in `instance_block_devices`,
 * written in the RunInstances transaction. From those rows, `step()` creates each volume in the
 * instance's zone (VolumesService.create, ClientToken per instance+device so a retry after a
 * restart finds the same volume) and attaches it (VolumesService.attach) once the volume is
 * available and the instance running. `step()` runs right after placement, when the CLC applies
 * an instance's `running` event, and on every volume sweep (KOALA_VOLUME_SWEEP_MS), which also
 * picks up whatever a stopped CLC left.
 *
 * Failures do not fail the launch (AWS would terminate the instance): the instance keeps running,
 * the mapping is `failed` with the reason and a warning is logged. Once attached, the volume is
 * an ordinary attachment: TerminateInstances' sweep detaches it and deletes it when
 * DeleteOnTermination. A mapping whose instance ends before the attachment is released here:
 * its volume is deleted when DeleteOnTermination, else left available.
 */
@Injectable()
export class BlockDevicesService {
  constructor(
    @Inject(BlockDeviceRepository) private readonly repo: BlockDeviceStore,
    @Inject(KOALA_CONFIG) private readonly config: Pick<KoalaConfig, 'volumeAttachTimeoutMs'>,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(TagsService) private readonly tags: Pick<TagsService, 'checkTagSpecifications'>,
    @Inject(VolumesService) private readonly volumes: MappingVolumes,
  ) {}

  /**
   * The checks that need the database and the zone, for each mapping as CreateVolume would make
   * its volume in `zone` (snapshot restorable by the caller and in that zone, size ≥ the
   * snapshot's, volume type and iops, `volume` tags), without creating anything.
   */
  async validate(caller: Caller, now: Date, zone: string, mappings: readonly EbsMapping[], volumeTags: TagSpecification[]): Promise<void> {
    if (!mappings.length) return;
    this.tags.checkTagSpecifications(VOLUME_RESOURCE_TYPE, volumeTags);
    for (const m of mappings) {
      try {
        await this.volumes.create(caller, now, { sizeGiB: m.sizeGiB, snapshotId: m.snapshotId, zone, volumeType: m.volumeType, iops: m.iops, tagSpecifications: volumeTags, dryRun: true });
      } catch (e) {
        if (e instanceof Ec2Error && e.code === 'DryRunOperation') continue;
        if (e instanceof Ec2Error && e.code === 'InvalidZone.NotFound') throw new Ec2Error('Unavailable', `${m.at}: no storage controller answers for zone ${zone}; try again later.`);
        throw e;
      }
    }
  }

  /** The rows of the launched instances (inside RunInstances' transaction). */
  async record(tx: Tx, caller: Caller, now: Date, instanceIds: readonly string[], zone: string, mappings: readonly EbsMapping[], volumeTags: TagSpecification[]): Promise<void> {
    const rows: BlockDeviceRow[] = instanceIds.flatMap((instanceId) =>
      mappings.map((m) => ({
        instanceId,
        deviceName: m.deviceName,
        accountId: caller.id,
        zone,
        sizeGiB: m.sizeGiB ?? null,
        snapshotId: m.snapshotId ?? null,
        volumeType: m.volumeType ?? null,
        iops: m.iops ?? null,
        deleteOnTermination: m.deleteOnTermination,
        volumeTags,
        volumeId: null,
        state: 'pending' as const,
        reasonCode: null,
        reasonMessage: null,
        claimedAt: null,
        createdAt: now,
      })),
    );
    await this.repo.insert(tx, rows);
  }

  /** ModifyInstanceAttribute `BlockDeviceMapping.N.Ebs.DeleteOnTermination`: the attached volume and/or the mapping not attached yet. */
  async setDeleteOnTermination(tx: Tx, instanceId: string, deviceName: string, value: boolean): Promise<void> {
    const attached = await this.repo.setVolumeDeleteOnTermination(tx, instanceId, deviceName, value);
    const mapped = await this.repo.setDeleteOnTermination(tx, instanceId, deviceName, value);
    if (!attached && !mapped) throw Ec2Error.invalidParameterValue('BlockDeviceMapping.DeviceName', deviceName, `No volume is mapped at ${deviceName} on instance '${instanceId}'.`);
  }

  /** Works every open mapping (of the given instances only); errors are logged per mapping. Returns how many rows were looked at. */
  async step(instanceIds?: readonly string[]): Promise<number> {
    const rows = await this.repo.open(instanceIds);
    for (const row of rows) {
      try {
        await this.advance(row);
      } catch (err) {
        this.logger.warn({ err: (err as Error).message, instanceId: row.instanceId, device: row.deviceName }, 'block-device mapping step failed; retried on the next sweep');
      }
    }
    return rows.length;
  }

  /** One step of a mapping, by its state (see BlockDeviceState). */
  private async advance(row: OpenBlockDevice): Promise<void> {
    const now = this.clock.now();
    const step: Step = {
      row,
      now,
      key: { instanceId: row.instanceId, deviceName: row.deviceName },
      ended: row.instanceState === null || row.instanceState === 'terminated' || row.instanceState === 'shutting-down',
      stale: new Date(now.getTime() - 2 * this.config.volumeAttachTimeoutMs),
    };
    if (row.state === 'pending') return this.createVolume(step);
    const volume = row.volumeId ? await this.repo.volume(row.volumeId) : undefined;
    if (row.state === 'failed') return this.releaseFailed(step, volume);
    if (row.state === 'attaching') {
      if (row.claimedAt && row.claimedAt > step.stale) return; // an attach is under way
      // A CLC stopped mid-attach: the volume says how far it got.
      await this.repo.move(step.key, 'attaching', { state: 'creating', claimedAt: null });
      row.state = 'creating';
    }
    return this.followVolume(step, volume);
  }

  /** `pending`: creates the volume (claimed, so one step at a time), or releases the mapping of an ended instance. */
  private async createVolume({ row, now, key, ended, stale }: Step): Promise<void> {
    if (ended) {
      await this.repo.move(key, 'pending', { state: 'released' });
      return;
    }
    if (!(await this.repo.move(key, 'pending', { claimedAt: now }, stale))) return; // another step is creating it
    try {
      const v = await this.volumes.create(ownerOf(row), now, {
        sizeGiB: row.sizeGiB ?? undefined,
        snapshotId: row.snapshotId ?? undefined,
        zone: row.zone,
        volumeType: row.volumeType ?? undefined,
        iops: row.iops ?? undefined,
        tagSpecifications: row.volumeTags,
        clientToken: mappingClientToken(row.instanceId, row.deviceName),
        dryRun: false,
      });
      await this.repo.move(key, 'pending', { state: 'creating', volumeId: v.volume.id, claimedAt: null });
      this.logger.info({ instanceId: row.instanceId, device: row.deviceName, volumeId: v.volume.id }, 'block-device volume creating');
    } catch (e) {
      const reason = reasonOf(e);
      // An unanswered create leaves the volume in `error` under our ClientToken: keep its id so
      // a DeleteOnTermination volume is still deleted with the instance.
      const leftover = await this.repo.volumeByClientToken(row.accountId, mappingClientToken(row.instanceId, row.deviceName));
      await this.repo.move(key, 'pending', { state: 'failed', reason, claimedAt: null, ...(leftover ? { volumeId: leftover } : {}) });
      this.logger.warn(
        { instanceId: row.instanceId, device: row.deviceName, code: reason.code, message: reason.message },
        'block-device mapping failed: the volume could not be created; the instance runs without it',
      );
    }
  }

  /** `failed` (only DeleteOnTermination volumes of ended instances are listed as open): deletes the volume, releases the mapping. */
  private async releaseFailed({ row, key }: Step, volume: MappedVolume | undefined): Promise<void> {
    if (volume && !volume.attachState && (volume.state === 'available' || volume.state === 'error')) {
      await this.volumes.delete(asAdmin(row), volume.id, false);
    } else if (volume && volume.state === 'creating') {
      return; // deleted once the SC has finished creating it
    }
    await this.repo.move(key, 'failed', { state: 'released' });
  }

  /** `creating`: waits for the volume to be available and the instance running, then attaches it (or fails, or releases). */
  private async followVolume({ row, now, key, ended }: Step, volume: MappedVolume | undefined): Promise<void> {
    if (!volume || volume.state === 'deleted' || volume.state === 'deleting' || volume.state === 'error') {
      const reason = volume?.stateReasonCode
        ? { code: volume.stateReasonCode, message: volume.stateReasonMessage ?? volume.stateReasonCode }
        : { code: 'Server.InternalError', message: `volume ${row.volumeId} is ${volume?.state ?? 'gone'}` };
      await this.repo.move(key, 'creating', { state: ended ? 'released' : 'failed', reason });
      if (!ended)
        this.logger.warn(
          { instanceId: row.instanceId, device: row.deviceName, volumeId: row.volumeId, code: reason.code },
          'block-device mapping failed: the volume could not be created; the instance runs without it',
        );
      return;
    }
    if (volume.attachInstanceId === row.instanceId && volume.attachDevice === row.deviceName && volume.attachState === 'attached') {
      await this.repo.move(key, 'creating', { state: 'attached', reason: null });
      return;
    }
    if (volume.attachState) {
      if (volume.attachInstanceId === row.instanceId && volume.attachDevice === row.deviceName) return; // attaching/detaching: look again next time
      await this.repo.move(key, 'creating', { state: 'failed', reason: { code: 'VolumeInUse', message: `${volume.id} was attached elsewhere` } });
      return;
    }
    if (volume.state === 'creating') return;
    if (ended) {
      if (row.deleteOnTermination) await this.volumes.delete(asAdmin(row), volume.id, false);
      await this.repo.move(key, 'creating', { state: 'released' });
      this.logger.info(
        { instanceId: row.instanceId, device: row.deviceName, volumeId: volume.id, deleted: row.deleteOnTermination },
        'block-device mapping released: the instance ended before the attachment',
      );
      return;
    }
    if (row.instanceState !== 'running') return; // attached once the instance runs
    if (!(await this.repo.move(key, 'creating', { state: 'attaching', claimedAt: now }))) return;
    await this.attachVolume(row, now, volume.id);
  }

  /** `attaching` (claimed): AttachVolume as the owner; a failure fails the mapping unless the instance stopped meanwhile. */
  private async attachVolume(row: OpenBlockDevice, now: Date, volumeId: string): Promise<void> {
    const key = { instanceId: row.instanceId, deviceName: row.deviceName };
    try {
      await this.volumes.attach(ownerOf(row), now, { volumeId, instanceId: row.instanceId, device: row.deviceName, deleteOnTermination: row.deleteOnTermination, dryRun: false });
      await this.repo.move(key, 'attaching', { state: 'attached', reason: null, claimedAt: null });
      this.logger.info({ instanceId: row.instanceId, device: row.deviceName, volumeId }, 'block-device volume attached');
    } catch (e) {
      const reason = reasonOf(e);
      if ((await this.repo.instanceState(row.instanceId)) !== 'running') {
        // The instance stopped or ended meanwhile: try again (or release) on the next step.
        await this.repo.move(key, 'attaching', { state: 'creating', reason, claimedAt: null });
        return;
      }
      await this.repo.move(key, 'attaching', { state: 'failed', reason, claimedAt: null });
      this.logger.warn(
        { instanceId: row.instanceId, device: row.deviceName, volumeId, code: reason.code, message: reason.message },
        'block-device mapping failed: the volume could not be attached; the instance runs without it',
      );
    }
  }
}
