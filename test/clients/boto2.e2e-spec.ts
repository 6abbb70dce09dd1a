// boto 2 (Debian's python3-boto 2.49, /usr/bin/python3), what Eucalyptus users scripted with,
// against the real CLC with a simulated CC/NC (fake-zone.ts) and SC (fake-storage.ts) in one
// zone: zones, instance types, images, key pairs, groups and rules, tags, run / describe / console
// / reboot / stop / start / terminate, volumes attached to running and stopped instances,
// snapshots, a volume from a snapshot, addresses. Once with boto 2's SigV4 (scope 0/127 from the
// host 127.0.0.1) and once with its SigV2 query signer.
import { jest } from '@jest/globals';
import { jetstreamManager } from '@nats-io/jetstream';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EVENTS_STREAM } from '@koala/contracts';
import { NatsBus } from '@koala/messaging';
import { runAdminCommand } from '../../apps/cloud-controller/src/admin/admin-commands.js';
import { startCloud, uniqueZone, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { awsCliEnv } from '../support/cli-env.js';
import { FakeZone } from '../instances/fake-zone.js';
import { FakeStorage } from '../volumes/fake-storage.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3'; // Debian's, with python3-boto
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'boto2_flow.py');
const consumers = { instances: `clc-test-${randomBytes(4).toString('hex')}`, volumes: `clc-test-vol-${randomBytes(4).toString('hex')}` };

let cloud: TestCloud;
let zone: FakeZone;
let sc: FakeStorage;
let probe: NatsBus;
let frank: TestCredentials;
let imageId: string;
let work: string;

jest.setTimeout(120_000);

beforeAll(async () => {
  zone = await FakeZone.start(uniqueZone('boto2'));
  sc = await FakeStorage.start(zone.zone);
  cloud = await startCloud({
    env: { KOALA_EVENTS_CONSUMER: consumers.instances, KOALA_VOLUME_EVENTS_CONSUMER: consumers.volumes, KOALA_VOLUME_SWEEP_MS: '200', KOALA_PUBLIC_IP_RANGE: '198.51.100.0/29' },
  });
  frank = await cloud.createAccount('frank');
  work = mkdtempSync(join(tmpdir(), 'koala-boto2-'));
  const disk = join(work, 'disk.raw');
  writeFileSync(disk, Buffer.concat([Buffer.from('boto 2 test disk\n'), Buffer.alloc(1024 * 1024)]));
  let out = '';
  let err = '';
  const code = await runAdminCommand(cloud.config, ['image', 'import', '--name', 'boto2-disk', '--account', 'frank', disk], { out: (s) => (out += s), err: (s) => (err += s) });
  if (code !== 0) throw new Error(`image import failed: ${err}`);
  imageId = /emi-[0-9a-f]{17}/.exec(out + err)![0];
  probe = await NatsBus.connect({ url: 'nats://127.0.0.1:4222', name: 'boto2-test-probe' });
}, 90_000);

afterAll(async () => {
  await cloud?.close();
  for (const c of [zone, sc]) await c?.close();
  if (probe) {
    const jsm = await jetstreamManager(probe.connection);
    for (const c of Object.values(consumers)) await jsm.consumers.delete(EVENTS_STREAM, c).catch(() => undefined);
    await probe.close();
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

(existsSync('/usr/lib/python3/dist-packages/boto/__init__.py') ? describe : describe.skip).each([
  ['SigV4', 'v4', 'HmacAuthV4Handler'],
  ['SigV2', 'v2', 'QuerySignatureV2AuthHandler'],
])('boto 2 with %s', (_name, sig, handler) => {
  it('runs a whole session: zones, types, images, keys, groups, tags, instances, volumes, snapshots, addresses', async () => {
    const env = { ...awsCliEnv(frank), BOTO_CONFIG: '/dev/null', BOTO_PATH: '/dev/null' };
    const { stdout } = await run(PYTHON, [SCRIPT, cloud.endpoint, zone.zone, imageId, sig, sig], { env, timeout: 110_000 }).catch((e) => {
      throw new Error(`boto 2 script failed: ${e.stderr}`);
    });
    const r = JSON.parse(stdout);
    expect(r.boto).toBe('2.49.0');
    expect(r.auth).toBe(handler);
    if (sig === 'v4') expect(r.scope).toEqual(['0', '127']);
    expect(r.regions).toEqual(['koala-1']);
    expect(r.zones).toContainEqual([zone.zone, 'available']);
    expect(r.types).toContainEqual(['m1.small', '1', '256', '2']);
    expect(r.types).toHaveLength(6);
    expect(r.image).toEqual([imageId, 'boto2-disk', 'available', expect.stringMatching(/^\/dev\//)]);
    expect(r.key).toEqual([`b2-${sig}`, expect.stringMatching(/^-----BEGIN/), true]);
    expect(r.keys).toEqual([`b2-${sig}`]);
    expect(r.group).toEqual([`b2-${sig}`, 'boto 2 group', [['tcp', '22', '22', ['10.0.0.0/8']]]]);
    expect(r.dup).toBe('InvalidPermission.Duplicate');
    expect(r.instance).toEqual(['running', 'm1.small', zone.zone, `b2-${sig}`, [`b2-${sig}`], 'boto2', imageId]);
    expect(r.tags).toEqual([
      ['Name', `b2-${sig}`],
      ['by', 'boto2'],
    ]);
    expect(r.tags_after).toEqual(['Name']);
    expect(r.filtered).toHaveLength(1);
    expect(r.console[1]).toBe(true);
    expect(r.reboot).toBe(true);
    expect(r.attached_running).toEqual(['in-use', r.filtered[0], '/dev/sdf']);
    expect(r.attached_stopped).toEqual(['stopped', 'in-use', r.filtered[0], '/dev/sdg']);
    expect(r.snapshot).toEqual(['completed', true, 'boto 2 snapshot', 1]);
    expect(r.restored).toEqual(['available', true, 1]);
    expect(r.address).toEqual([true]);
    expect(r.released).toBe(true);
    expect(r.terminated).toBe('terminated');
    expect(r.group_deleted).toBe(true);
    expect(r.missing_key).toBe('InvalidGroup.NotFound');
    // the fake node saw the stop/start and the attachment to the stopped instance
    const id = r.filtered[0] as string;
    expect(zone.actions.filter((a) => a.instanceId === id).map((a) => a.action)).toEqual(['reboot', 'stop', 'start', 'terminate']);
    expect(sc.log.filter((l) => l.includes(id) && l.startsWith('attach')).map((l) => l.split(' ').at(-1))).toEqual(['/dev/sdf', '/dev/sdg']);
  });
});
