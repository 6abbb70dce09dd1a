import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstanceSpec } from '@koala/contracts';
import { FsLaunchSpecStore, launchRecordOf } from './launch-spec-store.js';

const blob = (id: string) => ({ imageId: id, sha256: 'a'.repeat(64), sizeBytes: 1, format: 'raw' as const, url: 'http://127.0.0.1/x?sig=secret' });
const spec: InstanceSpec = {
  instanceId: 'i-0123456789abcdef0',
  reservationId: 'r-1',
  accountId: '000000000042',
  instanceType: 'm1.small',
  resources: { vcpus: 1, memoryMiB: 256, rootDiskGiB: 1, ephemeralGiB: 2 },
  image: { virtualizationType: 'paravirtual', root: blob('emi-00000001'), kernel: blob('eki-00000002'), ramdisk: blob('eri-00000003') },
  userData: Buffer.from('secret').toString('base64'),
  keyName: 'k',
  publicKey: 'ssh-ed25519 AAAA k',
  hostname: 'h',
  availabilityZone: 'koala-1a',
  launchIndex: 1,
};

describe('launch records', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'koala-lr-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keep what the metadata service needs, not the signed image URLs', () => {
    const r = launchRecordOf(spec, new Date('2026-12-07T01:02:03.456Z'));
    expect(r).toEqual({
      instanceId: 'i-0123456789abcdef0',
      reservationId: 'r-1',
      accountId: '000000000042',
      instanceType: 'm1.small',
      virtualizationType: 'paravirtual',
      imageId: 'emi-00000001',
      kernelId: 'eki-00000002',
      ramdiskId: 'eri-00000003',
      userData: spec.userData,
      keyName: 'k',
      publicKey: 'ssh-ed25519 AAAA k',
      hostname: 'h',
      availabilityZone: 'koala-1a',
      launchIndex: 1,
      ephemeral: true,
      pendingTime: '2026-12-07T01:02:03Z',
    });
    expect(JSON.stringify(r)).not.toContain('sig=');
  });

  it('files are 0600, survive a new store, go on remove; hostile ids and torn files read as none', async () => {
    const a = new FsLaunchSpecStore(join(dir, 'nc', 'n1', 'instances'));
    await a.put(launchRecordOf(spec, new Date()));
    const file = join(dir, 'nc', 'n1', 'instances', `${spec.instanceId}.json`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'nc', 'n1', 'instances')).mode & 0o777).toBe(0o700);
    const b = new FsLaunchSpecStore(join(dir, 'nc', 'n1', 'instances'));
    expect((await b.get(spec.instanceId))?.userData).toBe(spec.userData);
    for (const bad of ['../../etc/passwd', 'i-../../x', '', 'i-0123456789abcdef0.json', 'i-0123456789ABCDEF0']) expect(await b.get(bad)).toBeUndefined();
    await b.remove('../x');
    await b.remove(spec.instanceId);
    expect(existsSync(file)).toBe(false);
    expect(await b.get(spec.instanceId)).toBeUndefined();
    await b.remove(spec.instanceId); // idempotent
    writeFileSync(join(dir, 'nc', 'n1', 'instances', 'i-00000000000000001.json'), '{"instanceId":');
    expect(await new FsLaunchSpecStore(join(dir, 'nc', 'n1', 'instances')).get('i-00000000000000001')).toBeUndefined();
    // A valid record under another instance's name is not that instance's.
    await a.put(launchRecordOf(spec, new Date()));
    writeFileSync(join(dir, 'nc', 'n1', 'instances', 'i-00000000000000002.json'), readFileSync(file, 'utf8'));
    expect(await new FsLaunchSpecStore(join(dir, 'nc', 'n1', 'instances')).get('i-00000000000000002')).toBeUndefined();
  });
});
