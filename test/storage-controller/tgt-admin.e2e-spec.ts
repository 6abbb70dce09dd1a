import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execRunner } from '../../apps/storage-controller/src/iscsi/command-runner.js';
import { TgtAdmin, TgtError } from '../../apps/storage-controller/src/iscsi/tgt-admin.js';

/** Against the machine's real tgtd (started by deploy/scripts/host-services.sh on 127.0.0.1:3260). */
describe('TgtAdmin on a real tgtd', () => {
  const tgt = new TgtAdmin(execRunner);
  const dir = mkdtempSync(join(tmpdir(), 'koala-tgt-'));
  const iqn = `iqn.2026-11.dev.koala:test-${process.pid}`;
  const user = `koala-test-${process.pid}`;
  let tid: number | undefined;

  afterAll(async () => {
    if (tid !== undefined) await tgt.deleteTarget(tid).catch(() => undefined);
    await tgt.deleteAccount(user).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('exports a file as LUN 1 bound to one initiator with CHAP, then removes it all', async () => {
    const file = join(dir, 'vol.img');
    writeFileSync(file, '');
    truncateSync(file, 64 * 1024 * 1024);
    tid = await tgt.createTarget(iqn);
    await tgt.addLun(tid, 1, file);
    await tgt.bindInitiatorName(tid, 'iqn.2026-11.dev.koala:node:test');
    await tgt.createAccount(user, 'chap-secret-1234');
    await tgt.bindAccount(tid, user);

    const t = (await tgt.listTargets()).find((x) => x.iqn === iqn)!;
    expect(t).toMatchObject({ tid, luns: [{ lun: 1, backingStore: file, sizeMB: 67 }], accounts: [user], acl: ['iqn.2026-11.dev.koala:node:test'], sessions: [] });
    expect(await tgt.listAccounts()).toContain(user);

    const dup = await tgt.createAccount(user, 'x-secret-12345').catch((e) => e);
    expect(dup).toBeInstanceOf(TgtError);
    expect(dup.alreadyExists).toBe(true);

    await tgt.deleteTarget(tid);
    await tgt.deleteAccount(user);
    tid = undefined;
    expect((await tgt.listTargets()).some((x) => x.iqn === iqn)).toBe(false);
    expect(await tgt.listAccounts()).not.toContain(user);
    const gone = await tgt.deleteTarget(999_999).catch((e) => e);
    expect(gone.notFound).toBe(true);
  });
});
