import type { ImageBlob, InstanceEvent, InstanceSpec } from '@koala/contracts';
import type { ConfigDriveContent } from '../config-drive/config-drive.js';
import type { ConsoleLog } from '../console/console-log.js';
import type { CachedImage, ImageCache } from '../images/image-cache.js';
import { ImageFormatError } from '../images/libvirt-image-cache.js';
import type { DomainRunState, HostDomain, HostDomainEvent, Hypervisor, InstanceDomainSpec, InstanceMeta, VolumeRef } from '../libvirt/hypervisor.js';
import { volumeNames } from '../libvirt/hypervisor.js';
import type { InstanceEventSink } from './instance-events.js';
import { InstanceManager, type InstanceManagerOptions } from './instance-manager.js';

const sha = (c: string) => c.repeat(64);
const blob = (c: string, size = 1000): ImageBlob => ({ imageId: `emi-${c}`, sha256: sha(c), sizeBytes: size, format: 'raw', url: `http://127.0.0.1/${c}` });

/** libvirt in memory: domains by name, volumes by name, an event hook; `failOn` makes one call throw. */
class FakeHypervisor implements Hypervisor {
  domains = new Map<string, { spec?: InstanceDomainSpec; meta?: InstanceMeta; state: DomainRunState }>();
  volumes = new Map<string, VolumeRef>();
  calls: string[] = [];
  failOn?: string;
  /** shutdownDomain powers off at once unless false (guest ignores ACPI). */
  acpiWorks = true;
  /** This many shutdownDomain requests are lost first (a guest still booting). */
  acpiLost = 0;
  private listeners: ((ev: HostDomainEvent) => void)[] = [];

  private step(name: string) {
    this.calls.push(name);
    if (this.failOn === name) throw new Error(`${name} exploded`);
  }
  fire(name: string, event: string) {
    for (const l of this.listeners) l({ name, event, detail: 0 });
  }
  async prepare() {}
  async listDomains(): Promise<HostDomain[]> {
    return [...this.domains].map(([name, d]) => ({ name, state: d.state, ...(d.meta ? { meta: d.meta } : {}) }));
  }
  async getDomain(name: string) {
    const d = this.domains.get(name);
    return d ? { name, state: d.state, ...(d.meta ? { meta: d.meta } : {}) } : undefined;
  }
  async createRootDisk(id: string, base: CachedImage, capacityBytes: number) {
    this.step('createRootDisk');
    const v = { pool: 'p', name: volumeNames(id).root, format: 'qcow2' as const };
    this.volumes.set(v.name, v);
    this.calls.push(`root:${base.path}:${capacityBytes}`);
    return v;
  }
  async createEphemeralDisk(id: string) {
    this.step('createEphemeralDisk');
    const v = { pool: 'p', name: volumeNames(id).ephemeral, format: 'raw' as const };
    this.volumes.set(v.name, v);
    return v;
  }
  async createConfigDrive(id: string) {
    this.step('createConfigDrive');
    const v = { pool: 'p', name: volumeNames(id).configDrive, format: 'raw' as const };
    this.volumes.set(v.name, v);
    return v;
  }
  async deleteVolumes(id: string) {
    this.step('deleteVolumes');
    for (const n of Object.values(volumeNames(id))) this.volumes.delete(n);
  }
  async defineDomain(spec: InstanceDomainSpec) {
    this.step('defineDomain');
    this.domains.set(spec.meta.instanceId, { spec, meta: spec.meta, state: 'shutoff' });
  }
  async startDomain(name: string) {
    this.step('startDomain');
    this.domains.get(name)!.state = 'running';
    this.fire(name, 'started');
  }
  async shutdownDomain(name: string) {
    this.step('shutdownDomain');
    if (this.acpiLost > 0) {
      this.acpiLost--;
      return;
    }
    if (this.acpiWorks) {
      this.domains.get(name)!.state = 'shutoff';
      this.fire(name, 'stopped');
    }
  }
  async rebootDomain() {
    this.step('rebootDomain');
  }
  async destroyDomain(name: string) {
    this.step('destroyDomain');
    const d = this.domains.get(name);
    if (d && d.state !== 'shutoff') {
      d.state = 'shutoff';
      this.fire(name, 'stopped');
    }
  }
  async undefineDomain(name: string) {
    this.step('undefineDomain');
    this.domains.delete(name);
  }
  onDomainEvent(l: (ev: HostDomainEvent) => void) {
    this.listeners.push(l);
  }
  onConnected() {}
}

