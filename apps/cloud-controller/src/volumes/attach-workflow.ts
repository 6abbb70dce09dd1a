/**
 * The side of AttachVolume / DetachVolume that talks to the zone, with its rollback, as plain
 * functions over small step callbacks (unit-tested with fakes; VolumeAttachmentsService wires
 * them to the SC and CC).
 */
import type { ExportedTarget } from '@koala/contracts';
import type { Logger } from '@koala/logging';

export interface AttachSteps {
  /** SC: export the volume to the instance's node. */
  exportVolume(): Promise<ExportedTarget>;
  /** CC → NC: log in and hot-plug; the guest device libvirt chose. */
  attach(target: ExportedTarget): Promise<{ guestDevice: string }>;
  /** CC → NC: unplug (force). */
  detach(): Promise<void>;
  /** SC: remove the export. */
  unexport(): Promise<void>;
}

export type AttachOutcome = { ok: true; guestDevice: string } | { ok: false; error: unknown; failedAt: 'export' | 'attach'; rollbackErrors: unknown[] };

/**
 * Export, then attach. On any failure undo what may have happened: after a failed attach the NC
 * may have half-plugged the disk (or answered too late), so detach it; then remove the export
 * (also after a failed export: the SC may have created the target before failing). Rollback
 * errors are collected, never thrown: the caller answers the original error.
 */
export async function runAttach(steps: AttachSteps, logger?: Pick<Logger, 'warn'>): Promise<AttachOutcome> {
  let target: ExportedTarget;
  const rollbackErrors: unknown[] = [];
  const undo = async (step: () => Promise<void>, what: string) => {
    try {
      await step();
    } catch (err) {
      rollbackErrors.push(err);
      logger?.warn({ err: (err as Error).message }, `attach rollback: ${what} failed`);
    }
  };
  try {
    target = await steps.exportVolume();
  } catch (error) {
    await undo(steps.unexport, 'unexport');
    return { ok: false, error, failedAt: 'export', rollbackErrors };
  }
  try {
    const { guestDevice } = await steps.attach(target);
    return { ok: true, guestDevice };
  } catch (error) {
    await undo(steps.detach, 'detach');
    await undo(steps.unexport, 'unexport');
    return { ok: false, error, failedAt: 'attach', rollbackErrors };
  }
}

export interface DetachSteps {
  /** CC → NC unplug; undefined when there is nothing to unplug (instance gone). */
  detach?: () => Promise<void>;
  unexport(): Promise<void>;
}

export type DetachOutcome = { ok: true; unexported: boolean } | { ok: false; error: unknown };

/**
 * Detach at the node, then unexport. A failed node detach stops here unless `force` (the NC is
 * unreachable: the export is removed anyway, so the node loses access). A failed unexport does
 * not keep the volume attached: the SC reconciles its targets from `listExports`, which no
 * longer lists it.
 */
export async function runDetach(steps: DetachSteps, force: boolean, logger?: Pick<Logger, 'warn'>): Promise<DetachOutcome> {
  if (steps.detach) {
    try {
      await steps.detach();
    } catch (error) {
      if (!force) return { ok: false, error };
      logger?.warn({ err: (error as Error).message }, 'forced detach: the node did not detach; removing the export anyway');
    }
  }
  try {
    await steps.unexport();
    return { ok: true, unexported: true };
  } catch (err) {
    logger?.warn({ err: (err as Error).message }, 'unexport failed; the SC drops the target when it next reconciles with listExports');
    return { ok: true, unexported: false };
  }
}
