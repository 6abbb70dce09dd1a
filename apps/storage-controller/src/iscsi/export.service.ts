import { volumeTargetIqn, type ExportedTarget } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import { KeyedLock, settleAll } from '@koala/runtime';
import { StorageError } from '../volumes/volume-backend.js';
import type { OpenExport } from './sealed-exports.js';
import type { TgtAdmin, TgtTarget } from './tgt-admin.js';

/** Every Koala target name starts with this; targets outside it are never touched. */
export const KOALA_TARGET_PREFIX = volumeTargetIqn('');

export type TgtPort = Pick<
  TgtAdmin,
  'listTargets' | 'listAccounts' | 'createTarget' | 'addLun' | 'bindInitiatorName' | 'unbindInitiatorName' | 'createAccount' | 'bindAccount' | 'unbindAccount' | 'deleteAccount' | 'deleteTarget'
>;

/** The volumes this SC serves (only those it may export, or remove targets of). */
export interface ExportableVolumes {
  exists(volumeId: string): Promise<boolean>;
  path(volumeId: string): Promise<string>;
}

export interface IscsiExportOptions {
  tgt: TgtPort;
  volumes: ExportableVolumes;
  /** The exports the CLC wants (`listExports`); throws when the CLC does not answer. */
  desiredExports: () => Promise<OpenExport[]>;
  portal: string;
  logger: Logger;
}

/**
 * iSCSI exports with tgt: one target per volume (`volumeTargetIqn`), LUN 1 backed by the
 * volume, ACL = the attaching node's initiator only, one CHAP account. tgtd keeps all of it in
 * memory, so `reconcile()` (at start and periodically) rebuilds it from the desired exports
 * the CLC keeps. CHAP secrets live only in memory here and are never logged.
 */
export class IscsiExportService {
  private readonly lock = new KeyedLock();
  private readonly desired = new Map<string, OpenExport>();
  /** Change counter, and the counter value of each volume's last local export/unexport. */
  private version = 0;
  private readonly localChanges = new Map<string, number>();
  /** Secrets of the CHAP accounts this process created (tgt cannot tell us a password). */
  private readonly accountSecrets = new Map<string, string>();
  private heardFromClc = false;

  constructor(private readonly o: IscsiExportOptions) {}

  desiredExports(): OpenExport[] {
    return [...this.desired.values()];
  }

  async export(req: OpenExport): Promise<ExportedTarget> {
    return this.lock.run(req.volumeId, async () => {
      const current = this.desired.get(req.volumeId);
      if (current && current.node !== req.node) {
        throw new StorageError('VolumeInUse', `volume ${req.volumeId} is exported to node ${current.node}`);
      }
      if (!(await this.o.volumes.exists(req.volumeId))) throw new StorageError('InvalidVolume.NotFound', `volume ${req.volumeId} does not exist`);
      this.desired.set(req.volumeId, req);
      this.localChanges.set(req.volumeId, ++this.version);
      await this.ensure(req);
      // The secret is not echoed: the CLC has it, and it would cross the bus in clear.
      return { iqn: volumeTargetIqn(req.volumeId), lun: 1, portal: this.o.portal, chapUser: req.chapUser };
    });
  }

  async unexport(volumeId: string): Promise<void> {
    await this.lock.run(volumeId, async () => {
      const had = this.desired.get(volumeId);
      this.desired.delete(volumeId);
      this.localChanges.set(volumeId, ++this.version);
      await this.remove(volumeId, had?.chapUser);
    });
  }

  /** Called when the volume is deleted. */
  forget(volumeId: string): Promise<void> {
    return this.unexport(volumeId);
  }

  /**
   * Makes tgt match the desired exports: re-creates missing targets/LUNs/ACLs/accounts (tgtd
   * restarted) and, once the CLC has answered at least once, removes Koala targets of this
   * SC's volumes that nobody wants. When the CLC does not answer, the last known set is used.
   */
  async reconcile(): Promise<void> {
    const asked = this.version;
    try {
      const list = await this.o.desiredExports();
      const fresh = new Map(list.map((e) => [e.volumeId, e]));
      // Exports/unexports handled here after the question was asked win over the answer.
      for (const [id, v] of this.localChanges) {
        if (v <= asked) continue;
        const local = this.desired.get(id);
        if (local) fresh.set(id, local);
        else fresh.delete(id);
      }
      for (const [id, v] of [...this.localChanges]) if (v <= asked) this.localChanges.delete(id);
      this.desired.clear();
      for (const [id, e] of fresh) this.desired.set(id, e);
      this.heardFromClc = true;
    } catch (err) {
      this.o.logger.debug({ err: (err as Error).message }, 'CLC did not answer listExports; reconciling with the last known exports');
    }

    for (const req of [...this.desired.values()]) {
      await this.lock
        .run(req.volumeId, async () => {
          if (this.desired.get(req.volumeId) !== req) return; // changed meanwhile
          if (!(await this.o.volumes.exists(req.volumeId))) return; // not ours (or gone)
          await this.ensure(req);
        })
        .catch((err) => this.o.logger.warn({ err: (err as Error).message, volumeId: req.volumeId }, 'could not rebuild iSCSI export'));
    }
    if (!this.heardFromClc) return;
    for (const t of await this.o.tgt.listTargets()) {
      if (!t.iqn.startsWith(KOALA_TARGET_PREFIX)) continue;
      const volumeId = t.iqn.slice(KOALA_TARGET_PREFIX.length);
      if (this.desired.has(volumeId)) continue;
      await this.lock
        .run(volumeId, async () => {
          if (this.desired.has(volumeId) || !(await this.o.volumes.exists(volumeId))) return; // wanted now, or another SC's
          this.o.logger.info({ volumeId, iqn: t.iqn }, 'removing an iSCSI target nobody wants');
          await this.remove(volumeId);
        })
        .catch((err) => this.o.logger.warn({ err: (err as Error).message, volumeId }, 'could not remove unwanted iSCSI target'));
    }
  }

