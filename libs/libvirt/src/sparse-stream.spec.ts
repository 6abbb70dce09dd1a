// Sparse streams (VIR_NET_STREAM_HOLE) byte by byte against the in-memory fake peer: the
// download side (holes in, segments out), the upload side (segments in, hole packets out), the
// checks on malformed holes, early abort and flow control. No libvirtd needed; the real daemon
// is exercised in test/libvirt/libvirt-sparse.e2e-spec.ts.
import { Writable } from 'node:stream';
import { VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM } from './constants.js';
import { Libvirt, type VolumeSegment } from './libvirt.js';
import { Proc } from './procedures.js';
import { VIR_ERR_RPC, decodeStreamHole, encodeStreamHole } from './rpc.js';
import { FakeDialer, errorPayload, handshakeHandler, type PeerHandler, type PeerIo } from './testing/fake-peer.js';
import { MessageStatus, MessageType, type Packet } from './transport.js';
import { XdrWriter } from './xdr.js';

const vol = { pool: 'p', name: 'v', key: '/p/v' };

async function connect(handler: PeerHandler) {
  const dialer = new FakeDialer(handshakeHandler(handler));
  const lv = await Libvirt.connect({ dialer, uri: 'test:///default', keepaliveIntervalMs: 0 });
  return { lv, conn: () => dialer.connections[0] };
}

/** Stream packets of one call, as the daemon sends them. */
function streamTo(p: Packet, io: PeerIo) {
  const h = { procedure: p.header.procedure, serial: p.header.serial };
  return {
    data: (b: Buffer) => io.send({ ...h, type: MessageType.Stream, status: MessageStatus.Continue }, b),
    hole: (length: number, flags = 0) => io.send({ ...h, type: MessageType.StreamHole, status: MessageStatus.Continue }, encodeStreamHole(length, flags)),
    rawHole: (payload: Buffer, status = MessageStatus.Continue) => io.send({ ...h, type: MessageType.StreamHole, status }, payload),
    end: () => io.send({ ...h, type: MessageType.Stream, status: MessageStatus.Ok }),
  };
}

const describeSegment = (s: VolumeSegment) => (s.kind === 'data' ? `data@${s.offset}+${s.data.length}` : `hole@${s.offset}+${s.length}`);

async function collect(it: AsyncIterable<VolumeSegment>): Promise<VolumeSegment[]> {
  const out: VolumeSegment[] = [];
  for await (const s of it) out.push(s);
  return out;
}

describe('virNetStreamHole payload', () => {
  it('is a hyper length and an unsigned int of flags, 12 bytes', () => {
    expect(encodeStreamHole(0x1_0000_0002).toString('hex')).toBe('0000000100000002' + '00000000');
    expect(decodeStreamHole(Buffer.from('000000010000000200000000', 'hex'))).toBe(0x1_0000_0002);
  });

  it('refuses negative lengths, unknown flags and payloads of the wrong size', () => {
    expect(() => decodeStreamHole(new XdrWriter().hyper(-1).uint(0).toBuffer())).toThrow(/invalid length/);
    expect(() => decodeStreamHole(encodeStreamHole(10, 1))).toThrow(/flags/);
    expect(() => decodeStreamHole(Buffer.alloc(8))).toThrow();
    expect(() => decodeStreamHole(Buffer.alloc(16))).toThrow();
    expect(() =>
      decodeStreamHole(
        new XdrWriter()
          .hyper(2n ** 60n)
          .uint(0)
          .toBuffer(),
      ),
    ).toThrow(/invalid length/);
  });
});

