// Byte-level tests of the RPC layer and facade against fake peers (in memory and on a
// temporary UNIX socket). No libvirtd needed.
import { PassThrough, Writable } from 'node:stream';
import { Libvirt, LibvirtReconnector } from './libvirt.js';
import { Proc, uuidToBytes } from './procedures.js';
import { KEEPALIVE_PROGRAM, LibvirtConnectionClosedError, VIR_ERR_NO_DOMAIN } from './rpc.js';
import { FakeDaemon, FakeDialer, handshakeHandler, type PeerHandler } from './testing/fake-peer.js';
import { MessageStatus, MessageType, UnixDialer } from './transport.js';
import { VIR_NET_MESSAGE_MAX, XdrError, XdrWriter } from './xdr.js';

const UUID = '4dea22b3-1d52-d8f3-2516-782e98ab3fa0';

function domainPayload(name: string, id: number): Buffer {
  return new XdrWriter().string(name).opaqueFixed(uuidToBytes(UUID), 16).int(id).toBuffer();
}

async function connect(handler: PeerHandler): Promise<{ lv: Libvirt; dialer: FakeDialer }> {
  const dialer = new FakeDialer(handshakeHandler(handler));
  const lv = await Libvirt.connect({ dialer, uri: 'test:///default', keepaliveIntervalMs: 0 });
  return { lv, dialer };
}