  /**
   * Creates whatever part of the export is missing (idempotent). Each `tgtadm` is a process of
   * its own (~10 ms here), so what does not depend on another step runs beside it: the two
   * listings; the CHAP account beside the target, its LUN and its initiator; the LUN beside the
   * initiator. Only binding the account waits for both. A new export is four steps deep
   * (listings, target, LUN and initiator, account binding), where one by one it was nine.
   */
  private async ensure(req: OpenExport): Promise<void> {
    const tgt = this.o.tgt;
    const iqn = volumeTargetIqn(req.volumeId);
    const [path, targets, accounts] = await Promise.all([this.o.volumes.path(req.volumeId), tgt.listTargets(), tgt.listAccounts()]);
    let t: TgtTarget | undefined = targets.find((x) => x.iqn === iqn);
    const target = async (): Promise<TgtTarget> => {
      if (t && t.luns.some((l) => l.lun === 1 && l.backingStore !== path)) {
        await tgt.deleteTarget(t.tid);
        t = undefined;
      }
      if (!t) {
        this.o.logger.info({ volumeId: req.volumeId, iqn, node: req.node }, 'creating iSCSI target');
        t = { tid: await tgt.createTarget(iqn, targets), iqn, luns: [], accounts: [], acl: [], sessions: [] };
      }
      const tid = t.tid;
      const acl = t.acl;
      await settleAll([
        t.luns.some((l) => l.lun === 1) ? Promise.resolve() : tgt.addLun(tid, 1, path),
        (async () => {
          for (const a of acl) if (a !== req.initiatorIqn) await tgt.unbindInitiatorName(tid, a);
          if (!acl.includes(req.initiatorIqn)) await tgt.bindInitiatorName(tid, req.initiatorIqn);
        })(),
      ] as const);
      return t;
    };
    const account = async (): Promise<boolean> => {
      if (this.accountSecrets.get(req.chapUser) === req.chapSecret && accounts.includes(req.chapUser)) return false;
      // Unknown password (earlier run) or a new one: re-create the account with the wanted secret.
      if (accounts.includes(req.chapUser)) await tgt.deleteAccount(req.chapUser).catch(() => undefined);
      await tgt.createAccount(req.chapUser, req.chapSecret);
      this.accountSecrets.set(req.chapUser, req.chapSecret);
      return true;
    };
    // All steps settle before a failure is thrown: the caller's rollback never races one.
    const [ready, recreated] = await settleAll([target(), account()] as const);
    for (const a of ready.accounts) if (a !== req.chapUser) await tgt.unbindAccount(ready.tid, a).catch(() => undefined);
    if (recreated || !ready.accounts.includes(req.chapUser)) await tgt.bindAccount(ready.tid, req.chapUser);
  }

  /** Deletes the volume's target (even with sessions) and its CHAP accounts no other target uses. */
  private async remove(volumeId: string, chapUser?: string): Promise<void> {
    const iqn = volumeTargetIqn(volumeId);
    const targets = await this.o.tgt.listTargets();
    const t = targets.find((x) => x.iqn === iqn);
    const users = new Set([...(t?.accounts ?? []), ...(chapUser ? [chapUser] : [])]);
    if (t) {
      this.o.logger.info({ volumeId, iqn }, 'deleting iSCSI target');
      await this.o.tgt.deleteTarget(t.tid);
    }
    const existing = new Set(await this.o.tgt.listAccounts());
    for (const u of users) {
      if (!existing.has(u) || targets.some((x) => x !== t && x.accounts.includes(u))) continue;
      await this.o.tgt.deleteAccount(u);
      this.accountSecrets.delete(u);
    }
  }
}
