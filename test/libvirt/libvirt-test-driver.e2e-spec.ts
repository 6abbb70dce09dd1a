// Integration tests of @koala/libvirt against the machine's libvirtd, using its built-in test
// driver (test:///default): the whole facade, error codes, events and concurrency.
import { randomUUID } from 'node:crypto';
import {
  DomainState,
  Libvirt,
  LibvirtError,
  StoragePoolState,
  VIR_ERR_NO_DOMAIN,
  VIR_ERR_NO_STORAGE_POOL,
  VIR_ERR_NO_STORAGE_VOL,
  VIR_ERR_OPERATION_INVALID,
  VIR_CONNECT_LIST_DOMAINS_ACTIVE,
  VIR_CONNECT_LIST_DOMAINS_INACTIVE,
  formatLibvirtVersion,
  type Domain,
  type StoragePool,
} from '@koala/libvirt';

const URI = 'test:///default';
const suffix = randomUUID().slice(0, 8);
const domName = `koala-test-dom-${suffix}`;
const poolName = `koala-test-pool-${suffix}`;

function domainXml(name: string, uuid?: string): string {
  return `<domain type='test'><name>${name}</name>${uuid ? `<uuid>${uuid}</uuid>` : ''}<memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`;
}

async function expectCode(p: Promise<unknown>, code: number): Promise<LibvirtError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(code);
    return err as LibvirtError;
  }
  throw new Error(`expected libvirt error ${code}, call succeeded`);
}

