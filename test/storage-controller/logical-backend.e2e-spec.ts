import { randomBytes } from 'node:crypto';
import { Libvirt, parseStoragePoolXml } from '@koala/libvirt';
import { LogicalPoolBackend } from '../../apps/storage-controller/src/volumes/logical-pool-backend.js';

/**
 * The LVM backend as far as libvirt's test driver (`test:///default`) takes it: no
 * device-mapper on these machines, so no real volume group, no lvcreate, no data path.
 * Checked: the pool XML is accepted and started without pool-build (the VG is the operator's),
 * volumes are created fully allocated at /dev/<vg>/<id>, listed, found, deleted.
 */
describe('LogicalPoolBackend on the libvirt test driver', () => {
  const suffix = randomBytes(3).toString('hex');
  const poolName = `koala-test-lvm-${process.pid}-${suffix}`;
  const vg = `koalavg${suffix}`;
  let lv: Libvirt;
  let backend: LogicalPoolBackend;

  beforeAll(async () => {
    lv = await Libvirt.connect({ uri: 'test:///default' });
    backend = new LogicalPoolBackend({ libvirt: async () => lv, poolName, vgName: vg });
  });

  afterAll(async () => {
    try {
      const pool = await lv.lookupStoragePoolByName(poolName);
      for (const v of await lv.listAllVolumes(pool)) await lv.deleteVolume(v).catch(() => undefined);
      await lv.destroyStoragePool(pool).catch(() => undefined);
      await lv.undefineStoragePool(pool).catch(() => undefined);
    } catch {
      // never defined
    }
    await lv.close();
  });

  it('defines and starts a logical pool on the configured volume group', async () => {
    await backend.open();
    const pool = await lv.lookupStoragePoolByName(poolName);
    const parsed = parseStoragePoolXml(await lv.getStoragePoolXml(pool));
    expect(parsed).toMatchObject({ type: 'logical', sourceName: vg, targetPath: `/dev/${vg}` });
    expect(await lv.getStoragePoolAutostart(pool)).toBe(true);
    const cap = await backend.capacity();
    expect(cap.capacityBytes).toBeGreaterThan(0);
  });

  it('creates, lists, finds and deletes fully allocated logical volumes', async () => {
    const id = `vol-${randomBytes(8).toString('hex')}`;
    const vol = await backend.create(id, 1024 ** 3);
    expect(vol).toMatchObject({ id, path: `/dev/${vg}/${id}`, capacityBytes: 1024 ** 3, allocationBytes: 1024 ** 3 });
    expect(await backend.exists(id)).toBe(true);
    expect(await backend.path(id)).toBe(`/dev/${vg}/${id}`);
    expect((await backend.list()).map((v) => v.id)).toContain(id);
    await expect(backend.create(id, 1024 ** 3)).rejects.toMatchObject({ code: 'VolumeExists' });
    await backend.delete(id);
    await backend.delete(id); // missing: fine
    expect(await backend.exists(id)).toBe(false);
  });

  it('has no data path on the test driver (stream upload/download unsupported)', async () => {
    const id = `vol-${randomBytes(8).toString('hex')}`;
    await backend.create(id, 1024 ** 2);
    await expect(backend.write(id, 0, Buffer.alloc(512))).rejects.toThrow(/not supported/);
    await backend.delete(id);
  });
});