describe('Libvirt over a fake dialer', () => {
  it('performs the handshake with exact bytes on the wire', async () => {
    const { lv, dialer } = await connect(() => undefined);
    const wire = Buffer.concat(dialer.connections[0].written).toString('hex');
    const authList = '0000001c' + '20008086' + '00000001' + '00000042' + '00000000' + '00000001' + '00000000';
    const uri = Buffer.from('test:///default').toString('hex');
    const open = '00000038' + '20008086' + '00000001' + '00000001' + '00000000' + '00000002' + '00000000' + '00000001' + '0000000f' + uri + '00' + '00000000';
    const feature = '00000020' + '20008086' + '00000001' + '0000003c' + '00000000' + '00000003' + '00000000' + '0000000a';
    expect(wire).toBe(authList + open + feature);
    await lv.close();
    expect(dialer.connections[0].packets.at(-1)!.header.procedure).toBe(Proc.CONNECT_CLOSE);
  });

  it('decodes replies and matches out-of-order replies by serial', async () => {
    const held: Parameters<PeerHandler>[] = [];
    const { lv } = await connect((p, io) => {
      if (p.header.procedure === Proc.DOMAIN_LOOKUP_BY_NAME) held.push([p, io]);
      if (held.length === 2) {
        // Answer the second call first.
        const [[p1, io1], [p2]] = held;
        io1.reply(p2, domainPayload('second', 2));
        io1.reply(p1, domainPayload('first', 1));
      }
    });
    const [a, b] = await Promise.all([lv.lookupDomainByName('first'), lv.lookupDomainByName('second')]);
    expect(a).toEqual({ name: 'first', uuid: UUID, id: 1 });
    expect(b).toEqual({ name: 'second', uuid: UUID, id: 2 });
    await lv.close();
  });

  it('turns error replies into LibvirtError with code and message', async () => {
    const { lv } = await connect((p, io) => io.replyError(p, VIR_ERR_NO_DOMAIN, "Domain not found: no domain with matching name 'x'"));
    await expect(lv.lookupDomainByName('x')).rejects.toMatchObject({
      name: 'LibvirtError',
      code: VIR_ERR_NO_DOMAIN,
      domain: 10,
      level: 2,
      message: "Domain not found: no domain with matching name 'x'",
    });
    await lv.close();
  });

  it('rejects a malformed reply without breaking the connection', async () => {
    let n = 0;
    const { lv } = await connect((p, io) => {
      if (n++ === 0)
        io.reply(p, Buffer.from([0, 0, 0, 50, 1, 2])); // string length 50, 2 bytes follow
      else io.reply(p, domainPayload('ok', 3));
    });
    await expect(lv.lookupDomainByName('a')).rejects.toBeInstanceOf(XdrError);
    await expect(lv.lookupDomainByName('b')).resolves.toMatchObject({ name: 'ok' });
    await lv.close();
  });

  it('fails every pending call with LibvirtConnectionClosedError on an oversized packet, no crash', async () => {
    const { lv } = await connect((p, io) => {
      if (p.header.serial === 6) {
        const huge = Buffer.alloc(28);
        huge.writeUInt32BE(VIR_NET_MESSAGE_MAX + 1024, 0);
        io.raw(huge);
      }
    });
    const closed = new Promise((res) => lv.once('close', res));
    const calls = [lv.lookupDomainByName('a'), lv.lookupDomainByName('b'), lv.getHostname()];
    const results = await Promise.allSettled(calls);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(LibvirtConnectionClosedError);
      expect((r as PromiseRejectedResult).reason.message).toMatch(/VIR_NET_MESSAGE_MAX/);
    }
    await closed;
    expect(lv.isClosed).toBe(true);
    await expect(lv.getHostname()).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
    await lv.close(); // harmless when already closed
  });

  it('answers keepalive PINGs with PONGs', async () => {
    const { lv, dialer } = await connect(() => undefined);
    const conn = dialer.connections[0];
    conn.io.send({ program: KEEPALIVE_PROGRAM, version: 1, procedure: 1, serial: 0, type: MessageType.Message });
    await new Promise((r) => setTimeout(r, 10));
    const pong = conn.packets.at(-1)!;
    expect(pong.header).toEqual({ program: KEEPALIVE_PROGRAM, version: 1, procedure: 2, type: MessageType.Message, serial: 0, status: 0 });
    await lv.close();
  });

  it('closes a connection whose peer stops answering keepalives', async () => {
    const dialer = new FakeDialer((p, io) => {
      if (p.header.program === KEEPALIVE_PROGRAM) return; // keepalive PINGs are never answered
      if (p.header.procedure === 66) io.reply(p, new XdrWriter().uint(1).int(0).toBuffer());
      else if (p.header.procedure === 60) io.reply(p, new XdrWriter().int(1).toBuffer());
      else if (p.header.procedure === 1) io.reply(p);
    });
    const lv = await Libvirt.connect({ dialer, keepaliveIntervalMs: 20, keepaliveCount: 2 });
    const err = await new Promise<LibvirtConnectionClosedError>((res) => lv.once('close', res));
    expect(err.message).toMatch(/keepalive/);
    const pings = dialer.connections[0].packets.filter((p) => p.header.program === KEEPALIVE_PROGRAM);
    expect(pings.length).toBeGreaterThanOrEqual(1);
  });

  it('does not count its own download back-pressure as a silent peer', async () => {
    // The peer never answers PINGs; the consumer holds the download paused for many keepalive
    // intervals. Unread PONGs would look unanswered: the connection must survive the pause.
    const dialer = new FakeDialer((p, io) => {
      if (p.header.program === KEEPALIVE_PROGRAM) return;
      if (p.header.procedure === 66) io.reply(p, new XdrWriter().uint(1).int(0).toBuffer());
      else if (p.header.procedure === 60) io.reply(p, new XdrWriter().int(1).toBuffer());
      else if (p.header.procedure === 1) io.reply(p);
      else if (p.header.procedure === Proc.STORAGE_VOL_DOWNLOAD && p.header.type === MessageType.Call) {
        io.reply(p);
        const s = (status: MessageStatus, payload?: Buffer) => io.send({ procedure: p.header.procedure, serial: p.header.serial, type: MessageType.Stream, status }, payload);
        for (let i = 0; i < 40; i++) s(MessageStatus.Continue, Buffer.alloc(1000, i));
        s(MessageStatus.Ok);
      }
    });
    const lv = await Libvirt.connect({ dialer, keepaliveIntervalMs: 20, keepaliveCount: 2 });
    let first = true;
    const held = new Writable({
      highWaterMark: 1,
      write(_chunk, _e, cb) {
        if (first)
          setTimeout(cb, 300); // ~15 keepalive intervals with the socket paused
        else cb();
        first = false;
      },
    });
    expect(await lv.downloadVolumeTo({ pool: 'p', name: 'v', key: '/p/v' }, held)).toBe(40_000);
    expect(lv.isClosed).toBe(false);
    await lv.close();
  });

  it('delivers lifecycle events per subscriber without blocking the reader', async () => {
    let nextId = 7;
    const { lv, dialer } = await connect((p, io) => {
      if (p.header.procedure === Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY) io.reply(p, new XdrWriter().int(nextId++).toBuffer());
      else if (p.header.procedure === Proc.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY) io.reply(p);
      else if (p.header.procedure === Proc.CONNECT_GET_HOSTNAME) io.reply(p, new XdrWriter().string('fakehost').toBuffer());
    });
    const slow = await lv.subscribeDomainLifecycle(); // id 7: never consumed
    const fast = await lv.subscribeDomainLifecycle(); // id 8
    const io = dialer.connections[0].io;
    const event = (cb: number, ev: number, name = 'vm') => {
      const w = new XdrWriter().int(cb).string(name).opaqueFixed(uuidToBytes(UUID), 16).int(1).int(ev).int(0);
      io.send({ procedure: Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, serial: 0, type: MessageType.Message }, w.toBuffer());
    };
    for (let i = 0; i < 500; i++) event(7, 2);
    event(8, 2);
    event(99, 2); // unknown callback: ignored
    io.send({ procedure: Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, serial: 0, type: MessageType.Message }, Buffer.from([1])); // malformed
    event(8, 5);
    const got: string[] = [];
    for await (const ev of fast) {
      got.push(ev.eventName);
      if (got.length === 2) break;
    }
    expect(got).toEqual(['started', 'stopped']);
    expect(await lv.getHostname()).toBe('fakehost'); // reader not stalled by the slow subscriber
    expect(await slow.next()).toMatchObject({ eventName: 'started', domain: { name: 'vm', uuid: UUID, id: 1 } });
    await slow.close();
    await fast.close();
    expect(dialer.connections[0].packets.filter((p) => p.header.procedure === Proc.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY)).toHaveLength(2);
    await lv.close();
  });

  it('drops the oldest events beyond the queue bound', async () => {
    const dialer = new FakeDialer(
      handshakeHandler((p, io) => {
        if (p.header.procedure === Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY) io.reply(p, new XdrWriter().int(1).toBuffer());
      }),
    );
    const lv = await Libvirt.connect({ dialer, keepaliveIntervalMs: 0, eventQueueMax: 3 });
    const sub = await lv.subscribeDomainLifecycle();
    for (let ev = 0; ev < 5; ev++) {
      const w = new XdrWriter().int(1).string('vm').opaqueFixed(uuidToBytes(UUID), 16).int(1).int(ev).int(0);
      dialer.connections[0].io.send({ procedure: Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, serial: 0, type: MessageType.Message }, w.toBuffer());
    }
    await new Promise((r) => setImmediate(r));
    expect(sub.dropped).toBe(2);
    expect((await sub.next()).event).toBe(2);
    dialer.connections[0].io.hangup();
    await expect(sub.next(() => false, 1000)).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
  });

  it('uploads through a stream in chunks and waits for the confirmation', async () => {
    const received: Buffer[] = [];
    const { lv, dialer } = await connect((p, io) => {
      if (p.header.procedure !== Proc.STORAGE_VOL_UPLOAD) return;
      if (p.header.type === MessageType.Call) io.reply(p);
      else if (p.header.status === MessageStatus.Continue) received.push(p.payload);
      else if (p.header.status === MessageStatus.Ok) io.send({ procedure: p.header.procedure, serial: p.header.serial, type: MessageType.Stream });
    });
    const vol = { pool: 'p', name: 'v', key: '/p/v' };
    const data = Buffer.alloc(600_000, 7);
    await lv.uploadVolume(vol, data);
    expect(Buffer.concat(received).equals(data)).toBe(true);
    expect(received.map((b) => b.length)).toEqual([262144, 262144, 75712]);
    const call = dialer.connections[0].packets.find((p) => p.header.procedure === Proc.STORAGE_VOL_UPLOAD)!;
    // vol (3 strings) + offset 0 + length 600000 + flags 0
    expect(call.payload.subarray(-20).toString('hex')).toBe('0000000000000000' + '00000000000927c0' + '00000000');

    received.length = 0;
    const readable = new PassThrough();
    const done = lv.uploadVolume(vol, readable);
    readable.write('abc');
    readable.end('def');
    await done;
    expect(Buffer.concat(received).toString()).toBe('abcdef');
    await lv.close();
  });

  it('downloads a stream into a Buffer or a Writable and surfaces stream errors', async () => {
    let mode = 'ok';
    const { lv } = await connect((p, io) => {
      if (p.header.procedure !== Proc.STORAGE_VOL_DOWNLOAD || p.header.type !== MessageType.Call) return;
      io.reply(p);
      const s = (status: MessageStatus, payload?: Buffer) => io.send({ procedure: p.header.procedure, serial: p.header.serial, type: MessageType.Stream, status }, payload);
      for (let i = 0; i < 40; i++) s(MessageStatus.Continue, Buffer.alloc(1000, i));
      if (mode === 'ok') s(MessageStatus.Ok);
      else io.send({ procedure: p.header.procedure, serial: p.header.serial, type: MessageType.Stream, status: MessageStatus.Error }, errPayload());
    });
    const vol = { pool: 'p', name: 'v', key: '/p/v' };
    const buf = await lv.downloadVolume(vol);
    expect(buf.length).toBe(40_000);
    expect(buf[39_999]).toBe(39);

    const chunks: Buffer[] = [];
    const slowSink = new Writable({
      highWaterMark: 1,
      write(chunk, _e, cb) {
        chunks.push(chunk);
        setTimeout(cb, 1);
      },
    });
    expect(await lv.downloadVolumeTo(vol, slowSink)).toBe(40_000);
    expect(Buffer.concat(chunks).equals(buf)).toBe(true);

    mode = 'error';
    await expect(lv.downloadVolume(vol)).rejects.toMatchObject({ code: 38, message: 'disk on fire' });
    expect(lv.rpc.pendingCount).toBe(0);
    await lv.close();
  });
});

