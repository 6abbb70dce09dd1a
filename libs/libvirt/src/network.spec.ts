// Byte-level tests of the network and nwfilter procedures against a fake peer: argument
// layouts, reply decoding, errors, and NETWORK_UPDATE's command/section order.
import {
  VIR_NETWORK_SECTION_IP_DHCP_HOST,
  VIR_NETWORK_UPDATE_AFFECT_CONFIG,
  VIR_NETWORK_UPDATE_AFFECT_LIVE,
  VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
  VIR_NETWORK_UPDATE_COMMAND_DELETE,
} from './constants.js';
import { Libvirt } from './libvirt.js';
import { Proc, VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER, uuidToBytes } from './procedures.js';
import { VIR_ERR_NO_NETWORK, VIR_ERR_NO_NWFILTER } from './rpc.js';
import { FakeDialer, type PeerHandler } from './testing/fake-peer.js';
import { MessageType, type Packet } from './transport.js';
import { XdrReader, XdrWriter } from './xdr.js';

const UUID = '6b4a5f2e-0c1d-4e8f-9a7b-3c2d1e0f9a8b';
const NET = { name: 'koala-net', uuid: UUID };

function namedPayload(name: string, uuid = UUID): Buffer {
  return new XdrWriter().string(name).opaqueFixed(uuidToBytes(uuid), 16).toBuffer();
}

/** A peer whose answer to feature 16 is `correctOrder`; the rest goes to `next`. */
async function connect(correctOrder: number, next: PeerHandler): Promise<{ lv: Libvirt; dialer: FakeDialer; featureAsks: number[] }> {
  const featureAsks: number[] = [];
  const dialer = new FakeDialer((p, io) => {
    switch (p.header.procedure) {
      case Proc.AUTH_LIST:
        return io.reply(p, new XdrWriter().uint(1).int(0).toBuffer());
      case Proc.CONNECT_OPEN:
      case Proc.CONNECT_CLOSE:
        return io.reply(p);
      case Proc.CONNECT_SUPPORTS_FEATURE: {
        const feature = new XdrReader(p.payload).int();
        featureAsks.push(feature);
        return io.reply(p, new XdrWriter().int(feature === VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER ? correctOrder : 0).toBuffer());
      }
      default:
        return next(p, io);
    }
  });
  const lv = await Libvirt.connect({ dialer, uri: 'test:///default', keepaliveIntervalMs: 0 });
  return { lv, dialer, featureAsks };
}

function callsOf(dialer: FakeDialer, proc: number): Packet[] {
  return dialer.connections[0].packets.filter((p) => p.header.procedure === proc);
}

const hex = (b: Buffer) => b.toString('hex');
const str = (s: string) => new XdrWriter().string(s).toBuffer();
const word = (n: number) => new XdrWriter().int(n).toBuffer();