describe('sparse download', () => {
  it('asks for a sparse stream and yields data segments and holes at absolute offsets', async () => {
    const { lv, conn } = await connect((p, io) => {
      if (p.header.procedure !== Proc.STORAGE_VOL_DOWNLOAD || p.header.type !== MessageType.Call) return;
      io.reply(p);
      const s = streamTo(p, io);
      s.hole(1000);
      s.data(Buffer.alloc(100, 1));
      s.hole(0); // a zero-length hole carries nothing: dropped
      s.hole(5000);
      s.data(Buffer.alloc(10, 2));
      s.end();
    });
    const segs = await collect(lv.downloadVolumeSparse(vol, { offset: 4096, length: 1 << 20 }));
    expect(segs.map(describeSegment)).toEqual(['hole@4096+1000', 'data@5096+100', 'hole@5196+5000', 'data@10196+10']);
    expect((segs[1] as { data: Buffer }).data.equals(Buffer.alloc(100, 1))).toBe(true);
    const call = conn().packets.find((p) => p.header.procedure === Proc.STORAGE_VOL_DOWNLOAD)!;
    // vol (3 strings) + offset 4096 + length 1 MiB + flags VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM
    expect(call.payload.subarray(-20).toString('hex')).toBe('0000000000001000' + '0000000000100000' + '00000001');
    expect(lv.rpc.pendingCount).toBe(0);
    await lv.close();
  });

  it('hands holes to byte readers as zeros, at most 256 KiB a buffer', async () => {
    const { lv } = await connect((p, io) => {
      if (p.header.procedure !== Proc.STORAGE_VOL_DOWNLOAD || p.header.type !== MessageType.Call) return;
      io.reply(p);
      const s = streamTo(p, io);
      s.data(Buffer.from('ab'));
      s.hole(600_000);
      s.data(Buffer.from('cd'));
      s.end();
    });
    const expected = Buffer.concat([Buffer.from('ab'), Buffer.alloc(600_000), Buffer.from('cd')]);
    expect((await lv.downloadVolume(vol, { flags: VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM })).equals(expected)).toBe(true);
    const sizes: number[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        sizes.push(chunk.length);
        cb();
      },
    });
    expect(await lv.downloadVolumeTo(vol, sink, { flags: VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM })).toBe(expected.length);
    expect(sizes).toEqual([2, 262144, 262144, 75712, 2]);
    await lv.close();
  });

  it('fails a stream that receives a hole it did not ask for, and the connection stays usable', async () => {
    const { lv } = await connect((p, io) => {
      if (p.header.procedure === Proc.CONNECT_GET_HOSTNAME) return io.reply(p, new XdrWriter().string('fakehost').toBuffer());
      if (p.header.procedure !== Proc.STORAGE_VOL_DOWNLOAD || p.header.type !== MessageType.Call) return;
      io.reply(p);
      const s = streamTo(p, io);
      s.data(Buffer.from('x'));
      s.hole(10);
      s.end();
    });
    await expect(lv.downloadVolume(vol)).rejects.toMatchObject({ code: VIR_ERR_RPC, message: expect.stringMatching(/not opened sparse/) });
    expect(lv.rpc.pendingCount).toBe(0);
    expect(await lv.getHostname()).toBe('fakehost');
    await lv.close();
  });

  it.each([
    ['a short payload', Buffer.alloc(8), /malformed stream hole/],
    ['trailing bytes', Buffer.alloc(16), /malformed stream hole/],
    ['a negative length', new XdrWriter().hyper(-5).uint(0).toBuffer(), /invalid length/],
    ['unknown flags', encodeStreamHole(10, 4), /flags/],
  ])('fails the stream on a hole with %s', async (_what, payload, message) => {
    const { lv } = await connect((p, io) => {
      if (p.header.procedure !== Proc.STORAGE_VOL_DOWNLOAD || p.header.type !== MessageType.Call) return;
      io.reply(p);
      streamTo(p, io).rawHole(payload);
    });
    await expect(collect(lv.downloadVolumeSparse(vol))).rejects.toMatchObject({ code: VIR_ERR_RPC, message: expect.stringMatching(message) });
    expect(lv.rpc.pendingCount).toBe(0);
    await lv.close();
  });

  it('ends the stream on a hole packet with status OK (virnetprotocol.x: empty)', async () => {
    const { lv } = await connect((p, io) => {
      if (p.header.procedure !== Proc.STORAGE_VOL_DOWNLOAD || p.header.type !== MessageType.Call) return;
      io.reply(p);
      const s = streamTo(p, io);
      s.data(Buffer.from('abc'));
      s.rawHole(Buffer.alloc(0), MessageStatus.Ok);
      s.data(Buffer.from('late'));
    });
    expect((await collect(lv.downloadVolumeSparse(vol))).map(describeSegment)).toEqual(['data@0+3']);
    expect(lv.rpc.pendingCount).toBe(0);
    await lv.close();
  });

  it('surfaces an error sent as a hole packet, and a hole that runs past the requested range', async () => {
    let mode = 'error';
    const { lv } = await connect((p, io) => {
      if (p.header.procedure !== Proc.STORAGE_VOL_DOWNLOAD || p.header.type !== MessageType.Call) return;
      io.reply(p);
      const s = streamTo(p, io);
      if (mode === 'error') s.rawHole(errorPayload(38, 'seek failed'), MessageStatus.Error);
      else {
        s.hole(600);
        s.hole(600);
        s.end();
      }
    });
    await expect(collect(lv.downloadVolumeSparse(vol))).rejects.toMatchObject({ code: 38, message: 'seek failed' });
    mode = 'long';
    await expect(collect(lv.downloadVolumeSparse(vol, { offset: 100, length: 1000 }))).rejects.toThrow(/past the requested range/);
    expect(lv.rpc.pendingCount).toBe(0);
    await lv.close();
  });

  it('aborts the stream when the consumer breaks off; late packets are dropped', async () => {
    let late: (() => void) | undefined;
    const { lv, conn } = await connect((p, io) => {
      if (p.header.procedure === Proc.CONNECT_GET_HOSTNAME) return io.reply(p, new XdrWriter().string('fakehost').toBuffer());
      if (p.header.procedure !== Proc.STORAGE_VOL_DOWNLOAD || p.header.type !== MessageType.Call) return;
      io.reply(p);
      const s = streamTo(p, io);
      s.hole(1 << 30);
      s.data(Buffer.alloc(1000, 5));
      late = () => {
        s.data(Buffer.alloc(1000, 6));
        s.end();
      };
    });
    const got: string[] = [];
    for await (const seg of lv.downloadVolumeSparse(vol)) {
      got.push(describeSegment(seg));
      if (seg.kind === 'data') break;
    }
    expect(got).toEqual(['hole@0+1073741824', 'data@1073741824+1000']);
    const download = conn().packets.find((p) => p.header.procedure === Proc.STORAGE_VOL_DOWNLOAD)!;
    const abort = conn().packets.filter((p) => p.header.serial === download.header.serial && p.header.type === MessageType.Stream);
    expect(abort.map((p) => p.header.status)).toEqual([MessageStatus.Error]);
    expect(lv.rpc.pendingCount).toBe(0);
    late!();
    expect(await lv.getHostname()).toBe('fakehost');
    await lv.close();
  });

  it('pauses the socket at the high-water mark (holes count) and resumes as the consumer drains', async () => {
    const { lv, conn } = await connect((p, io) => {
      if (p.header.procedure !== Proc.STORAGE_VOL_DOWNLOAD || p.header.type !== MessageType.Call) return;
      io.reply(p);
      const s = streamTo(p, io);
      // 5 data packets then 40 holes: only the holes can reach the high-water mark (16 packets)
      for (let i = 0; i < 5; i++) s.data(Buffer.alloc(512, i));
      for (let i = 0; i < 40; i++) s.hole(4096);
      s.end();
    });
    const transport = lv.rpc.transport;
    let pauses = 0;
    const pause = transport.pause.bind(transport);
    transport.pause = () => {
      pauses++;
      pause();
    };
    const segs: VolumeSegment[] = [];
    for await (const seg of lv.downloadVolumeSparse(vol)) {
      segs.push(seg);
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(segs).toHaveLength(45);
    expect(segs.every((s, i) => s.offset === (i < 5 ? i * 512 : 5 * 512 + (i - 5) * 4096))).toBe(true);
    expect(segs.slice(0, 5).every((s, i) => s.kind === 'data' && s.data[0] === i)).toBe(true);
    expect(pauses).toBeGreaterThan(0);
    expect(conn().isPaused()).toBe(false);
    await lv.close();
  });
});

