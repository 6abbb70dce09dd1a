import { parseDomainXml, type Libvirt } from '@koala/libvirt';
import type { InstanceDomainSpec } from './hypervisor.js';
import { LibvirtHypervisor } from './libvirt-hypervisor.js';
import type { NodeLibvirt } from './node-libvirt.js';

/** Only what defineDomain touches: the driver type and the XML it is given. */
function hypervisor() {
  const defined: string[] = [];
  const lv = { getType: async () => 'TEST', defineDomain: async (xml: string) => void defined.push(xml) } as unknown as Libvirt;
  const conn = { onConnected: () => undefined, isConnected: false, run: <T>(fn: (l: Libvirt) => Promise<T>) => fn(lv) } as unknown as NodeLibvirt;
  return { hv: new LibvirtHypervisor(conn, { poolPath: '/tmp/p', domainType: 'qemu' }), defined };
}

const spec = (over: Partial<InstanceDomainSpec> = {}): InstanceDomainSpec => ({
  meta: {
    instanceId: 'i-0123456789abcdef0',
    accountId: '111122223333',
    reservationId: 'r-1',
    instanceType: 't1.micro',
    node: 'n1',
    resources: { vcpus: 1, memoryMiB: 256, rootDiskGiB: 1, ephemeralGiB: 0 },
    images: { root: 'a'.repeat(64) },
  },
  memoryMiB: 256,
  vcpus: 1,
  root: { pool: 'koala-instances', name: 'i-0123456789abcdef0-root.qcow2', format: 'qcow2' },
  boot: { kind: 'disk' },
  consoleLogPath: '/tmp/c.log',
  ...over,
});

describe('LibvirtHypervisor.defineDomain', () => {
  it('a networked instance gets one virtio interface on the zone network, its tap named as the node rules name it, no nwfilter', async () => {
    const { hv, defined } = hypervisor();
    await hv.defineDomain(spec({ network: { network: 'koala-koala-1a', mac: '02:01:23:45:67:89', ip: '172.31.0.9', tap: 'kv020123456789' } }));
    expect(parseDomainXml(defined[0]!).interfaces).toEqual([
      { type: 'network', source: 'koala-koala-1a', mac: '02:01:23:45:67:89', model: 'virtio', targetDev: 'kv020123456789', filterParameters: [] },
    ]);
  });

  it('no network: no interface at all', async () => {
    const { hv, defined } = hypervisor();
    await hv.defineDomain(spec());
    expect(parseDomainXml(defined[0]!).interfaces).toEqual([]);
  });
});
