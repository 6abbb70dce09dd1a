import {
  DomainState,
  LibvirtError,
  VIR_DOMAIN_AFFECT_CONFIG,
  VIR_DOMAIN_AFFECT_LIVE,
  VIR_DOMAIN_XML_INACTIVE,
  VIR_ERR_NO_DOMAIN,
  VIR_ERR_NO_SECRET,
  parseDomainXml,
  type Domain,
  type Secret,
} from '@koala/libvirt';
import { createLogger } from '@koala/logging';
import { Writable } from 'node:stream';
import { VolumeAttacher, volumeSecretUsage, volumeSerial, type VolumeLibvirt } from './volume-attacher.js';

const ROOT = `<disk type='file' device='disk'><source file='/r.qcow2'/><target dev='vda' bus='virtio'/></disk>`;

/** An in-memory libvirt with live and persistent disks per domain, as libvirt treats the AFFECT flags. */
class FakeLibvirt implements VolumeLibvirt {
  readonly doms = new Map<string, { state: number; live: string[]; config: string[] }>();
  readonly secrets = new Map<string, Secret & { value?: string }>();
  readonly calls: string[] = [];
  /** Runs right after a CONFIG-only attach (to simulate a start racing the attach). */
  afterConfigAttach?: (name: string) => void;

  add(name: string, state: number) {
    this.doms.set(name, { state, live: state === DomainState.SHUTOFF ? [] : [ROOT], config: [ROOT] });
  }
  private d(dom: Domain) {
    return this.doms.get(dom.name)!;
  }
  async lookupDomainByName(name: string): Promise<Domain> {
    if (!this.doms.has(name)) throw new LibvirtError(VIR_ERR_NO_DOMAIN, 10, `Domain not found: ${name}`);
    return { name, uuid: '00000000-0000-0000-0000-000000000000', id: -1 };
  }
  async getDomainState(dom: Domain) {
    return { state: this.d(dom).state, reason: 0 };
  }
  async getDomainXml(dom: Domain, flags = 0) {
    const d = this.d(dom);
    const disks = flags & VIR_DOMAIN_XML_INACTIVE || d.state === DomainState.SHUTOFF ? d.config : d.live;
    return `<domain type='test'><name>${dom.name}</name><devices>${disks.join('')}</devices></domain>`;
  }
  async attachDevice(dom: Domain, xml: string, flags = VIR_DOMAIN_AFFECT_LIVE) {
    const d = this.d(dom);
    this.calls.push(`attach ${dom.name} ${flags & VIR_DOMAIN_AFFECT_LIVE ? 'live' : ''}${flags & VIR_DOMAIN_AFFECT_CONFIG ? 'config' : ''}`);
    if (flags & VIR_DOMAIN_AFFECT_LIVE && d.state === DomainState.SHUTOFF) throw new LibvirtError(55, 10, 'domain is not running');
    if (flags & VIR_DOMAIN_AFFECT_CONFIG) d.config.push(xml);
    if (flags & VIR_DOMAIN_AFFECT_LIVE) d.live.push(xml);
    if (flags === VIR_DOMAIN_AFFECT_CONFIG) this.afterConfigAttach?.(dom.name);
  }
  async detachDevice(dom: Domain, xml: string, flags = VIR_DOMAIN_AFFECT_LIVE) {
    const d = this.d(dom);
    const devOf = (x: string) => /<target dev=["']([^"']+)["']/.exec(x)?.[1];
    const keep = (list: string[]) => list.filter((x) => devOf(x) !== devOf(xml));
    this.calls.push(`detach ${dom.name} ${flags & VIR_DOMAIN_AFFECT_LIVE ? 'live' : ''}${flags & VIR_DOMAIN_AFFECT_CONFIG ? 'config' : ''}`);
    if (flags & VIR_DOMAIN_AFFECT_CONFIG) d.config = keep(d.config);
    if (flags & VIR_DOMAIN_AFFECT_LIVE) d.live = keep(d.live);
  }
  async defineSecret(xml: string): Promise<Secret> {
    const usageId = /<target>([^<]+)<\/target>/.exec(xml)![1]!;
    const s = { uuid: usageId, usageType: 3, usageId };
    this.secrets.set(usageId, s);
    return s;
  }
  async setSecretValue(s: Secret, value: Uint8Array | string) {
    this.secrets.get(s.usageId)!.value = String(value);
  }
  async lookupSecretByUsage(_t: number, usageId: string): Promise<Secret> {
    const s = this.secrets.get(usageId);
    if (!s) throw new LibvirtError(VIR_ERR_NO_SECRET, 38, 'no secret');
    return s;
  }
  async undefineSecret(s: Secret) {
    if (!this.secrets.delete(s.usageId)) throw new LibvirtError(VIR_ERR_NO_SECRET, 38, 'no secret');
  }
  async listAllSecrets() {
    return [...this.secrets.values()];
  }
}

