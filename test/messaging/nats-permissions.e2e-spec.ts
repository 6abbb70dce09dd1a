/**
 * The permission table (natsPermissions) enforced by a real nats-server running the generated
 * configuration: every component user can do its job (request/reply, events into JetStream,
 * durable consumers), and cannot publish or read what is another's.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  busPrincipals,
  busUser,
  ComponentStatus,
  EVENTS_STREAM,
  EventSubjects,
  exportVolume,
  InstanceEvent,
  listExports,
  listNodes,
  networkState,
  nodeConsoleOutput,
  nodeAttachVolume,
  StorageEvent,
  storageSealKey,
  Subjects,
  type BusPrincipal,
} from '@koala/contracts';
import { NatsBus, natsServerConfig } from '@koala/messaging';
import { TestNatsServer } from '../support/nats-server.js';

const Any = z.unknown();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const target = { iqn: 'iqn.2026-11.dev.koala:vol-1', lun: 1, portal: '127.0.0.1:3260', chapUser: 'u', chapSecret: 'very-secret-chap-1' };
const zoneState = { zone: 'z1', version: 1, subnet: '10.0.0.0/24', dnsSuffix: 'z1.internal', nodes: [], interfaces: [], groups: [], generatedAt: new Date().toISOString() };
const event = (node: string, zone = 'z1') => ({ instanceId: `i-${randomBytes(4).toString('hex')}`, zone, node, state: 'running' as const, at: new Date().toISOString() });

describe('the bus permission table on a real nats-server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'koala-nats-perm-'));
  const principals = busPrincipals([
    { zone: 'z1', nodes: ['n1', 'n2'] },
    { zone: 'z2', nodes: ['n3'] },
  ]);
  const passwords = new Map(principals.map((p) => [busUser(p), randomBytes(18).toString('base64url')]));
  let server: TestNatsServer;
  const buses = new Map<string, NatsBus>();
  const bus = (user: string) => buses.get(user)!;
  const connect = async (user: string, password = passwords.get(user)!) =>
    NatsBus.connect({ url: `nats://${user}:${password}@127.0.0.1:${server.port}`, name: `test-${user}`, reconnectWaitMs: 200, connectTimeoutMs: 3000 });

  beforeAll(async () => {
    const conf = join(dir, 'nats.conf');
    writeFileSync(
      conf,
      natsServerConfig({ host: '127.0.0.1', port: 1, storeDir: join(dir, 'js'), users: principals.map((principal: BusPrincipal) => ({ principal, password: passwords.get(busUser(principal))! })) }),
      { mode: 0o600 },
    );
    // The test's -a/-p/-sd flags override host, port and store of the file.
    server = await TestNatsServer.start(['-c', conf]);
    for (const p of principals) buses.set(busUser(p), await connect(busUser(p)));
  }, 30_000);

  afterAll(async () => {
    for (const b of buses.values()) await b.close();
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('admits only the generated users with their own passwords', async () => {
    await expect(connect('nc-n1', passwords.get('nc-n2'))).rejects.toThrow(/authorization|authentication/i);
    await expect(NatsBus.connect({ url: `nats://127.0.0.1:${server.port}`, name: 'anon', connectTimeoutMs: 2000 })).rejects.toThrow(/authorization|authentication/i);
  });

  it('lets each component do its job: requests, replies, heartbeats, network state, status', async () => {
    bus('nc-n1').handle(nodeConsoleOutput('z1', 'n1'), () => ({ output: 'b2s=', timestamp: 'now' }));
    bus('cc-z1').handle(listNodes('z1'), () => ({ zone: 'z1', nodes: [] }));
    bus('sc-z1').handle(exportVolume('z1'), () => target);
    bus('sc-z1').handle(storageSealKey('z1'), () => ({ sealKey: 'sc-key' }));
    bus('clc').handle(listExports(), () => ({ exports: [] }));
    bus('clc').handle(networkState(), () => zoneState);
    const heartbeats: unknown[] = [];
    bus('cc-z1').subscribe(Subjects.nodeHeartbeat('z1'), Any, (hb) => void heartbeats.push(hb));
    const states: unknown[] = [];
    bus('nc-n1').subscribe(Subjects.zoneNetworkState('z1'), Any, (s) => void states.push(s));
    for (const [user, b] of buses) b.answer(Subjects.status, () => ({ kind: 'node-controller', id: user, version: '1', pid: 1 }));
    for (const b of buses.values()) await b.flush();

    expect(await bus('cc-z1').request(nodeConsoleOutput('z1', 'n1'), { instanceId: 'i-1', node: 'n1' })).toEqual({ output: 'b2s=', timestamp: 'now' });
    expect(await bus('clc').request(listNodes('z1'), {})).toEqual({ zone: 'z1', nodes: [] });
    expect(await bus('cli').request(listNodes('z1'), {})).toEqual({ zone: 'z1', nodes: [] });
    const { chapSecret: _s, ...exported } = target; // the reply never carries the secret
    expect(await bus('clc').request(exportVolume('z1'), { volumeId: 'vol-1', node: 'n1', initiatorIqn: 'iqn.x', chapUser: 'u', chapSecret: target.chapSecret })).toEqual(exported);
    expect(await bus('clc').request(storageSealKey('z1'), {})).toEqual({ sealKey: 'sc-key' });
    await expect(bus('nc-n1').request(storageSealKey('z1'), {}, { timeoutMs: 1000 })).rejects.toThrow();
    expect(await bus('sc-z1').request(listExports(), { zone: 'z1' })).toEqual({ exports: [] });
    expect((await bus('nc-n1').request(networkState(), { zone: 'z1', node: 'n1' })).version).toBe(1);
    bus('nc-n1').publish(Subjects.nodeHeartbeat('z1'), Any, { node: 'n1' });
    bus('clc').publish(Subjects.zoneNetworkState('z1'), Any, zoneState);
    await bus('nc-n1').flush();
    await bus('clc').flush();
    await sleep(200);
    expect(heartbeats).toEqual([{ node: 'n1' }]);
    expect(states).toHaveLength(1);
    const status = await bus('cli').gather(Subjects.status, ComponentStatus.partial(), {}, { timeoutMs: 1000, stallMs: 300 });
    expect(status.map((s) => s.id).sort()).toEqual([...buses.keys()].filter((u) => u !== 'cli').sort()); // the CLI asks, it does not answer
  });

  it('carries events into JetStream from their producers to the CLC’s durable consumers and the CC', async () => {
    // Producers start first in the all-in-one cloud: the CC creates the stream, the CLC may update it.
    const ccStream = bus('cc-z1').events({ name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: 3600_000 });
    await ccStream.ensure();
    await bus('clc')
      .events({ name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: 7200_000 })
      .ensure();
    const seenByCc: string[] = [];
    bus('cc-z1').subscribe(EventSubjects.instance('z1'), InstanceEvent, (ev) => void seenByCc.push(ev.instanceId));
    const instances: string[] = [];
    const volumes: string[] = [];
    const clcStream = bus('clc').events({ name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: 7200_000 });
    await clcStream.consume('clc-instances', 'koala.v1.events.instance.>', InstanceEvent, (ev) => void instances.push(ev.instanceId));
    await clcStream.consume('clc-volumes', 'koala.v1.events.volume.>', StorageEvent, (ev) => void volumes.push(ev.id));
    await bus('cc-z1').flush();

    const ev1 = event('n1');
    await bus('nc-n1')
      .events({ name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: 7200_000 })
      .publish(EventSubjects.instance('z1'), InstanceEvent, ev1);
    const ev3 = event('n3', 'z2');
    await bus('nc-n3')
      .events({ name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: 7200_000 })
      .publish(EventSubjects.instance('z2'), InstanceEvent, ev3);
    await bus('sc-z1')
      .events({ name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: 7200_000 })
      .publish(EventSubjects.volume('z1'), StorageEvent, { kind: 'volume', id: 'vol-9', zone: 'z1', state: 'available', at: new Date().toISOString() });
    const deadline = Date.now() + 5000;
    while ((instances.length < 2 || volumes.length < 1) && Date.now() < deadline) await sleep(50);
    expect(instances.sort()).toEqual([ev1.instanceId, ev3.instanceId].sort());
    expect(volumes).toEqual(['vol-9']);
    expect(seenByCc).toEqual([ev1.instanceId]);
  });

  it('keeps each component to its own subjects', async () => {
    // n2's commands carry its CHAP secrets: n1 can neither send them nor read them.
    const n2Got: string[] = [];
    bus('nc-n2').handle(nodeConsoleOutput('z1', 'n2'), () => (n2Got.push('console'), { output: '', timestamp: 'now' }));
    bus('nc-n2').handle(nodeAttachVolume('z1', 'n2'), () => (n2Got.push('attach'), { guestDevice: 'vdb' }));
    const spy = await connect('nc-n1'); // its own connection: refused subscriptions are closed by the server
    const stolen: string[] = [];
    for (const s of [Subjects.nodeCommand('z1', 'n2', 'attach-volume'), 'koala.v1.zone.z1.node.>', '_INBOX.>', '_INBOX.clc.>', 'koala.v1.zone.z1.sc.*', '>']) {
      spy.connection.subscribe(s, { callback: (err, m) => void (!err && stolen.push(`${s}: ${m.subject}`)) });
    }
    await bus('nc-n2').flush();
    await spy.flush().catch(() => undefined);

    await expect(bus('nc-n1').request(nodeConsoleOutput('z1', 'n2'), { instanceId: 'i-1', node: 'n2' }, { timeoutMs: 1000 })).rejects.toThrow();
    await expect(bus('cc-z2').request(nodeConsoleOutput('z1', 'n2'), { instanceId: 'i-1', node: 'n2' }, { timeoutMs: 1000 })).rejects.toThrow();
    await expect(bus('sc-z1').request(nodeConsoleOutput('z1', 'n2'), { instanceId: 'i-1', node: 'n2' }, { timeoutMs: 1000 })).rejects.toThrow();
    // The rightful sender works, and the secret in the command and in the SC's reply stays unseen.
    expect(await bus('cc-z1').request(nodeAttachVolume('z1', 'n2'), { instanceId: 'i-1', node: 'n2', volumeId: 'vol-1', device: '/dev/sdf', target })).toEqual({ guestDevice: 'vdb' });
    await bus('clc').request(exportVolume('z1'), { volumeId: 'vol-1', node: 'n2', initiatorIqn: 'iqn.x', chapUser: 'u', chapSecret: target.chapSecret });
    expect(n2Got).toEqual(['attach']);
    await sleep(200);
    expect(stolen).toEqual([]);
    await spy.close().catch(() => undefined);

    // Events: a CC, SC or NC publishes only its own zone's kind of event.
    const pub = (user: string, subject: string) =>
      bus(user)
        .events({ name: EVENTS_STREAM, subjects: [EventSubjects.all], maxAgeMs: 7200_000 })
        .publish(subject, Any, event('x'));
    await expect(pub('cc-z1', EventSubjects.instance('z2'))).rejects.toThrow();
    await expect(pub('nc-n1', EventSubjects.instance('z2'))).rejects.toThrow();
    await expect(pub('nc-n1', EventSubjects.volume('z1'))).rejects.toThrow();
    await expect(pub('sc-z1', EventSubjects.instance('z1'))).rejects.toThrow();

    // Only the SC sends its heartbeat, only the CLC the zone's network state; nobody but the CLC and CLI asks for status.
    const forged: string[] = [];
    bus('cc-z1').subscribe(Subjects.nodeHeartbeat('z2'), Any, () => void forged.push('hb')); // refused too: not its zone
    bus('nc-n1').subscribe(Subjects.zoneNetworkState('z1'), Any, () => void forged.push('state'));
    await bus('nc-n1').flush();
    bus('nc-n2').publish(Subjects.zoneNetworkState('z1'), Any, zoneState);
    bus('cc-z1').publish(Subjects.zoneNetworkState('z1'), Any, zoneState);
    bus('nc-n3').publish(Subjects.nodeHeartbeat('z2'), Any, { node: 'n3' });
    await sleep(300);
    expect(forged).toEqual([]);
    await expect(bus('nc-n1').gather(Subjects.status, Any, {}, { timeoutMs: 500 })).rejects.toThrow(/Permissions Violation for Publish to "koala.v1.status"/);

    // The event stream is the CLC's: an NC cannot delete or purge it.
    const jsm = await jetstreamManager(bus('nc-n1').connection, { timeout: 1000 });
    await expect(jsm.streams.delete(EVENTS_STREAM)).rejects.toThrow();
    await expect(jsm.streams.purge(EVENTS_STREAM)).rejects.toThrow();
    expect((await (await jetstreamManager(bus('clc').connection)).streams.info(EVENTS_STREAM)).config.name).toBe(EVENTS_STREAM);
  });
});