describe('network procedures over a fake peer', () => {
  it('lists, looks up, defines, starts, stops and undefines with the protocol layouts', async () => {
    const { lv, dialer } = await connect(1, (p, io) => {
      switch (p.header.procedure) {
        case Proc.CONNECT_LIST_ALL_NETWORKS:
          return io.reply(p, Buffer.concat([word(2), namedPayload('a'), namedPayload('b'), word(2)]));
        case Proc.NETWORK_LOOKUP_BY_NAME:
        case Proc.NETWORK_DEFINE_XML:
          return io.reply(p, namedPayload('koala-net'));
        case Proc.NETWORK_GET_XML_DESC:
          return io.reply(p, str('<network/>'));
        case Proc.NETWORK_IS_ACTIVE:
          return io.reply(p, word(1));
        default:
          return io.reply(p);
      }
    });
    expect(await lv.listAllNetworks(2)).toEqual([
      { name: 'a', uuid: UUID },
      { name: 'b', uuid: UUID },
    ]);
    expect(hex(callsOf(dialer, Proc.CONNECT_LIST_ALL_NETWORKS)[0].payload)).toBe('00000001' + '00000002');
    expect(await lv.lookupNetworkByName('koala-net')).toEqual(NET);
    expect(hex(callsOf(dialer, Proc.NETWORK_LOOKUP_BY_NAME)[0].payload)).toBe(hex(str('koala-net')));
    expect(await lv.defineNetwork('<network/>')).toEqual(NET);
    expect(hex(callsOf(dialer, Proc.NETWORK_DEFINE_XML)[0].payload)).toBe(hex(str('<network/>')));
    await lv.createNetwork(NET);
    await lv.destroyNetwork(NET);
    await lv.undefineNetwork(NET);
    await lv.setNetworkAutostart(NET, true);
    for (const proc of [Proc.NETWORK_CREATE, Proc.NETWORK_DESTROY, Proc.NETWORK_UNDEFINE]) {
      expect(hex(callsOf(dialer, proc)[0].payload)).toBe(hex(namedPayload('koala-net')));
    }
    expect(hex(callsOf(dialer, Proc.NETWORK_SET_AUTOSTART)[0].payload)).toBe(hex(namedPayload('koala-net')) + '00000001');
    expect(await lv.getNetworkXml(NET, 1)).toBe('<network/>');
    expect(hex(callsOf(dialer, Proc.NETWORK_GET_XML_DESC)[0].payload)).toBe(hex(namedPayload('koala-net')) + '00000001');
    expect(await lv.isNetworkActive(NET)).toBe(true);
    await lv.close();
  });

  it('rejects a missing network with VIR_ERR_NO_NETWORK', async () => {
    const { lv } = await connect(1, (p, io) => io.replyError(p, VIR_ERR_NO_NETWORK, "Network not found: no network with matching name 'x'"));
    await expect(lv.lookupNetworkByName('x')).rejects.toMatchObject({ name: 'LibvirtError', code: VIR_ERR_NO_NETWORK });
    await lv.close();
  });

  const xml = "<host mac='02:00:00:00:00:01' ip='10.0.0.5'/>";
  const updateBody = (first: number, second: number, flags: number) => hex(namedPayload('koala-net')) + hex(word(first)) + hex(word(second)) + 'ffffffff' + hex(str(xml)) + hex(word(flags));

  it('sends command then section when the daemon has the correct order (feature 16 = 1), asking once', async () => {
    const { lv, dialer, featureAsks } = await connect(1, (p, io) => io.reply(p));
    await lv.updateNetwork(NET, VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, xml, VIR_NETWORK_UPDATE_AFFECT_LIVE | VIR_NETWORK_UPDATE_AFFECT_CONFIG);
    await lv.updateNetwork(NET, VIR_NETWORK_UPDATE_COMMAND_DELETE, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, xml, VIR_NETWORK_UPDATE_AFFECT_CONFIG);
    const [add, del] = callsOf(dialer, Proc.NETWORK_UPDATE);
    expect(hex(add.payload)).toBe(updateBody(3, 4, 3));
    expect(hex(del.payload)).toBe(updateBody(2, 4, 2));
    expect(featureAsks.filter((f) => f === VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER)).toHaveLength(1);
    await lv.close();
  });

  it('swaps command and section for a daemon with the old order (feature 16 = 0)', async () => {
    const { lv, dialer, featureAsks } = await connect(0, (p, io) => io.reply(p));
    await lv.updateNetwork(NET, VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, xml, VIR_NETWORK_UPDATE_AFFECT_CONFIG);
    await lv.updateNetwork(NET, VIR_NETWORK_UPDATE_COMMAND_DELETE, VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, xml, VIR_NETWORK_UPDATE_AFFECT_CONFIG);
    const [add, del] = callsOf(dialer, Proc.NETWORK_UPDATE);
    expect(hex(add.payload)).toBe(updateBody(4, 3, 2));
    expect(hex(del.payload)).toBe(updateBody(4, 2, 2));
    expect(featureAsks.filter((f) => f === VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER)).toHaveLength(1);
    await lv.close();
  });

  it('asks the feature again after the question itself failed', async () => {
    let fail = true;
    const dialer = new FakeDialer((p, io) => {
      if (p.header.procedure === Proc.AUTH_LIST) return io.reply(p, new XdrWriter().uint(1).int(0).toBuffer());
      if (p.header.procedure === Proc.CONNECT_SUPPORTS_FEATURE) {
        const f = new XdrReader(p.payload).int();
        if (f === VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER && fail) {
          fail = false;
          return io.replyError(p, 1, 'internal error');
        }
        return io.reply(p, word(f === VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER ? 1 : 0));
      }
      io.reply(p);
    });
    const lv = await Libvirt.connect({ dialer, uri: 'test:///default', keepaliveIntervalMs: 0 });
    await expect(lv.updateNetwork(NET, 3, 4, -1, xml, 0)).rejects.toMatchObject({ name: 'LibvirtError' });
    expect(callsOf(dialer, Proc.NETWORK_UPDATE)).toHaveLength(0);
    await lv.updateNetwork(NET, 3, 4, -1, xml, 0);
    expect(hex(callsOf(dialer, Proc.NETWORK_UPDATE)[0].payload)).toBe(updateBody(3, 4, 0));
    await lv.close();
  });

  it('supportsFeature sends the feature number and decodes the answer', async () => {
    const { lv, dialer } = await connect(1, () => undefined);
    expect(await lv.supportsFeature(VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER)).toBe(true);
    expect(await lv.supportsFeature(7)).toBe(false);
    expect(callsOf(dialer, Proc.CONNECT_SUPPORTS_FEATURE).map((p) => hex(p.payload))).toEqual(['0000000a', '00000010', '00000007']);
    await lv.close();
  });

  it('delivers network lifecycle events to their subscription', async () => {
    const { lv, dialer } = await connect(1, (p, io) => {
      if (p.header.procedure === Proc.CONNECT_NETWORK_EVENT_REGISTER_ANY) {
        io.reply(p, word(7));
        const msg = Buffer.concat([word(99), namedPayload('other'), word(2), word(0)]); // another callback id: ignored
        const ev = Buffer.concat([word(7), namedPayload('koala-net'), word(2), word(0)]);
        setTimeout(() => {
          io.send({ procedure: Proc.NETWORK_EVENT_LIFECYCLE, serial: 0, type: MessageType.Message }, msg);
          io.send({ procedure: Proc.NETWORK_EVENT_LIFECYCLE, serial: 0, type: MessageType.Message }, ev);
        }, 5);
        return;
      }
      io.reply(p);
    });
    const sub = await lv.subscribeNetworkLifecycle(NET);
    expect(hex(callsOf(dialer, Proc.CONNECT_NETWORK_EVENT_REGISTER_ANY)[0].payload)).toBe('00000000' + '00000001' + hex(namedPayload('koala-net')));
    const ev = await sub.next(() => true, 2000);
    expect(ev).toEqual({ network: NET, event: 2, eventName: 'started', detail: 0 });
    await sub.close();
    expect(hex(callsOf(dialer, Proc.CONNECT_NETWORK_EVENT_DEREGISTER_ANY)[0].payload)).toBe('00000007');
    await lv.close();
  });
});

