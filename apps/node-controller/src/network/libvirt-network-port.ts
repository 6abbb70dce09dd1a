import {
  LibvirtError,
  VIR_ERR_NO_NETWORK,
  VIR_ERR_NO_NWFILTER,
  VIR_ERR_OPERATION_INVALID,
  VIR_NETWORK_SECTION_IP_DHCP_HOST,
  VIR_NETWORK_UPDATE_AFFECT_CONFIG,
  VIR_NETWORK_UPDATE_AFFECT_LIVE,
  VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
  VIR_NETWORK_UPDATE_COMMAND_DELETE,
  type Libvirt,
  parseNetworkXml,
  type Network,
} from '@koala/libvirt';
import type { NodeLibvirt } from '../libvirt/node-libvirt.js';
import { dhcpHostXml, type DhcpHost } from './network-plan.js';
import type { LibvirtNetworkFacts, NetworkLibvirt } from './network-ports.js';

const isCode = (err: unknown, ...codes: number[]) => err instanceof LibvirtError && codes.includes(err.code);

/** The parts of a `<network>` the agent compares (libvirt adds uuid, mac, …; those are ignored). */
export function parseNetworkFacts(xml: string): Omit<LibvirtNetworkFacts, 'active' | 'autostart'> {
  const net = parseNetworkXml(xml);
  const ip = net.ips.find((i) => (i.family ?? 'ipv4') === 'ipv4');
  return {
    forwardMode: net.forward?.mode,
    bridge: net.bridge?.name,
    address: ip?.address,
    prefix: ip?.prefix,
    domain: net.domain?.name,
    dnsmasqOptions: net.dnsmasqOptions,
    hosts: (ip?.dhcpHosts ?? []).map((h) => ({ mac: (h.mac ?? '').toLowerCase(), ip: h.ip ?? '', name: h.name ?? '' })).filter((h) => h.mac && h.ip),
  };
}

/** `xml` with `<uuid>` right after its opening tag `open` (unless it has one). */
function withUuid(xml: string, open: string, uuid: string): string {
  if (/<uuid>/.test(xml) || !xml.startsWith(open)) return xml;
  return `${open}\n  <uuid>${uuid}</uuid>${xml.slice(open.length)}`;
}

/** The network agent's libvirt operations over the NC's connection (reconnects included). */
export class LibvirtNetworkPort implements NetworkLibvirt {
  constructor(private readonly conn: NodeLibvirt) {}

  private async lookup(lv: Libvirt, name: string): Promise<Network | undefined> {
    try {
      return await lv.lookupNetworkByName(name);
    } catch (err) {
      if (isCode(err, VIR_ERR_NO_NETWORK)) return undefined;
      throw err;
    }
  }

  getNetwork(name: string): Promise<LibvirtNetworkFacts | undefined> {
    return this.conn.run(async (lv) => {
      const net = await this.lookup(lv, name);
      if (!net) return undefined;
      const [xml, active, autostart] = await Promise.all([lv.getNetworkXml(net), lv.isNetworkActive(net), lv.getNetworkAutostart(net)]);
      return { ...parseNetworkFacts(xml), active, autostart };
    });
  }

  /** Redefinitions keep the object's UUID (libvirt refuses the same name with a new one). */
  defineNetwork(xml: string): Promise<void> {
    return this.conn.run(async (lv) => {
      const name = /<name>([^<]+)<\/name>/.exec(xml)?.[1];
      const existing = name ? await this.lookup(lv, name) : undefined;
      const open = /^<network[^>]*>/.exec(xml)?.[0];
      await lv.defineNetwork(existing && open ? withUuid(xml, open, existing.uuid) : xml);
    });
  }

  startNetwork(name: string): Promise<void> {
    return this.conn.run(async (lv) => {
      const net = await lv.lookupNetworkByName(name);
      if (!(await lv.isNetworkActive(net))) await lv.createNetwork(net);
      if (!(await lv.getNetworkAutostart(net))) await lv.setNetworkAutostart(net, true);
    });
  }

  stopNetwork(name: string): Promise<void> {
    return this.conn.run(async (lv) => {
      const net = await this.lookup(lv, name);
      if (!net || !(await lv.isNetworkActive(net))) return;
      await lv.destroyNetwork(net);
    });
  }

  private update(name: string, command: number, host: DhcpHost): Promise<void> {
    return this.conn.run(async (lv) => {
      const net = await lv.lookupNetworkByName(name);
      const live = await lv.isNetworkActive(net);
      const flags = VIR_NETWORK_UPDATE_AFFECT_CONFIG | (live ? VIR_NETWORK_UPDATE_AFFECT_LIVE : 0);
      await lv.updateNetwork(net, command, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, dhcpHostXml(host), flags);
    });
  }

  addDhcpHost(network: string, host: DhcpHost): Promise<void> {
    return this.update(network, VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, host);
  }

  removeDhcpHost(network: string, host: DhcpHost): Promise<void> {
    return this.update(network, VIR_NETWORK_UPDATE_COMMAND_DELETE, host).catch((err) => {
      // Already gone from the definition: nothing to remove.
      if (isCode(err, VIR_ERR_OPERATION_INVALID) && /couldn't locate|not found|no matching/i.test((err as Error).message)) return;
      throw err;
    });
  }

  listFilters(prefix: string): Promise<string[]> {
    return this.conn.run(async (lv) =>
      (await lv.listAllNwFilters())
        .map((f) => f.name)
        .filter((n) => n.startsWith(prefix))
        .sort(),
    );
  }

  undefineFilter(name: string): Promise<void> {
    return this.conn.run(async (lv) => {
      try {
        await lv.undefineNwFilter(await lv.lookupNwFilterByName(name));
      } catch (err) {
        if (!isCode(err, VIR_ERR_NO_NWFILTER)) throw err;
      }
    });
  }

  onConnected(listener: () => unknown): void {
    this.conn.onConnected(() => listener());
  }
}
