// ansible's amazon.aws collection (Debian's ansible, modules on the pyenv python with boto3)
// against the real CLC with a simulated CC/NC (fake-zone.ts) and SC (fake-storage.ts): key
// pair, security group, an instance WITHOUT a subnet (the default-VPC face), instance info, a
// volume, an elastic IP; a second run changes nothing; then all of it absent.
// About 30 s per playbook run on an idle 2-core machine (each module starts python and boto3;
// ec2_vol's waiter sleeps 15 s after CreateVolume answers `creating`).
// Network rule: every module gets endpoint_url and region koala-1, AWS_ENDPOINT_URL is set too,
// and a sitecustomize guard refuses (and notes) any non-loopback host the modules try.
import { jest } from '@jest/globals';
import { DescribeAddressesCommand, DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { jetstreamManager } from '@nats-io/jetstream';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const PYTHON = '/root/.pyenv/shims/python3'; // has boto3; Debian's ansible runs the modules with it
const HERE = join(dirname(fileURLToPath(import.meta.url)), 'ansible');
const consumers = { instances: `clc-test-${randomBytes(4).toString('hex')}`, volumes: `clc-test-vol-${randomBytes(4).toString('hex')}` };

let cloud: TestCloud;
let zone: FakeZone;
let sc: FakeStorage;
let gina: TestCredentials;
let imageId: string;
let work: string;

jest.setTimeout(150_000);

beforeAll(async () => {
  zone = await FakeZone.start(uniqueZone('ans'));
  sc = await FakeStorage.start(zone.zone);
  cloud = await startCloud({
    env: {
      KOALA_EVENTS_CONSUMER: consumers.instances,
      KOALA_VOLUME_EVENTS_CONSUMER: consumers.volumes,
      KOALA_VOLUME_SWEEP_MS: '200',
      KOALA_PUBLIC_IP_RANGE: '198.51.100.0/29',
      KOALA_ZONE_SUBNETS: `${zone.zone}=10.79.0.0/24`,
    },
  });
  gina = await cloud.createAccount('gina');
  work = mkdtempSync(join(tmpdir(), 'koala-ansible-'));
  copyFileSync(join(HERE, 'loopback_guard.py'), join(work, 'sitecustomize.py'));
  const disk = join(work, 'disk.raw');
  writeFileSync(disk, Buffer.concat([Buffer.from('ansible test disk\n'), Buffer.alloc(1024 * 1024)]));
  let out = '';
  let err = '';
  const code = await runAdminCommand(cloud.config, ['image', 'import', '--name', 'ansible-disk', '--account', 'gina', disk], { out: (s) => (out += s), err: (s) => (err += s) });
  if (code !== 0) throw new Error(`image import failed: ${err}`);
  imageId = /emi-[0-9a-f]{17}/.exec(out + err)![0];
}, 90_000);

afterAll(async () => {
  await cloud?.close();
  for (const c of [zone, sc]) await c?.close();
  const probe = await NatsBus.connect({ url: 'nats://127.0.0.1:4222', name: 'ansible-test-cleanup' });
  const jsm = await jetstreamManager(probe.connection);
  for (const c of Object.values(consumers)) await jsm.consumers.delete(EVENTS_STREAM, c).catch(() => undefined);
  await probe.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface PlayResult {
  changed: number;
  failed: number;
  tasks: Array<{ name: string; changed: boolean; failed: boolean; msg?: string; result: Record<string, unknown> }>;
}

async function playbook(name: string): Promise<PlayResult> {
  const t0 = Date.now();
  const guardLog = join(work, 'guard.log');
  const env = {
    ...awsCliEnv(gina),
    AWS_ENDPOINT_URL: cloud.endpoint, // every boto3 client of every service: the test cloud
    PYTHONPATH: work, // sitecustomize: the loopback guard
    KOALA_GUARD_LOG: guardLog,
    ANSIBLE_STDOUT_CALLBACK: 'json',
    ANSIBLE_LOCAL_TEMP: join(work, 'tmp'),
    ANSIBLE_REMOTE_TEMP: join(work, 'tmp'),
    ANSIBLE_HOME: join(work, 'home'),
    ANSIBLE_NOCOWS: '1',
    ANSIBLE_PIPELINING: '1',
    ANSIBLE_RETRY_FILES_ENABLED: '0',
    ANSIBLE_INVENTORY_UNPARSED_WARNING: '0',
    ANSIBLE_LOCALHOST_WARNING: '0',
  };
  const args = [join(HERE, name), '-i', 'localhost,', '-e', `endpoint=${cloud.endpoint} image_id=${imageId} ansible_python_interpreter=${PYTHON}`];
  const out = await run('ansible-playbook', args, { env, timeout: 100_000, maxBuffer: 64 * 1024 * 1024 }).catch((e: { stdout?: string; stderr?: string }) => ({
    stdout: e.stdout ?? '',
    stderr: e.stderr ?? '',
  }));
  if (process.env.KOALA_TEST_TIMINGS) process.stderr.write(`${name}: ${Date.now() - t0} ms\n`);
  expect(existsSync(guardLog) ? readFileSync(guardLog, 'utf8') : '').toBe(''); // nothing tried to leave loopback
  const doc = JSON.parse(out.stdout) as {
    plays: Array<{ tasks: Array<{ task: { name: string; duration?: { start: string; end: string } }; hosts: Record<string, Record<string, unknown>> }> }>;
    stats: Record<string, { changed: number; failures: number }>;
  };
  if (process.env.KOALA_TEST_TIMINGS)
    for (const t of doc.plays[0]!.tasks) process.stderr.write(`  ${t.task.name}: ${t.task.duration ? Date.parse(t.task.duration.end) - Date.parse(t.task.duration.start) : '?'} ms\n`);
  const tasks = doc.plays[0]!.tasks.map((t) => {
    const r = t.hosts.localhost ?? {};
    return { name: t.task.name, changed: r.changed === true, failed: r.failed === true, msg: r.msg as string | undefined, result: r };
  });
  const failedTasks = tasks.filter((t) => t.failed).map((t) => `${t.name}: ${t.msg} ${JSON.stringify(t.result).slice(0, 1500)}`);
  expect(failedTasks).toEqual([]);
  return { changed: doc.stats.localhost!.changed, failed: doc.stats.localhost!.failures, tasks };
}

(existsSync('/usr/bin/ansible-playbook') ? describe : describe.skip)('ansible amazon.aws', () => {
  it('creates key, group, instance (default VPC), volume, elastic IP; a second run changes nothing; then all absent', async () => {
    const first = await playbook('present.yml');
    const results = first.tasks.find((t) => t.name === 'results')!.result.msg as Record<string, string>;
    expect(results.key).toBe('ans-key');
    expect(results.instance).toMatch(/^i-[0-9a-f]{17}$/);
    expect(results.state).toBe('running');
    expect(results.subnet).toMatch(/^subnet-/);
    expect(results.vpc).toMatch(/^vpc-/);
    expect(results.volume).toMatch(/^vol-/);
    expect(results.eip).toMatch(/^198\.51\.100\./);
    expect(first.tasks.filter((t) => t.changed).map((t) => t.name)).toEqual([
      'key pair',
      'security group (default VPC)',
      "instance without a subnet (the default VPC's)",
      'volume attached to the instance',
      'elastic IP on the instance',
    ]);

    const again = await playbook('present.yml');
    expect(again.tasks.filter((t) => t.changed).map((t) => t.name)).toEqual([]);

    const gone = await playbook('absent.yml');
    expect(gone.tasks.filter((t) => t.changed).map((t) => t.name)).toEqual(['elastic IP released', 'instance terminated', 'volume deleted', 'security group gone', 'key pair gone']);
    // nothing of the test is left (asked through the SDK: a third playbook run costs 30 s)
    const ec2 = cloud.ec2(gina);
    expect((await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs).toEqual([]);
    expect((await ec2.send(new DescribeAddressesCommand({}))).Addresses).toEqual([]);
    expect(((await ec2.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups ?? []).map((g) => g.GroupName)).toEqual(['default']);
    expect(((await ec2.send(new DescribeVolumesCommand({}))).Volumes ?? []).filter((v) => v.State !== 'deleting' && v.State !== 'deleted')).toEqual([]);
    const instances = ((await ec2.send(new DescribeInstancesCommand({}))).Reservations ?? []).flatMap((r) => r.Instances ?? []);
    expect(instances.map((i) => i.State!.Name)).toEqual(['terminated']);
  });
});