class FakeImages implements ImageCache {
  held = new Map<string, Set<string>>();
  /** What the real cache throws when the bytes contradict the message (ImageFormatError). */
  refuse?: Error;
  async acquire(b: ImageBlob, holder: string): Promise<CachedImage> {
    if (this.refuse) throw this.refuse;
    (this.held.get(b.sha256) ?? this.held.set(b.sha256, new Set()).get(b.sha256)!).add(holder);
    return { sha256: b.sha256, pool: 'cache', volume: b.sha256, path: `/cache/${b.sha256.slice(0, 4)}`, format: b.format, sizeBytes: b.sizeBytes, virtualSizeBytes: b.sizeBytes };
  }
  release(s: string, holder: string) {
    this.held.get(s)?.delete(holder);
  }
  adopt(s: string, holder: string) {
    (this.held.get(s) ?? this.held.set(s, new Set()).get(s)!).add(holder);
  }
  holders(s: string) {
    return [...(this.held.get(s) ?? [])];
  }
}

class FakeConsole implements ConsoleLog {
  files = new Map<string, string>();
  path(id: string) {
    return `/console/${id}.log`;
  }
  async reset(id: string) {
    this.files.set(id, '');
    return this.path(id);
  }
  async tail(id: string, max: number) {
    const f = this.files.get(id);
    return f === undefined ? undefined : { data: Buffer.from(f).subarray(-max), mtime: new Date('2030-01-01T00:00:00Z') };
  }
  async remove(id: string) {
    this.files.delete(id);
  }
}

class Sink implements InstanceEventSink {
  events: InstanceEvent[] = [];
  async ensure() {}
  async publish(e: InstanceEvent) {
    this.events.push(e);
  }
  states(id: string) {
    return this.events.filter((e) => e.instanceId === id).map((e) => e.state);
  }
}

const spec = (id: string, over: Partial<InstanceSpec> = {}): InstanceSpec => ({
  instanceId: id,
  reservationId: 'r-1',
  accountId: '111122223333',
  instanceType: 't1.micro',
  resources: { vcpus: 1, memoryMiB: 256, rootDiskGiB: 1, ephemeralGiB: 0 },
  image: { virtualizationType: 'hvm', root: blob('a') },
  userData: Buffer.from('hello').toString('base64'),
  hostname: 'host-1',
  availabilityZone: 'zone-a',
  launchIndex: 0,
  ...over,
});

/** The network agent as the launch path sees it: records calls into the hypervisor's call log. */
class FakeNetworking {
  constructor(
    private readonly hv: FakeHypervisor,
    public fail = false,
  ) {}
  async prepare(s: InstanceSpec) {
    this.hv.calls.push(`net:prepare:${s.instanceId}`);
    if (this.fail) throw Object.assign(new Error('ipset restore failed'), { code: 'Server.InternalError' });
    return s.network ? { network: 'koala-zone-a', mac: s.network.mac, ip: s.network.privateIp, tap: `kv${s.network.mac.replace(/:/g, '')}` } : undefined;
  }
  async release(id: string) {
    this.hv.calls.push(`net:release:${id}`);
  }
}

function setup(opts: { stopTimeoutMs?: number; shutdownRetryMs?: number; network?: boolean; launchRecords?: InstanceManagerOptions['launchRecords'] } = {}) {
  const hv = new FakeHypervisor();
  const images = new FakeImages();
  const cd: ConfigDriveContent[] = [];
  const consoleLog = new FakeConsole();
  const sink = new Sink();
  const m = new InstanceManager({
    zone: 'zone-a',
    node: 'node-1',
    stopTimeoutMs: opts.stopTimeoutMs ?? 1000,
    pollMs: 5,
    shutdownRetryMs: opts.shutdownRetryMs,
    hypervisor: hv,
    images,
    configDrive: { build: async (c) => (cd.push(c), Buffer.from('iso')) },
    consoleLog,
    events: sink,
    ...(opts.network ? { network: new FakeNetworking(hv) } : {}),
    clock: { now: () => new Date('2030-01-01T00:00:00Z') },
    ...(opts.launchRecords ? { launchRecords: opts.launchRecords } : {}),
  });
  return { hv, images, cd, consoleLog, sink, m, net: (m as unknown as { o: { network?: FakeNetworking } }).o.network };
}

const settle = async (m: InstanceManager) => {
  await m.stop();
  (m as unknown as { stopped: boolean }).stopped = false;
};

