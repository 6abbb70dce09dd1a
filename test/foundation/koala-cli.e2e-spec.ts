// The operator's path, with the real CLI as separate processes: `koala up` (node host in network
// namespaces + the four controllers) -> `koala status` -> `koala up` again -> a tiny-linux
// instance with a key pair, reached with `koala ssh` (one QEMU boot) -> `koala down` leaves no
// process and no namespace. The components talk over the cloud's own nats-server, each as its own user. Needs root and `npm run build`. Every name is this run's own
// (namespaces `kc<hex>-*`, zone, ports, database, $KOALA_HOME, NATS consumers, libvirt pools),
// so it runs beside a real all-in-one cloud and other test runs.
import { jest } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateKeyPairCommand,
  DescribeInstancesCommand,
  EC2Client,
  GetConsoleOutputCommand,
  RunInstancesCommand,
  waitUntilInstanceRunning,
} from '@aws-sdk/client-ec2';
import { Libvirt } from '@koala/libvirt';
import { freePort } from '../support/nats-server.js';
import { alive } from '../../apps/koala/src/supervisor/process-supervisor.js';
import { consoleProtocol } from '../support/console.js';

jest.setTimeout(600_000);

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const KOALA = join(ROOT, 'bin', 'koala');
const IMAGE_DIR = process.env.KOALA_TEST_TINY_LINUX_DIR ?? join(tmpdir(), 'koala-test-images', 'tiny-linux');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = randomBytes(2).toString('hex');
const prefix = `kc${tag}`; // namespaces kc<hex>-node1, -seg, -pub (≤ 15 characters)
const namespaces = [`${prefix}-node1`, `${prefix}-seg`, `${prefix}-pub`];
const nsExists = (ns: string) => existsSync(`/run/netns/${ns}`);
const pidFiles = (home: string) => readdirSync(join(home, 'run')).filter((f) => f.endsWith('.pid'));

