import type { IscsiTarget } from '@koala/contracts';
import { runAttach, runDetach, type AttachSteps } from './attach-workflow.js';
import { checkAttachable, checkDeletable, checkDetachable, checkDevice, decideVolumeEvent, rolledBack, volumeStatus } from './volume-states.js';
import { decideSnapshotEvent } from '../snapshots/snapshot-states.js';

const NOW = new Date('2026-11-26T03:00:00Z');
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as { code: string }).code;
  }
  return 'ok';
};

describe('volume state machine', () => {
  it('applies SC events: creating → available | error, deleting → deleted | error', () => {
    expect(decideVolumeEvent({ state: 'creating', zone: 'z' }, { state: 'available', zone: 'z' }, NOW)).toMatchObject({ kind: 'apply', patch: { state: 'available' } });
    expect(decideVolumeEvent({ state: 'creating', zone: 'z' }, { state: 'error', zone: 'z', reason: { code: 'InsufficientVolumeCapacity', message: 'full' } }, NOW)).toMatchObject({
      kind: 'apply',
      patch: { state: 'error', stateReasonCode: 'InsufficientVolumeCapacity' },
    });
    expect(decideVolumeEvent({ state: 'deleting', zone: 'z' }, { state: 'deleted', zone: 'z' }, NOW)).toMatchObject({ kind: 'apply', deleted: true, patch: { state: 'deleted', deletedAt: NOW } });
  });

  it('ignores duplicates, stale events, other zones and unknown volumes', () => {
    expect(decideVolumeEvent(undefined, { state: 'available', zone: 'z' }, NOW).kind).toBe('ignore');
    expect(decideVolumeEvent({ state: 'available', zone: 'z' }, { state: 'available', zone: 'z' }, NOW).kind).toBe('ignore');
    expect(decideVolumeEvent({ state: 'deleting', zone: 'z' }, { state: 'available', zone: 'z' }, NOW).kind).toBe('ignore'); // create finished after DeleteVolume
    expect(decideVolumeEvent({ state: 'in-use', zone: 'z' }, { state: 'available', zone: 'z' }, NOW).kind).toBe('ignore');
    expect(decideVolumeEvent({ state: 'creating', zone: 'z' }, { state: 'available', zone: 'other' }, NOW).kind).toBe('ignore');
  });

  it('refuses to delete attached volumes and treats a second delete as done', () => {
    expect(code(() => checkDeletable({ id: 'vol-1', state: 'in-use', attachState: 'attached', attachInstanceId: 'i-1' }))).toBe('VolumeInUse');
    expect(code(() => checkDeletable({ id: 'vol-1', state: 'in-use', attachState: 'attaching', attachInstanceId: 'i-1' }))).toBe('VolumeInUse');
    expect(checkDeletable({ id: 'vol-1', state: 'deleting', attachState: null, attachInstanceId: null })).toBe('noop');
    expect(checkDeletable({ id: 'vol-1', state: 'error', attachState: null, attachInstanceId: null })).toBe('delete');
  });

  it('checks attach preconditions: one attachment, same zone, running or stopped instance, valid device', () => {
    const vol = { id: 'vol-1', state: 'available' as const, zone: 'a', attachState: null, attachInstanceId: null };
    const inst = { id: 'i-1', state: 'running', zone: 'a', node: 'n1' };
    expect(code(() => checkAttachable(vol, inst))).toBe('ok');
    expect(code(() => checkAttachable({ ...vol, state: 'in-use', attachState: 'attached', attachInstanceId: 'i-2' }, inst))).toBe('VolumeInUse');
    expect(code(() => checkAttachable(vol, { ...inst, zone: 'b' }))).toBe('InvalidVolume.ZoneMismatch');
    expect(code(() => checkAttachable(vol, { ...inst, state: 'stopped' }))).toBe('ok');
    expect(code(() => checkAttachable(vol, { ...inst, state: 'stopping' }))).toBe('IncorrectState');
    expect(code(() => checkAttachable(vol, { ...inst, state: 'pending' }))).toBe('IncorrectState');
    expect(code(() => checkAttachable(vol, { ...inst, state: 'stopped', node: null }))).toBe('IncorrectState');
    expect(code(() => checkAttachable({ ...vol, state: 'creating' }, inst))).toBe('IncorrectState');
    for (const d of ['/dev/sdf', '/dev/vdb', '/dev/xvdh', 'xvdg', '/dev/sdba']) expect(code(() => checkDevice(d, '/dev/vda'))).toBe('ok');
    for (const d of ['/dev/sda', 'sdf', '/dev/vda', '/etc/passwd', '/dev/sdf/../x', '']) expect(code(() => checkDevice(d, '/dev/vda'))).toBe('InvalidParameterValue');
    expect(code(() => checkDevice('/dev/sda', '/dev/sda1'))).toBe('InvalidParameterValue');
  });

  it('checks detach preconditions', () => {
    const v = { id: 'vol-1', state: 'in-use' as const, attachState: 'attached' as const, attachInstanceId: 'i-1', attachDevice: '/dev/sdf' };
    expect(code(() => checkDetachable(v, { force: false }))).toBe('ok');
    expect(code(() => checkDetachable(v, { instanceId: 'i-2', force: false }))).toBe('InvalidAttachment.NotFound');
    expect(code(() => checkDetachable(v, { device: '/dev/sdg', force: false }))).toBe('InvalidAttachment.NotFound');
    expect(code(() => checkDetachable({ ...v, attachState: 'attaching' }, { force: false }))).toBe('IncorrectState');
    expect(code(() => checkDetachable({ ...v, attachState: 'attaching' }, { force: true }))).toBe('ok');
    expect(code(() => checkDetachable({ ...v, state: 'available', attachState: null, attachInstanceId: null }, { force: true }))).toBe('IncorrectState');
  });

  it('a rolled-back attachment leaves the volume available, detached, with the reason and no credentials', () => {
    expect(rolledBack({ code: 'Nc.Failed', message: 'no' })).toMatchObject({ state: 'available', attachState: null, attachInstanceId: null, chapSecretEnc: null, stateReasonCode: 'Nc.Failed' });
  });

  it('maps states to DescribeVolumeStatus', () => {
    expect(volumeStatus({ state: 'in-use' })).toBe('ok');
    expect(volumeStatus({ state: 'error' })).toBe('impaired');
    expect(volumeStatus({ state: 'creating' })).toBe('insufficient-data');
  });
});