describe('InstanceManager', () => {
  const ID = 'i-0123456789abcdef0';

  it('launches: pending then running, disks, config drive and metadata, capacity accounted', async () => {
    const { hv, images, cd, sink, m } = setup();
    await m.start();
    expect(await m.run(spec(ID, { resources: { vcpus: 2, memoryMiB: 512, rootDiskGiB: 2, ephemeralGiB: 3 } }))).toEqual({ accepted: true });
    expect(m.allocated()).toEqual({ cores: 2, memoryMiB: 512, diskGiB: 5 }); // counted while pending
    await settle(m);
    expect(sink.states(ID)).toEqual(['pending', 'running']);
    expect(sink.events[0]).toMatchObject({ zone: 'zone-a', node: 'node-1', at: '2030-01-01T00:00:00.000Z' });
    const d = hv.domains.get(ID)!;
    expect(d.state).toBe('running');
    expect(d.spec).toMatchObject({ vcpus: 2, memoryMiB: 512, boot: { kind: 'disk' }, consoleLogPath: `/console/${ID}.log` });
    expect(d.spec!.ephemeral?.name).toBe(`${ID}-ephemeral.raw`);
    expect(d.meta).toEqual({
      instanceId: ID,
      accountId: '111122223333',
      reservationId: 'r-1',
      instanceType: 't1.micro',
      node: 'node-1',
      resources: { vcpus: 2, memoryMiB: 512, rootDiskGiB: 2, ephemeralGiB: 3 },
      images: { root: sha('a') },
    });
    expect(hv.calls).toContain(`root:/cache/aaaa:${2 * 1024 ** 3}`);
    expect(cd[0]).toMatchObject({ instanceId: ID, hostname: 'host-1', availabilityZone: 'zone-a', reservationId: 'r-1', publicKeys: [] });
    expect(cd[0].userData?.toString()).toBe('hello');
    expect(images.holders(sha('a'))).toEqual([ID]);
    expect(
      m.annotate([
        { name: ID, instanceId: ID, state: 'stopped' },
        { name: 'other', state: 'running' },
      ]),
    ).toEqual([
      { name: ID, instanceId: ID, state: 'running' },
      { name: 'other', state: 'running' },
    ]);
  });

  it('networked launch: DHCP entry and rules of its tap before the domain is defined; terminate releases them after it is gone', async () => {
    const { hv, sink, m } = setup({ network: true });
    await m.start();
    const network = { mac: '02:01:23:45:67:89', privateIp: '172.31.0.9', subnet: '172.31.0.0/20', privateDnsName: 'ip-172-31-0-9.x', groups: [{ groupId: 'sg-0000000a', name: 'default' }] };
    await m.run(spec(ID, { network }));
    await settle(m);
    expect(sink.states(ID)).toEqual(['pending', 'running']);
    expect(hv.calls.indexOf(`net:prepare:${ID}`)).toBeLessThan(hv.calls.indexOf('defineDomain'));
    expect(hv.domains.get(ID)!.spec!.network).toEqual({ network: 'koala-zone-a', mac: '02:01:23:45:67:89', ip: '172.31.0.9', tap: 'kv020123456789' });
    await m.action(ID, 'terminate');
    await settle(m);
    expect(hv.calls.indexOf(`net:release:${ID}`)).toBeGreaterThan(hv.calls.indexOf('undefineDomain'));
  });

  it('networked launch whose network cannot be prepared: failed, nothing defined, nothing left', async () => {
    const { hv, sink, m, net } = setup({ network: true });
    net!.fail = true;
    await m.start();
    await m.run(spec(ID, { network: { mac: '02:01:23:45:67:89', privateIp: '172.31.0.9', subnet: '172.31.0.0/20', privateDnsName: 'x', groups: [] } }));
    await settle(m);
    expect(sink.states(ID)).toEqual(['pending', 'failed']);
    expect(sink.events.at(-1)!.reason).toMatchObject({ code: 'Server.InternalError' });
    expect(hv.calls).not.toContain('defineDomain');
    expect(hv.calls).toContain(`net:release:${ID}`);
    expect(hv.volumes.size).toBe(0);
  });

  it('an image the cache refuses (qcow2 with a backing file): failed with the cache’s reason, nothing defined', async () => {
    const { hv, sink, m, images } = setup();
    images.refuse = new ImageFormatError('emi-1', 'qcow2 image with a backing file');
    await m.start();
    await m.run(spec(ID));
    await settle(m);
    expect(sink.states(ID)).toEqual(['pending', 'failed']);
    expect(sink.events.at(-1)!.reason).toEqual({ code: 'Client.InvalidImage', message: 'image emi-1 refused: qcow2 image with a backing file' });
    expect(hv.calls).not.toContain('defineDomain');
    expect(hv.volumes.size).toBe(0);
  });

  it('no network in the spec: no interface, the network agent is not asked', async () => {
    const { hv, m } = setup({ network: true });
    await m.start();
    await m.run(spec(ID));
    await settle(m);
    expect(hv.domains.get(ID)!.spec!.network).toBeUndefined();
    expect(hv.calls.some((c) => c.startsWith('net:'))).toBe(false);
  });

  it('boots paravirtual images from kernel and ramdisk with root= console= and the extra arguments', async () => {
    const { hv, images, m } = setup();
    await m.start();
    await m.run(spec(ID, { image: { virtualizationType: 'paravirtual', root: blob('a', 5 * 1024 ** 3), kernel: blob('b'), ramdisk: blob('c'), kernelArgs: 'quiet' } }));
    await settle(m);
    expect(hv.domains.get(ID)!.spec!.boot).toEqual({ kind: 'kernel', kernel: '/cache/bbbb', initrd: '/cache/cccc', cmdline: 'root=/dev/vda console=ttyS0 quiet' });
    expect(hv.calls).toContain(`root:/cache/aaaa:${5 * 1024 ** 3}`); // never smaller than the image
    expect(images.holders(sha('b'))).toEqual([ID]);
  });

  it('refuses an instance id that is already defined', async () => {
    const { hv, m } = setup();
    await m.start();
    await m.run(spec(ID));
    await expect(m.run(spec(ID))).rejects.toMatchObject({ code: 'InvalidInstanceID.Duplicate' });
    hv.domains.set('i-00000000000000001', { state: 'shutoff' });
    await expect(m.run(spec('i-00000000000000001'))).rejects.toMatchObject({ code: 'InvalidInstanceID.Duplicate' });
  });

  it.each(['createRootDisk', 'createConfigDrive', 'defineDomain', 'startDomain'])('a failure in %s removes everything and reports failed', async (step) => {
    const { hv, images, consoleLog, sink, m } = setup();
    await m.start();
    hv.failOn = step;
    await m.run(spec(ID, { resources: { vcpus: 1, memoryMiB: 256, rootDiskGiB: 1, ephemeralGiB: 1 } }));
    await settle(m);
    expect(sink.states(ID)).toEqual(['pending', 'failed']);
    expect(sink.events[1].reason).toEqual({ code: 'Server.InternalError', message: `${step} exploded` });
    expect(hv.domains.size).toBe(0);
    expect(hv.volumes.size).toBe(0);
    expect(consoleLog.files.size).toBe(0);
    expect(images.holders(sha('a'))).toEqual([]);
    expect(m.allocated()).toEqual({ cores: 0, memoryMiB: 0, diskGiB: 0 });
  });

  it('the disks are made side by side; a failed one is cleaned up only once the others are done', async () => {
    const { hv, sink, m } = setup();
    await m.start();
    hv.failOn = 'createRootDisk';
    const slow = hv.createConfigDrive.bind(hv);
    let made: Promise<unknown> = Promise.resolve();
    hv.createConfigDrive = (id: string) => {
      // still being made when the root disk fails
      made = new Promise((r) => setTimeout(r, 50)).then(() => slow(id));
      return made as ReturnType<typeof slow>;
    };
    await m.run(spec(ID));
    await settle(m);
    await made;
    expect(sink.states(ID)).toEqual(['pending', 'failed']);
    expect(hv.calls.indexOf('createConfigDrive')).toBeLessThan(hv.calls.indexOf('deleteVolumes'));
    expect(hv.volumes.size).toBe(0);
  });

  it('stop, start, reboot and terminate report in order, without echoes of libvirt events', async () => {
    const { hv, images, consoleLog, sink, m } = setup();
    await m.start();
    await m.run(spec(ID));
    await settle(m);
    await m.action(ID, 'stop');
    await settle(m);
    await m.action(ID, 'start');
    await settle(m);
    await m.action(ID, 'reboot');
    await settle(m);
    hv.fire(ID, 'started'); // late echo of our own start
    await m.action(ID, 'terminate');
    await settle(m);
    expect(sink.states(ID)).toEqual(['pending', 'running', 'stopping', 'stopped', 'pending', 'running', 'shutting-down', 'terminated']);
    expect(sink.events.some((e) => e.guestInitiated)).toBe(false);
    expect(hv.calls).toContain('rebootDomain');
    expect(hv.domains.size).toBe(0);
    expect(hv.volumes.size).toBe(0);
    expect(consoleLog.files.size).toBe(0);
    expect(images.holders(sha('a'))).toEqual([]);
    expect(m.allocated()).toEqual({ cores: 0, memoryMiB: 0, diskGiB: 0 });
  });

  it('destroys a guest that ignores the ACPI shutdown after the timeout; force destroys at once', async () => {
    const { hv, sink, m } = setup({ stopTimeoutMs: 50 });
    await m.start();
    await m.run(spec(ID));
    await settle(m);
    hv.acpiWorks = false;
    await m.action(ID, 'stop');
    await settle(m);
    expect(hv.calls.slice(-2)).toEqual(['shutdownDomain', 'destroyDomain']);
    expect(sink.states(ID).slice(-2)).toEqual(['stopping', 'stopped']);
    await m.action(ID, 'start');
    await settle(m);
    hv.calls = [];
    await m.action(ID, 'stop', { force: true });
    await settle(m);
    expect(hv.calls).not.toContain('shutdownDomain');
    expect(hv.calls).toContain('destroyDomain');
  });

  it('sends the ACPI shutdown again while waiting: a guest that lost the first request (booting) stops long before the timeout', async () => {
    const { hv, sink, m } = setup({ stopTimeoutMs: 10_000, shutdownRetryMs: 30 });
    await m.start();
    await m.run(spec(ID));
    await settle(m);
    hv.acpiLost = 2;
    hv.calls = [];
    const t0 = Date.now();
    await m.action(ID, 'stop');
    await settle(m);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(hv.calls.filter((c) => c === 'shutdownDomain')).toHaveLength(3);
    expect(sink.states(ID).slice(-2)).toEqual(['stopping', 'stopped']);
    expect(hv.domains.get(ID)!.state).toBe('shutoff');
  });

  it('keeps re-sending ACPI until the timeout, then destroys; a failing re-send does not fail the stop', async () => {
    const { hv, sink, m } = setup({ stopTimeoutMs: 200, shutdownRetryMs: 40 });
    await m.start();
    await m.run(spec(ID));
    await settle(m);
    hv.acpiWorks = false;
    hv.calls = [];
    const shutdown = hv.shutdownDomain.bind(hv);
    let n = 0;
    hv.shutdownDomain = async (name: string) => {
      if (n++ === 1) throw new Error('domain is not running'); // the second request fails
      return shutdown(name);
    };
    await m.action(ID, 'stop');
    await settle(m);
    expect(hv.calls.filter((c) => c === 'shutdownDomain').length).toBeGreaterThanOrEqual(2);
    expect(n).toBeGreaterThanOrEqual(3);
    expect(hv.calls.at(-1)).toBe('destroyDomain');
    expect(sink.states(ID).slice(-2)).toEqual(['stopping', 'stopped']);
  });

  it('a guest that powers off by itself is reported stopped with guestInitiated, once; started again -> running', async () => {
    const { hv, sink, m } = setup();
    await m.start();
    await m.run(spec(ID));
    await settle(m);
    hv.domains.get(ID)!.state = 'shutoff';
    hv.fire(ID, 'shutdown');
    hv.fire(ID, 'stopped');
    hv.fire(ID, 'stopped');
    await settle(m);
    hv.domains.get(ID)!.state = 'running';
    hv.fire(ID, 'started');
    await settle(m);
    expect(sink.states(ID)).toEqual(['pending', 'running', 'stopped', 'running']);
    expect(sink.events[2].guestInitiated).toBe(true);
  });

  it('ignores a stale libvirt event that contradicts the current state', async () => {
    const { hv, sink, m } = setup();
    await m.start();
    await m.run(spec(ID));
    await settle(m);
    hv.fire(ID, 'stopped'); // late, the domain runs
    await settle(m);
    expect(sink.states(ID)).toEqual(['pending', 'running']);
  });

  it('terminate of an unknown id reports terminated; other actions on it are refused', async () => {
    const { sink, m } = setup();
    await m.start();
    await m.action(ID, 'terminate');
    await settle(m);
    expect(sink.states(ID)).toEqual(['terminated']);
    await expect(m.action(ID, 'stop')).rejects.toMatchObject({ code: 'InvalidInstanceID.NotFound' });
    await expect(m.consoleOutput(ID)).rejects.toMatchObject({ code: 'InvalidInstanceID.NotFound' });
  });

  it('a terminate during the launch waits for it, then removes the instance', async () => {
    const { hv, sink, m } = setup();
    await m.start();
    await m.run(spec(ID));
    await m.action(ID, 'terminate');
    await settle(m);
    expect(sink.states(ID)).toEqual(['pending', 'running', 'shutting-down', 'terminated']);
    expect(hv.domains.size).toBe(0);
  });

  it("re-adopts its domains after a restart (images re-pinned), leaving foreign and other nodes' domains alone", async () => {
    const { hv, images, sink, m } = setup();
    const meta = (id: string, node: string): InstanceMeta => ({
      instanceId: id,
      accountId: 'a',
      reservationId: 'r',
      instanceType: 't',
      node,
      resources: { vcpus: 1, memoryMiB: 128, rootDiskGiB: 1, ephemeralGiB: 0 },
      images: { root: sha('d'), kernel: sha('e') },
    });
    hv.domains.set(ID, { meta: meta(ID, 'node-1'), state: 'running' });
    hv.domains.set('i-0000000000000000f', { meta: meta('i-0000000000000000f', 'node-2'), state: 'running' });
    hv.domains.set('someone-elses-vm', { state: 'running' });
    await m.start();
    expect(m.list()).toEqual([{ instanceId: ID, state: 'running' }]);
    expect(images.holders(sha('d'))).toEqual([ID]);
    expect(images.holders(sha('e'))).toEqual([ID]);
    expect(m.allocated()).toEqual({ cores: 1, memoryMiB: 128, diskGiB: 1 });
    expect(sink.events).toEqual([]);
    await m.action(ID, 'terminate');
    await settle(m);
    expect(sink.states(ID)).toEqual(['shutting-down', 'terminated']);
    expect([...hv.domains.keys()].sort()).toEqual(['i-0000000000000000f', 'someone-elses-vm']);
    expect(images.holders(sha('d'))).toEqual([]);
  });

  it('serves the last 64 KiB of the console log with its mtime', async () => {
    const { consoleLog, m } = setup();
    await m.start();
    await m.run(spec(ID));
    await settle(m);
    consoleLog.files.set(ID, 'x'.repeat(70 * 1024) + 'END');
    const out = await m.consoleOutput(ID);
    const text = Buffer.from(out.output, 'base64').toString();
    expect(text.length).toBe(64 * 1024);
    expect(text.endsWith('END')).toBe(true);
    expect(out.timestamp).toBe('2030-01-01T00:00:00.000Z');
  });
});