describe('nwfilter procedures over a fake peer', () => {
  it('lists, looks up, defines, reads and undefines with the protocol layouts', async () => {
    const { lv, dialer } = await connect(1, (p, io) => {
      switch (p.header.procedure) {
        case Proc.CONNECT_LIST_ALL_NWFILTERS:
          return io.reply(p, Buffer.concat([word(1), namedPayload('clean-traffic'), word(1)]));
        case Proc.NWFILTER_LOOKUP_BY_NAME:
        case Proc.NWFILTER_DEFINE_XML:
          return io.reply(p, namedPayload('koala-i-1'));
        case Proc.NWFILTER_GET_XML_DESC:
          return io.reply(p, str('<filter/>'));
        default:
          return io.reply(p);
      }
    });
    const f = { name: 'koala-i-1', uuid: UUID };
    expect(await lv.listAllNwFilters()).toEqual([{ name: 'clean-traffic', uuid: UUID }]);
    expect(hex(callsOf(dialer, Proc.CONNECT_LIST_ALL_NWFILTERS)[0].payload)).toBe('00000001' + '00000000');
    expect(await lv.lookupNwFilterByName('koala-i-1')).toEqual(f);
    expect(await lv.defineNwFilter('<filter/>')).toEqual(f);
    expect(hex(callsOf(dialer, Proc.NWFILTER_DEFINE_XML)[0].payload)).toBe(hex(str('<filter/>')));
    expect(await lv.getNwFilterXml(f)).toBe('<filter/>');
    expect(hex(callsOf(dialer, Proc.NWFILTER_GET_XML_DESC)[0].payload)).toBe(hex(namedPayload('koala-i-1')) + '00000000');
    await lv.undefineNwFilter(f);
    expect(hex(callsOf(dialer, Proc.NWFILTER_UNDEFINE)[0].payload)).toBe(hex(namedPayload('koala-i-1')));
    await lv.close();
  });

  it('rejects a missing filter with VIR_ERR_NO_NWFILTER', async () => {
    const { lv } = await connect(1, (p, io) => io.replyError(p, VIR_ERR_NO_NWFILTER, "Network filter not found: no nwfilter with matching name 'x'"));
    await expect(lv.lookupNwFilterByName('x')).rejects.toMatchObject({ name: 'LibvirtError', code: VIR_ERR_NO_NWFILTER });
    await lv.close();
  });
});