describe('libvirt client against test:///default', () => {
  let lv: Libvirt;

  beforeAll(async () => {
    lv = await Libvirt.connect({ uri: URI });
  });

  afterAll(async () => {
    // Clean up whatever a failed test left behind.
    for (const d of await lv.listAllDomains().catch(() => [])) {
      if (!d.name.startsWith('koala-test-')) continue;
      if (d.id > 0) await lv.destroyDomain(d).catch(() => undefined);
      await lv.undefineDomain(d).catch(() => undefined);
    }
    for (const p of await lv.listAllStoragePools().catch(() => [])) {
      if (!p.name.startsWith('koala-test-')) continue;
      await lv.destroyStoragePool(p).catch(() => undefined);
      await lv.undefineStoragePool(p).catch(() => undefined);
    }
    await lv.close();
  });

  it('reports host facts', async () => {
    expect(await lv.getHostname()).toEqual(expect.any(String));
    const lib = await lv.getLibVersion();
    expect(formatLibvirtVersion(lib)).toMatch(/^\d+\.\d+\.\d+$/);
    expect(lib).toBeGreaterThanOrEqual(9_000_000);
    expect(await lv.getVersion()).toBeGreaterThan(0);
    expect(await lv.getType()).toBe('TEST');
    expect(await lv.getCapabilities()).toContain('<capabilities>');
    const node = await lv.getNodeInfo();
    expect(node).toEqual({ model: 'i686', memory: 3145728, cpus: 16, mhz: 1400, nodes: 2, sockets: 2, cores: 2, threads: 2 });
    expect(await lv.getNodeFreeMemory()).toBeGreaterThan(0);
  });

  it('lists and looks up domains, with libvirt error codes for missing ones', async () => {
    const all = await lv.listAllDomains();
    const test = all.find((d) => d.name === 'test');
    expect(test).toBeDefined();
    expect(test!.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await lv.lookupDomainByName('test')).toEqual(test);
    expect(await lv.lookupDomainByUuid(test!.uuid)).toEqual(test);
    expect((await lv.listAllDomains(VIR_CONNECT_LIST_DOMAINS_ACTIVE)).map((d) => d.name)).toContain('test');
    const err = await expectCode(lv.lookupDomainByName(`koala-test-missing-${suffix}`), VIR_ERR_NO_DOMAIN);
    expect(err.message).toMatch(/not found|no domain/i);
    await expectCode(lv.lookupDomainByUuid(randomUUID()), VIR_ERR_NO_DOMAIN);
  });

  it('runs a domain through its life cycle and delivers lifecycle events', async () => {
    const sub = await lv.subscribeDomainLifecycle();
    const seen: string[] = [];
    sub.on('event', (ev) => {
      if (ev.domain.name === domName) seen.push(ev.eventName);
    });
    try {
      const uuid = randomUUID();
      const dom = await lv.defineDomain(domainXml(domName, uuid));
      expect(dom).toEqual({ name: domName, uuid, id: -1 });
      expect(await sub.next((e) => e.domain.name === domName)).toMatchObject({ eventName: 'defined' });
      expect((await lv.listAllDomains(VIR_CONNECT_LIST_DOMAINS_INACTIVE)).map((d) => d.name)).toContain(domName);
      expect((await lv.getDomainState(dom)).state).toBe(DomainState.SHUTOFF);
      expect(await lv.isDomainActive(dom)).toBe(false);

      const running = await lv.startDomain(dom);
      expect(running.id).toBeGreaterThan(0);
      expect(await sub.next((e) => e.domain.name === domName)).toMatchObject({ eventName: 'started', domain: { uuid } });
      expect(await lv.getDomainState(dom)).toEqual({ state: DomainState.RUNNING, reason: expect.any(Number) });
      const info = await lv.getDomainInfo(running);
      expect(info).toMatchObject({ state: DomainState.RUNNING, maxMem: 65536, nrVirtCpu: 1 });
      expect(typeof info.cpuTime).toBe('bigint');
      expect(await lv.getDomainXml(running)).toContain(`<name>${domName}</name>`);

      await lv.rebootDomain(running);
      await lv.shutdownDomain(running);
      expect(await sub.next((e) => e.domain.name === domName && e.eventName === 'stopped')).toBeTruthy();
      expect((await lv.getDomainState(dom)).state).toBe(DomainState.SHUTOFF);
      await expectCode(lv.destroyDomain(dom), VIR_ERR_OPERATION_INVALID); // not running

      await lv.startDomain(dom);
      await lv.destroyDomain(await lv.lookupDomainByName(domName));
      await lv.undefineDomain(dom);
      expect(await sub.next((e) => e.domain.name === domName && e.eventName === 'undefined')).toBeTruthy();
      await expectCode(lv.lookupDomainByName(domName), VIR_ERR_NO_DOMAIN);

      // Transient domain via createDomainXml.
      const t = await lv.createDomainXml(domainXml(`${domName}-t`));
      expect(t.id).toBeGreaterThan(0);
      await lv.destroyDomain(t);
      await expectCode(lv.lookupDomainByName(`${domName}-t`), VIR_ERR_NO_DOMAIN);

      await new Promise((r) => setImmediate(r));
      expect(seen).toEqual(expect.arrayContaining(['defined', 'started', 'stopped', 'undefined']));
    } finally {
      await sub.close();
    }
  });

  it('manages storage pools and volumes', async () => {
    const poolXml = `<pool type='dir'><name>${poolName}</name><target><path>/koala-test/${poolName}</path></target></pool>`;
    let pool: StoragePool = await lv.defineStoragePool(poolXml);
    try {
      expect(pool.name).toBe(poolName);
      expect(await lv.lookupStoragePoolByName(poolName)).toEqual(pool);
      expect(await lv.lookupStoragePoolByUuid(pool.uuid)).toEqual(pool);
      expect((await lv.getStoragePoolInfo(pool)).state).toBe(StoragePoolState.INACTIVE);
      await lv.buildStoragePool(pool);
      await lv.createStoragePool(pool);
      expect((await lv.getStoragePoolInfo(pool)).state).toBe(StoragePoolState.RUNNING);
      await lv.setStoragePoolAutostart(pool, true);
      expect(await lv.getStoragePoolAutostart(pool)).toBe(true);
      await lv.refreshStoragePool(pool);
      expect(await lv.getStoragePoolXml(pool)).toContain(`<name>${poolName}</name>`);
      expect((await lv.listAllStoragePools()).map((p) => p.name)).toEqual(expect.arrayContaining(['default-pool', poolName]));

      const vol = await lv.createVolume(pool, `<volume><name>koala-test-a.img</name><capacity unit='M'>8</capacity></volume>`);
      expect(vol).toMatchObject({ pool: poolName, name: 'koala-test-a.img' });
      expect(await lv.lookupVolumeByName(pool, 'koala-test-a.img')).toEqual(vol);
      const path = await lv.getVolumePath(vol);
      expect(path).toBe(`/koala-test/${poolName}/koala-test-a.img`);
      expect(await lv.lookupVolumeByPath(path)).toEqual(vol);
      expect(await lv.lookupStoragePoolByVolume(vol)).toEqual(pool);
      expect((await lv.getVolumeInfo(vol)).capacity).toBe(8 * 1024 * 1024);
      expect(await lv.getVolumeXml(vol)).toContain('<name>koala-test-a.img</name>');
      const clone = await lv.createVolumeFrom(pool, `<volume><name>koala-test-b.img</name><capacity unit='M'>8</capacity></volume>`, vol);
      expect((await lv.listAllVolumes(pool)).map((v) => v.name).sort()).toEqual(['koala-test-a.img', 'koala-test-b.img']);
      await lv.deleteVolume(clone);
      await expectCode(lv.lookupVolumeByName(pool, 'koala-test-b.img'), VIR_ERR_NO_STORAGE_VOL);
      await lv.deleteVolume(vol);
      expect(await lv.listAllVolumes(pool)).toEqual([]);

      await lv.destroyStoragePool(pool);
      await lv.undefineStoragePool(pool);
      await expectCode(lv.lookupStoragePoolByName(poolName), VIR_ERR_NO_STORAGE_POOL);
    } catch (err) {
      pool = await lv.lookupStoragePoolByName(poolName).catch(() => pool);
      await lv.destroyStoragePool(pool).catch(() => undefined);
      await lv.undefineStoragePool(pool).catch(() => undefined);
      throw err;
    }
  });

  it('answers 1,000 concurrent calls on one connection', async () => {
    const test = await lv.lookupDomainByName('test');
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => (i % 2 ? lv.getDomainInfo(test) : lv.lookupDomainByName('test'))));
    expect(results).toHaveLength(1000);
    results.forEach((r, i) => {
      if (i % 2) expect(r).toMatchObject({ state: DomainState.RUNNING });
      else expect((r as Domain).uuid).toBe(test.uuid);
    });
    expect(lv.rpc.pendingCount).toBe(0);
  });
});