describe('InstanceManager: launch records of the metadata service', () => {
  const ID = 'i-0123456789abcdef0';
  const withRecords = () => {
    const records = new Map<string, { spec: InstanceSpec; at: Date }>();
    const fail = { put: false };
    const s = setup({
      launchRecords: {
        put: async (spec, at) => {
          if (fail.put) throw new Error('disk full');
          records.set(spec.instanceId, { spec, at });
        },
        remove: async (id) => void records.delete(id),
      },
    });
    return { ...s, records, fail };
  };

  it('written when the launch is accepted, removed at terminate', async () => {
    const { m, records } = withRecords();
    await m.start();
    await m.run(spec(ID));
    expect(records.get(ID)).toMatchObject({ spec: { instanceId: ID }, at: new Date('2030-01-01T00:00:00Z') });
    await settle(m);
    await m.action(ID, 'stop');
    await settle(m);
    expect(records.has(ID)).toBe(true);
    await m.action(ID, 'terminate');
    await settle(m);
    expect(records.has(ID)).toBe(false);
  });

  it('removed when the launch fails; a launch whose record cannot be written is refused, with nothing left', async () => {
    const { hv, m, records, fail, sink } = withRecords();
    await m.start();
    hv.failOn = 'defineDomain';
    await m.run(spec(ID));
    await settle(m);
    expect(records.size).toBe(0);
    hv.failOn = undefined;
    fail.put = true;
    await expect(m.run(spec('i-00000000000000002'))).rejects.toThrow('disk full');
    expect(m.list()).toEqual([]);
    expect(sink.states('i-00000000000000002')).toEqual([]);
  });
});
