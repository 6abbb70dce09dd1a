import { MessageStatus, MessageType, PacketDecoder, encodePacket, LibvirtProtocolError } from './transport.js';
import { VIR_NET_MESSAGE_MAX } from './xdr.js';

const header = { program: 0x20008086, version: 1, procedure: 1, type: MessageType.Call, serial: 7, status: MessageStatus.Ok };

describe('packet framing', () => {
  it('writes length, the 24-byte header and the payload', () => {
    const buf = encodePacket(header, Buffer.from([0xaa, 0xbb, 0xcc, 0xdd]));
    expect(buf.toString('hex')).toBe('00000020' + '20008086' + '00000001' + '00000001' + '00000000' + '00000007' + '00000000' + 'aabbccdd');
  });

  it('reassembles packets split at every byte and several packets in one chunk', () => {
    const a = encodePacket(header, Buffer.from('hello!!!'));
    const b = encodePacket({ ...header, serial: 8, type: MessageType.Reply }, Buffer.alloc(0));
    const all = Buffer.concat([a, b, a]);
    const dec = new PacketDecoder();
    const got = [];
    for (const byte of all) got.push(...dec.push(Buffer.from([byte])));
    expect(got.map((p) => p.header.serial)).toEqual([7, 8, 7]);
    expect(got[0].payload.toString()).toBe('hello!!!');
    expect(got[1].header.type).toBe(MessageType.Reply);
    expect(new PacketDecoder().push(all)).toHaveLength(3);
  });

  it('rejects a length above VIR_NET_MESSAGE_MAX before buffering the body', () => {
    const bad = Buffer.alloc(28);
    bad.writeUInt32BE(VIR_NET_MESSAGE_MAX + 5, 0);
    expect(() => new PacketDecoder().push(bad.subarray(0, 4))).toThrow(LibvirtProtocolError);
  });

  it('rejects lengths smaller than the header, and unknown types/statuses', () => {
    const small = Buffer.alloc(4);
    small.writeUInt32BE(12, 0);
    expect(() => new PacketDecoder().push(small)).toThrow(/smaller than the header/);
    const t = encodePacket(header);
    t.writeInt32BE(42, 16);
    expect(() => new PacketDecoder().push(t)).toThrow(/unknown message type/);
    const s = encodePacket(header);
    s.writeInt32BE(9, 24);
    expect(() => new PacketDecoder().push(s)).toThrow(/unknown message status/);
  });

  it('refuses to encode an oversized packet', () => {
    expect(() => encodePacket(header, Buffer.alloc(VIR_NET_MESSAGE_MAX))).toThrow(LibvirtProtocolError);
  });
});