function errPayload(): Buffer {
  const w = new XdrWriter();
  w.int(38)
    .int(18)
    .optional('disk on fire', (x, m) => x.string(m))
    .int(2);
  w.bool(false).bool(false).bool(false).bool(false).int(0).int(0).bool(false);
  return w.toBuffer();
}

describe('Libvirt over a fake daemon on a UNIX socket', () => {
  let daemon: FakeDaemon;
  let hangUpOn = '';

  beforeAll(async () => {
    daemon = new FakeDaemon(
      handshakeHandler((p, io) => {
        if (p.header.procedure === Proc.DOMAIN_LOOKUP_BY_NAME) {
          const name = p.payload.subarray(4, 4 + p.payload.readUInt32BE(0)).toString();
          if (name === hangUpOn)
            io.hangup(); // "daemon stopped mid-call"
          else io.reply(p, domainPayload(name, 1));
        }
      }),
    );
    await daemon.listen();
  });

  afterAll(() => daemon.close());

  it('fails in-flight calls with LibvirtConnectionClosedError when the daemon goes away', async () => {
    const lv = await Libvirt.connect({ dialer: new UnixDialer(daemon.path), keepaliveIntervalMs: 0 });
    hangUpOn = 'victim';
    const inFlight = [lv.lookupDomainByName('victim'), lv.lookupDomainByName('victim-2')];
    const results = await Promise.allSettled(inFlight);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(LibvirtConnectionClosedError);
    expect(lv.isClosed).toBe(true);
  });

  it('reports a refused dial as an error, not a hang', async () => {
    await expect(Libvirt.connect({ socketPath: `${daemon.dir}/nope` })).rejects.toThrow(/ENOENT|ECONNREFUSED/);
  });

  it('reconnects through LibvirtReconnector after the connection dropped', async () => {
    const rc = new LibvirtReconnector({ dialer: new UnixDialer(daemon.path), keepaliveIntervalMs: 0 }, { attempts: 3, initialDelayMs: 10 });
    const connected: Libvirt[] = [];
    rc.on('connected', (lv) => connected.push(lv));
    hangUpOn = 'boom';
    await expect(rc.run((lv) => lv.lookupDomainByName('ok'))).resolves.toMatchObject({ name: 'ok' });
    // The first attempt hits a hang-up; run() retries on a fresh connection, which hangs up again.
    await expect(rc.run((lv) => lv.lookupDomainByName('boom'))).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
    await expect(rc.run((lv) => lv.lookupDomainByName('fine'))).resolves.toMatchObject({ name: 'fine' });
    expect(connected.length).toBe(3);
    await rc.close();
  });
});
