import { nodeInitiatorIqn, volumeTargetIqn } from '@koala/contracts';
import type { OpenExport as ExportVolumeRequest } from './sealed-exports.js';
import type { Logger } from '@koala/logging';
import { FakeTgtd } from './fake-tgtd.js';
import { IscsiExportService } from './export.service.js';
import { TgtAdmin } from './tgt-admin.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;
const req = (volumeId: string, node = 'n1'): ExportVolumeRequest => ({ volumeId, node, initiatorIqn: nodeInitiatorIqn(node), chapUser: `u-${volumeId}`, chapSecret: `secret-of-${volumeId}` });

function setup(ours = ['vol-1', 'vol-2', 'vol-3']) {
  const tgtd = new FakeTgtd();
  let clc: ExportVolumeRequest[] | Error = new Error('CLC not there yet');
  let beforeAnswer: () => Promise<void> = async () => undefined;
  const service = new IscsiExportService({
    tgt: new TgtAdmin(tgtd),
    volumes: { exists: async (id) => ours.includes(id), path: async (id) => `/vols/${id}.img` },
    desiredExports: async () => {
      await beforeAnswer();
      if (clc instanceof Error) throw clc;
      return clc;
    },
    portal: '127.0.0.1:3260',
    logger: quiet,
  });
  const target = (id: string) => [...tgtd.targets.values()].find((t) => t.iqn === volumeTargetIqn(id));
  return {
    tgtd,
    service,
    target,
    setClc: (v: ExportVolumeRequest[] | Error) => (clc = v),
    onAsk: (fn: () => Promise<void>) => (beforeAnswer = fn),
  };
}

describe('IscsiExportService', () => {
  it('exports LUN 1 to one initiator with a CHAP account, idempotently; VolumeInUse for another node', async () => {
    const { service, tgtd, target } = setup();
    const answer = await service.export(req('vol-1'));
    expect(answer).toEqual({ iqn: volumeTargetIqn('vol-1'), lun: 1, portal: '127.0.0.1:3260', chapUser: 'u-vol-1' }); // the secret is not echoed
    const t = target('vol-1')!;
    expect([...t.luns]).toEqual([[1, '/vols/vol-1.img']]);
    expect(t.acl).toEqual([nodeInitiatorIqn('n1')]);
    expect(t.accounts).toEqual(['u-vol-1']);
    expect(tgtd.accounts.get('u-vol-1')).toBe('secret-of-vol-1');

    const calls = tgtd.calls.length;
    expect(await service.export(req('vol-1'))).toEqual(answer);
    expect(tgtd.calls.slice(calls).every((c) => c.includes('show'))).toBe(true); // nothing changed
    await expect(service.export(req('vol-1', 'n2'))).rejects.toMatchObject({ code: 'VolumeInUse' });
    await expect(service.export(req('vol-9'))).rejects.toMatchObject({ code: 'InvalidVolume.NotFound' });
  });

  it('a new export reads each listing once and runs nothing twice (each tgtadm is a process)', async () => {
    const { service, tgtd } = setup();
    await service.export(req('vol-1'));
    const ops = tgtd.calls.map((c) => `${c[c.indexOf('--mode') + 1]} ${c[c.indexOf('--op') + 1]}`).sort();
    expect(ops).toEqual(['account bind', 'account new', 'account show', 'logicalunit new', 'target bind', 'target new', 'target show'].sort());
  });

  it('unexport removes the target and its account, and is idempotent', async () => {
    const { service, tgtd, target } = setup();
    await service.export(req('vol-1'));
    await service.unexport('vol-1');
    expect(target('vol-1')).toBeUndefined();
    expect(tgtd.accounts.size).toBe(0);
    await service.unexport('vol-1');
    expect(await service.export(req('vol-1', 'n2'))).toMatchObject({ iqn: volumeTargetIqn('vol-1') });
  });

  it('rebuilds every export after tgtd restarted, from the last known set when the CLC is silent', async () => {
    const { service, tgtd, target } = setup();
    await service.export(req('vol-1'));
    await service.export(req('vol-2', 'n2'));
    tgtd.restart();
    await service.reconcile(); // CLC does not answer: last known desired set
    expect(target('vol-1')?.acl).toEqual([nodeInitiatorIqn('n1')]);
    expect(target('vol-2')?.acl).toEqual([nodeInitiatorIqn('n2')]);
    expect(tgtd.accounts.get('u-vol-2')).toBe('secret-of-vol-2');
  });

  it('after an SC restart, takes the exports from the CLC and fixes drifted targets', async () => {
    const { service, tgtd, target, setClc } = setup();
    // left by the previous SC process: an account with an unknown password, a wrong ACL
    await new TgtAdmin(tgtd).createTarget(volumeTargetIqn('vol-1'));
    tgtd.targets.get(1)!.acl.push('iqn.someone-else');
    tgtd.accounts.set('u-vol-1', 'stale');
    setClc([req('vol-1')]);
    await service.reconcile();
    const t = target('vol-1')!;
    expect(t.acl).toEqual([nodeInitiatorIqn('n1')]);
    expect([...t.luns]).toEqual([[1, '/vols/vol-1.img']]);
    expect(t.accounts).toEqual(['u-vol-1']);
    expect(tgtd.accounts.get('u-vol-1')).toBe('secret-of-vol-1');
    expect(service.desiredExports()).toEqual([req('vol-1')]);
  });

  it('removes unwanted Koala targets of its own volumes only once the CLC has answered; never others', async () => {
    const { service, tgtd, target, setClc } = setup();
    const admin = new TgtAdmin(tgtd);
    await admin.createTarget(volumeTargetIqn('vol-3')); // ours, nobody wants it
    await admin.createTarget(volumeTargetIqn('vol-77')); // a Koala target of another SC's volume
    await admin.createTarget('iqn.2001-04.com.example:other'); // not Koala's
    await service.reconcile(); // CLC silent: remove nothing
    expect(target('vol-3')).toBeDefined();
    setClc([]);
    await service.reconcile();
    expect(target('vol-3')).toBeUndefined();
    expect(target('vol-77')).toBeDefined();
    expect([...tgtd.targets.values()].some((t) => t.iqn === 'iqn.2001-04.com.example:other')).toBe(true);
  });

  it('an export made while the CLC answer was in flight survives that (older) answer', async () => {
    const { service, target, setClc, onAsk } = setup();
    setClc([]);
    onAsk(async () => {
      onAsk(async () => undefined);
      await service.export(req('vol-2'));
    });
    await service.reconcile();
    expect(target('vol-2')).toBeDefined();
    expect(service.desiredExports().map((e) => e.volumeId)).toEqual(['vol-2']);
  });
});