describe('snapshot state machine', () => {
  const s = { state: 'pending' as const, progress: 10, zone: 'z' };
  it('moves progress forward only, completes at 100%, errors with a reason', () => {
    expect(decideSnapshotEvent(s, { state: 'pending', progress: 40, zone: 'z' })).toEqual({ kind: 'apply', patch: { progress: 40 } });
    expect(decideSnapshotEvent(s, { state: 'pending', progress: 5, zone: 'z' }).kind).toBe('ignore');
    expect(decideSnapshotEvent(s, { state: 'completed', zone: 'z' })).toMatchObject({ kind: 'apply', patch: { state: 'completed', progress: 100 } });
    expect(decideSnapshotEvent(s, { state: 'error', zone: 'z', reason: { code: 'X', message: 'm' } })).toMatchObject({ patch: { state: 'error', stateReasonCode: 'X' } });
    expect(decideSnapshotEvent({ ...s, state: 'completed' }, { state: 'pending', progress: 50, zone: 'z' }).kind).toBe('ignore');
  });
});

describe('attach workflow (rollback)', () => {
  const target: IscsiTarget = { iqn: 'iqn.x', lun: 1, portal: '127.0.0.1:3260', chapUser: 'vol-1', chapSecret: 's'.repeat(32) };
  function fake(fail: { export?: boolean; attach?: boolean; detach?: boolean; unexport?: boolean } = {}) {
    const calls: string[] = [];
    const step =
      <T>(name: string, failIt: boolean | undefined, value: T) =>
      async () => {
        calls.push(name);
        if (failIt) throw Object.assign(new Error(`${name} failed`), { code: `${name}.Failed` });
        return value;
      };
    const steps: AttachSteps = {
      exportVolume: step('export', fail.export, target),
      attach: step('attach', fail.attach, { guestDevice: 'vdb' }),
      detach: step('detach', fail.detach, undefined),
      unexport: step('unexport', fail.unexport, undefined),
    };
    return { steps, calls };
  }

  it('exports then attaches', async () => {
    const f = fake();
    expect(await runAttach(f.steps)).toEqual({ ok: true, guestDevice: 'vdb' });
    expect(f.calls).toEqual(['export', 'attach']);
  });

  it('a failed attach at the NC detaches and unexports, and reports the attach error', async () => {
    const f = fake({ attach: true });
    const r = await runAttach(f.steps);
    expect(r).toMatchObject({ ok: false, failedAt: 'attach', rollbackErrors: [] });
    expect((r as { error: Error }).error.message).toBe('attach failed');
    expect(f.calls).toEqual(['export', 'attach', 'detach', 'unexport']);
  });

  it('a failed export still unexports (the target may exist) and never attaches', async () => {
    const f = fake({ export: true });
    expect(await runAttach(f.steps)).toMatchObject({ ok: false, failedAt: 'export' });
    expect(f.calls).toEqual(['export', 'unexport']);
  });

  it('rollback errors are collected, never thrown, and every undo step is tried', async () => {
    const f = fake({ attach: true, detach: true, unexport: true });
    const r = await runAttach(f.steps);
    expect(r).toMatchObject({ ok: false, failedAt: 'attach' });
    expect((r as { rollbackErrors: unknown[] }).rollbackErrors).toHaveLength(2);
    expect(f.calls).toEqual(['export', 'attach', 'detach', 'unexport']);
  });

  it('detach: node first, then unexport; a node failure stops unless forced', async () => {
    const calls: string[] = [];
    const ok = { detach: async () => void calls.push('detach'), unexport: async () => void calls.push('unexport') };
    expect(await runDetach(ok, false)).toEqual({ ok: true, unexported: true });
    expect(calls).toEqual(['detach', 'unexport']);
    const down = { detach: async () => Promise.reject(new Error('nc down')), unexport: async () => void calls.push('unexport2') };
    expect(await runDetach(down, false)).toMatchObject({ ok: false });
    expect(calls).not.toContain('unexport2');
    expect(await runDetach(down, true)).toEqual({ ok: true, unexported: true });
    expect(calls).toContain('unexport2');
    expect(await runDetach({ unexport: async () => Promise.reject(new Error('sc down')) }, false)).toEqual({ ok: true, unexported: false });
  });
});