const target = { iqn: 'iqn.2026-11.org.koala:vol-0123456789abcdef0', lun: 1, portal: '127.0.0.1:3260', chapUser: 'u', chapSecret: 'S3cret-value-0001' };
const VOL = 'vol-0123456789abcdef0';
const quiet = createLogger('node-controller', 'error', new Writable({ write: (_c, _e, cb) => cb() }));

function setup() {
  const lv = new FakeLibvirt();
  const attacher = new VolumeAttacher({ libvirt: { get: async () => lv }, node: 'n1', logger: quiet, detachTimeoutMs: 100, detachPollMs: 10 });
  const disks = async (name: string, inactive = true) =>
    parseDomainXml(await lv.getDomainXml(await lv.lookupDomainByName(name), inactive ? VIR_DOMAIN_XML_INACTIVE : 0)).disks.map((d) => [d.targetDev, d.serial]);
  return { lv, attacher, disks };
}

describe('VolumeAttacher and stopped instances', () => {
  it('attaches into the persistent config of a shut-off domain only, idempotently, and detaches from it', async () => {
    const { lv, attacher, disks } = setup();
    lv.add('i-stopped', DomainState.SHUTOFF);
    expect(await attacher.attach({ instanceId: 'i-stopped', volumeId: VOL, target })).toEqual({ guestDevice: 'vdb' });
    expect(lv.calls).toEqual(['attach i-stopped config']);
    expect(await disks('i-stopped')).toEqual([
      ['vda', undefined],
      ['vdb', volumeSerial(VOL)],
    ]);
    expect(lv.secrets.get(volumeSecretUsage('i-stopped', VOL))?.value).toBe(target.chapSecret);
    expect(await attacher.attach({ instanceId: 'i-stopped', volumeId: VOL, target })).toEqual({ guestDevice: 'vdb' });
    expect(lv.calls).toHaveLength(1);
    expect(await attacher.detach({ instanceId: 'i-stopped', volumeId: VOL })).toEqual({ liveRemoved: true, wasAttached: true });
    expect(lv.calls.at(-1)).toBe('detach i-stopped config');
    expect(await disks('i-stopped')).toEqual([['vda', undefined]]);
    expect(lv.secrets.size).toBe(0);
  });

  it('hot-plugs a running domain live and persistently', async () => {
    const { lv, attacher, disks } = setup();
    lv.add('i-running', DomainState.RUNNING);
    expect(await attacher.attach({ instanceId: 'i-running', volumeId: VOL, target })).toEqual({ guestDevice: 'vdb' });
    expect(lv.calls).toEqual(['attach i-running liveconfig']);
    expect(await disks('i-running', false)).toEqual([
      ['vda', undefined],
      ['vdb', volumeSerial(VOL)],
    ]);
  });

  it('plugs the disk live too when the domain started while it was being added to the config', async () => {
    const { lv, attacher, disks } = setup();
    lv.add('i-racing', DomainState.SHUTOFF);
    lv.afterConfigAttach = (name) => {
      const d = lv.doms.get(name)!;
      d.state = DomainState.RUNNING;
      d.live = [ROOT]; // started from the config as it was read before the attach
    };
    expect(await attacher.attach({ instanceId: 'i-racing', volumeId: VOL, target })).toEqual({ guestDevice: 'vdb' });
    expect(lv.calls).toEqual(['attach i-racing config', 'attach i-racing live']);
    expect(await disks('i-racing', false)).toEqual([
      ['vda', undefined],
      ['vdb', volumeSerial(VOL)],
    ]);
  });

  it('refuses a paused (neither running nor stopped) or unknown domain, leaving no secret', async () => {
    const { lv, attacher } = setup();
    lv.add('i-paused', DomainState.PAUSED);
    for (const id of ['i-paused', 'i-nowhere']) {
      await expect(attacher.attach({ instanceId: id, volumeId: VOL, target })).rejects.toMatchObject({ code: 'IncorrectState' });
    }
    expect(lv.secrets.size).toBe(0);
    expect(lv.calls).toEqual([]);
  });
});