describe('sparse upload', () => {
  /** Records the stream packets of each upload call; confirms the finish. */
  function uploadPeer() {
    const packets: Packet[] = [];
    const handler: PeerHandler = (p, io) => {
      if (p.header.procedure !== Proc.STORAGE_VOL_UPLOAD) return;
      if (p.header.type === MessageType.Call) return io.reply(p);
      packets.push(p);
      if (p.header.type === MessageType.Stream && p.header.status === MessageStatus.Ok) {
        io.send({ procedure: p.header.procedure, serial: p.header.serial, type: MessageType.Stream });
      }
    };
    return { packets, handler };
  }
  const summary = (p: Packet) =>
    p.header.type === MessageType.StreamHole
      ? `hole ${decodeStreamHole(p.payload)}`
      : p.header.status === MessageStatus.Ok
        ? 'finish'
        : p.header.status === MessageStatus.Error
          ? 'abort'
          : `data ${p.payload.length}`;

  it('sends data as stream packets and holes and gaps as merged hole packets, up to the range end', async () => {
    const peer = uploadPeer();
    const { lv, conn } = await connect(peer.handler);
    const sent = await lv.uploadVolumeSparse(
      vol,
      [
        { kind: 'data', offset: 0, data: Buffer.alloc(10, 1) },
        { kind: 'hole', offset: 10, length: 100 },
        { kind: 'data', offset: 200, data: Buffer.alloc(300_000, 2) }, // 90-byte gap: merged into the hole before
        { kind: 'data', offset: 300_200, data: Buffer.alloc(0) },
      ],
      { length: 1_000_000 },
    );
    expect(sent).toBe(300_010);
    expect(peer.packets.map(summary)).toEqual(['data 10', 'hole 190', 'data 262144', 'data 37856', 'hole 699800', 'finish']);
    const hole = peer.packets[1];
    expect(hole.header).toMatchObject({ type: MessageType.StreamHole, status: MessageStatus.Continue, procedure: Proc.STORAGE_VOL_UPLOAD });
    // the whole hole packet on the wire: length 40, header (program, version, proc 208, type 6, serial, CONTINUE), hyper 190, flags 0
    const wire = Buffer.concat(conn().written).toString('hex');
    const serial = hole.header.serial.toString(16).padStart(8, '0');
    expect(wire).toContain('00000028' + '20008086' + '00000001' + '000000d0' + '00000006' + serial + '00000002' + '00000000000000be' + '00000000');
    const call = conn().packets.find((p) => p.header.procedure === Proc.STORAGE_VOL_UPLOAD && p.header.type === MessageType.Call)!;
    expect(call.payload.subarray(-20).toString('hex')).toBe('0000000000000000' + '00000000000f4240' + '00000001');
    await lv.close();
  });

  it('pipes a sparse download from a second connection (connectAgain) into a sparse upload', async () => {
    const peer = uploadPeer();
    const { lv, dialer } = await (async () => {
      const dialer = new FakeDialer(
        handshakeHandler((p, io) => {
          if (p.header.procedure === Proc.STORAGE_VOL_DOWNLOAD && p.header.type === MessageType.Call) {
            io.reply(p);
            const s = streamTo(p, io);
            for (let i = 0; i < 30; i++) {
              s.data(Buffer.alloc(262144, i + 1));
              s.hole(1 << 20);
            }
            s.end();
            return;
          }
          peer.handler(p, io);
        }),
      );
      return { lv: await Libvirt.connect({ dialer, uri: 'test:///default', keepaliveIntervalMs: 0 }), dialer };
    })();
    const reader = await lv.connectAgain();
    expect(dialer.connections).toHaveLength(2);
    expect(reader.uri).toBe('test:///default');
    const size = 30 * (262144 + (1 << 20));
    expect(await lv.uploadVolumeSparse(vol, reader.downloadVolumeSparse(vol), { length: size })).toBe(30 * 262144);
    await reader.close();
    expect(dialer.connections[1].packets.some((p) => p.header.procedure === Proc.STORAGE_VOL_DOWNLOAD)).toBe(true);
    expect(dialer.connections[0].packets.some((p) => p.header.procedure === Proc.STORAGE_VOL_DOWNLOAD)).toBe(false);
    const kinds = peer.packets.map(summary);
    expect(kinds).toHaveLength(61);
    expect(kinds.slice(0, 4)).toEqual(['data 262144', 'hole 1048576', 'data 262144', 'hole 1048576']);
    expect(peer.packets.filter((p) => p.header.type === MessageType.Stream && p.payload.length).map((p) => p.payload[0])).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(lv.rpc.pendingCount).toBe(0);
    await lv.close();
  });

  it('aborts the stream on segments out of order or past the range', async () => {
    const peer = uploadPeer();
    const { lv } = await connect(peer.handler);
    await expect(
      lv.uploadVolumeSparse(vol, [
        { kind: 'data', offset: 100, data: Buffer.alloc(10) },
        { kind: 'hole', offset: 105, length: 10 },
      ]),
    ).rejects.toThrow(/out of order/);
    expect(peer.packets.map(summary)).toEqual(['hole 100', 'data 10', 'abort']);
    peer.packets.length = 0;
    await expect(lv.uploadVolumeSparse(vol, [{ kind: 'hole', offset: 0, length: 2000 }], { length: 1000 })).rejects.toThrow(/past the range end/);
    expect(peer.packets.map(summary)).toEqual(['abort']);
    expect(lv.rpc.pendingCount).toBe(0);
    await lv.close();
  });

  it('never sends a hole on a stream that was not opened sparse', async () => {
    const peer = uploadPeer();
    const { lv } = await connect(peer.handler);
    const stream = await lv.procedures.storageVolUpload(vol, 0, 0, 0);
    await expect(stream.sendHole(4096)).rejects.toThrow(/not opened sparse/);
    const sparse = await lv.procedures.storageVolUpload(vol, 0, 0, 1);
    await expect(sparse.sendHole(-1)).rejects.toThrow(/invalid hole length/);
    await expect(sparse.sendHole(Number.NaN)).rejects.toThrow(/invalid hole length/);
    await sparse.sendHole(0); // nothing to send
    expect(peer.packets).toEqual([]);
    await stream.abort();
    await sparse.abort();
    await lv.close();
  });
});