describe('koala up / status / ssh / down (the all-in-one cloud as processes)', () => {
  const home = mkdtempSync(join(tmpdir(), 'koala-cli-'));
  const db = `koala_test_cli_${process.pid}_${tag}`;
  const sfx = `${process.pid}-${tag}`;
  let env: NodeJS.ProcessEnv;
  const pids: number[] = [];

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'apps', 'koala', 'src', 'main.js'))) throw new Error('run `npm run build` first (deploy/test.sh does)');
    chmodSync(home, 0o755); // QEMU (libvirt-qemu) reaches the instance disks in here
    const port = await freePort();
    env = {
      ...process.env,
      KOALA_HOME: home,
      KOALA_DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${db}`,
      KOALA_API_PORT: String(port),
      KOALA_NATS_PORT: String(await freePort()), // the cloud's own nats-server, users per component
      KOALA_ZONE: `cli-${tag}`,
      KOALA_NODE_NAME: `cli-node-${sfx}`,
      KOALA_AIO_NETNS: prefix,
      KOALA_HEARTBEAT_MS: '500',
      KOALA_EVENTS_CONSUMER: `cli-instances-${sfx}`,
      KOALA_VOLUME_EVENTS_CONSUMER: `cli-volumes-${sfx}`,
      KOALA_NC_INSTANCES_POOL: `koala-test-cli-inst-${sfx}`,
      KOALA_IMAGE_CACHE_POOL: `koala-test-cli-img-${sfx}`,
      KOALA_VOLUMES_POOL: `koala-test-cli-vol-${sfx}`,
      KOALA_SNAPSHOTS_POOL: `koala-test-cli-snap-${sfx}`,
      NODE_OPTIONS: '',
    };
    execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), IMAGE_DIR], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
  }, 660_000);

  afterAll(async () => {
    await run(KOALA, ['down'], { env }).catch(() => undefined);
    const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    await c.end();
    rmSync(home, { recursive: true, force: true });
    const lv = await Libvirt.connect({ uri: 'qemu:///system' });
    for (const p of await lv.listAllStoragePools()) {
      if (!p.name.startsWith('koala-test-cli-') || !p.name.endsWith(`-${sfx}`)) continue;
      for (const v of await lv.listAllVolumes(p).catch(() => [])) await lv.deleteVolume(v).catch(() => undefined);
      await lv.destroyStoragePool(p).catch(() => undefined);
      await lv.undefineStoragePool(p).catch(() => undefined);
    }
    await lv.close();
  });

  it('starts the node host and every component, reports them up with the node’s capacity, and is idempotent', async () => {
    const up = await run(KOALA, ['up', '--timeout=90'], { env, timeout: 150_000 });
    expect(up.stdout).toMatch(/healthy/);
    expect(up.stdout).toContain(`EC2 endpoint http://127.0.0.1:${env.KOALA_API_PORT}/`); // KOALA_PUBLIC_ENDPOINT follows the port
    for (const ns of namespaces) expect(nsExists(ns)).toBe(true);
    for (const f of pidFiles(home)) pids.push(Number(readFileSync(join(home, 'run', f), 'utf8')));
    expect(pidFiles(home).sort()).toEqual(['cc.pid', 'clc.pid', 'nats.pid', 'nc.pid', 'sc.pid']);
    expect(readdirSync(join(home, 'log')).sort()).toEqual(['cc.log', 'clc.log', 'nats.log', 'nc.log', 'sc.log']);
    // The NC drives the node host's libvirtd, not the machine's, and runs as its own NATS user.
    const ncEnv = readFileSync(`/proc/${pids[pidFiles(home).indexOf('nc.pid')]}/environ`, 'utf8').split('\0');
    expect(ncEnv).toEqual(
      expect.arrayContaining([`KOALA_NODE_NETNS=${prefix}-node1`, `KOALA_LIBVIRT_SOCKET=/run/koala/nodes/${prefix}-node1/libvirt/libvirt-sock`, 'KOALA_NODE_PUBLIC_IF=koala-pub0']),
    );
    expect(ncEnv).toContainEqual(expect.stringMatching(new RegExp(`^KOALA_NATS_URL=nats://nc-${env.KOALA_NODE_NAME}:[^@]+@127\\.0\\.0\\.1:${env.KOALA_NATS_PORT}$`)));
    expect(statSync(join(home, 'nats', 'nats.conf')).mode & 0o777).toBe(0o600);

    const { stdout } = await run(KOALA, ['status', '--json'], { env });
    const status = JSON.parse(stdout);
    expect(status.healthy).toBe(true);
    expect(status.components.map((c: { kind: string; up: boolean }) => [c.kind, c.up])).toEqual([
      ['cloud-controller', true],
      ['cluster-controller', true],
      ['node-controller', true],
      ['storage-controller', true],
    ]);
    expect(status.nodes[0]).toMatchObject({ node: env.KOALA_NODE_NAME, state: 'up' });
    expect(status.nodes[0].total.cores).toBeGreaterThan(0);
    expect(status.nodes[0].domainCount).toBe(0);
    expect((await run(KOALA, ['status'], { env })).stdout).toContain(`Node host: network namespace ${prefix}-node1 present`);

    const again = await run(KOALA, ['up'], { env, timeout: 60_000 });
    expect(again.stdout).toMatch(/already running/);
    const pidsAgain = pidFiles(home).map((f) => Number(readFileSync(join(home, 'run', f), 'utf8')));
    expect(pidsAgain.sort()).toEqual([...pids].sort());
  }, 200_000);

  it('runs tiny-linux with a key pair; `koala ssh` reaches it from the node, its public IP from the public side', async () => {
    await run(KOALA, ['bootstrap'], { env });
    const imported = await run(
      KOALA,
      ['image', 'import', '--name', 'tiny-linux', '--public', '--kernel', join(IMAGE_DIR, 'vmlinuz'), '--ramdisk', join(IMAGE_DIR, 'initramfs.img'), '--root', join(IMAGE_DIR, 'rootfs.img')],
      { env, timeout: 120_000 },
    );
    const imageId = /\b(emi-[0-9a-f]+)\b/.exec(imported.stdout)?.[1];
    expect(imageId).toBeDefined();
    const admin = Object.fromEntries([...readFileSync(join(home, 'admin.env'), 'utf8').matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]));
    const ec2 = new EC2Client({
      endpoint: `http://127.0.0.1:${env.KOALA_API_PORT}/`,
      region: 'koala-1',
      credentials: { accessKeyId: admin.AWS_ACCESS_KEY_ID!, secretAccessKey: admin.AWS_SECRET_ACCESS_KEY! },
      maxAttempts: 1,
    });
    try {
      const key = await ec2.send(new CreateKeyPairCommand({ KeyName: 'cli-key', KeyType: 'ed25519' }));
      const keyFile = join(home, 'cli-key.pem');
      writeFileSync(keyFile, key.KeyMaterial!.endsWith('\n') ? key.KeyMaterial! : `${key.KeyMaterial}\n`, { mode: 0o600 });
      // As in EC2: SSH only where the instance's group allows it.
      await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupName: 'default', IpProtocol: 'tcp', FromPort: 22, ToPort: 22, CidrIp: '0.0.0.0/0' }));
      const started = Date.now();
      const ran = await ec2.send(new RunInstancesCommand({ ImageId: imageId, InstanceType: 'm1.small', MinCount: 1, MaxCount: 1, KeyName: 'cli-key' }));
      const id = ran.Instances![0]!.InstanceId!;
      await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 180, minDelay: 1, maxDelay: 2 }, { InstanceIds: [id] });
      const inst = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
      let text = '';
      for (const deadline = Date.now() + 240_000; !/^SSH: dropbear port 22 SHA256:\S+ 1 key\(s\)$/m.test(text); await sleep(1000)) {
        if (Date.now() > deadline) throw new Error(`no SSH line on the console:\n${text.slice(-3000)}`);
        const out = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id }));
        text = out.Output ? Buffer.from(out.Output, 'base64').toString('utf8').replace(/\r/g, '') : '';
      }
      expect(consoleProtocol(text)).toContain(`INSTANCE-ID: ${id}\nUSER-DATA-BEGIN\nUSER-DATA-END\nNET: eth0 ${inst.PrivateIpAddress}/20 `);
      const booted = Date.now() - started;

      const t0 = Date.now();
      const ssh = await run(KOALA, ['ssh', id, '-i', keyFile, '--', 'cat', '/proc/version'], { env, timeout: 60_000 });
      expect(ssh.stdout).toMatch(/^Linux version \d/);
      // The host key is remembered per instance (HostKeyAlias), in $KOALA_HOME/known_hosts.
      expect(execFileSync('ssh-keygen', ['-F', id, '-f', join(home, 'known_hosts')], { encoding: 'utf8' })).toMatch(/ ssh-ed25519 /);
      console.log(`koala ssh: launch -> SSH line ${booted} ms; koala ssh ... cat /proc/version ${Date.now() - t0} ms`);

      // The public side: the "internet router" namespace reaches the instance's public address (NAT on the node).
      expect(inst.PublicIpAddress).toMatch(/^198\.51\.100\.(1[2-9][0-9]|2[0-5][0-9])$/);
      const pub = execFileSync(
        'ip',
        [
          'netns',
          'exec',
          `${prefix}-pub`,
          'ssh',
          '-i',
          keyFile,
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          'BatchMode=yes',
          '-o',
          'ConnectTimeout=15',
          `root@${inst.PublicIpAddress}`,
          'echo',
          'ok',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 },
      );
      expect(pub).toBe('ok\n');

      await expect(run(KOALA, ['ssh', 'i-0123456789abcdef0', '-i', keyFile], { env })).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/does not exist/) });
      await expect(run(KOALA, ['ssh', 'not-an-id'], { env })).rejects.toMatchObject({ code: 64 });
    } finally {
      ec2.destroy();
    }
  }, 420_000);

  it('down stops them all, removes the node host and leaves no process or namespace behind', async () => {
    const nodeRun = `/run/koala/nodes/${prefix}-node1`;
    const inNode = execFileSync('ip', ['netns', 'pids', `${prefix}-node1`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
    expect(inNode.length).toBeGreaterThan(0); // libvirtd, virtlogd, the relays, QEMU
    const down = await run(KOALA, ['down'], { env, timeout: 120_000 });
    expect(down.stdout).toMatch(new RegExp(`node ${prefix}-node1 +removed`));
    for (const pid of [...pids, ...inNode]) expect(alive(pid)).toBe(false);
    expect(pidFiles(home)).toEqual([]);
    for (const ns of namespaces) expect(nsExists(ns)).toBe(false);
    expect(existsSync(nodeRun)).toBe(false);
    expect(existsSync(join(home, 'nodes', `${prefix}-node1`))).toBe(false);
    await expect(run(KOALA, ['status'], { env })).rejects.toMatchObject({ code: 3 });
  }, 150_000);

  it('refuses a bad configuration, naming the variable', async () => {
    await expect(run(KOALA, ['status'], { env: { ...env, KOALA_API_PORT: 'eighty' } })).rejects.toMatchObject({ code: 78, stderr: expect.stringMatching(/KOALA_API_PORT/) });
    await expect(run(KOALA, ['up'], { env: { ...env, KOALA_AIO_NETNS: 'x'.repeat(10) } })).rejects.toMatchObject({ code: 78, stderr: expect.stringMatching(/KOALA_AIO_NETNS/) });
  });
});
