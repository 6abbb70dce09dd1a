/**
 * Requests per second of DescribeKeyPairs and DescribeSecurityGroups with many items, Koala vs
 * moto_server (a peer EC2 implementation), driven by the same AWS SDK v3 client code.
 * Prints figures and ratios; asserts nothing about timings.
 *
 * Run (PostgreSQL and NATS up, as for the e2e tests):
 *   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/api-jest.config.js
 * Knobs (environment): BENCH_KEYS=500 BENCH_GROUPS=200 BENCH_SECONDS=5 BENCH_CONCURRENCY=8
 *
 * Koala runs in-process (startCloud: real PostgreSQL, real NATS, real HTTP on loopback), so it
 * shares this process's event loop with the SDK client that parses every response; moto_server
 * runs as a separate child process on a free loopback port. The comparison therefore favours moto.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { connect } from 'node:net';
import { CreateSecurityGroupCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, EC2Client, ImportKeyPairCommand } from '@aws-sdk/client-ec2';
import { startCloud, type TestCloud } from '../test/support/cloud.js';
import { freePort } from '../test/support/nats-server.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 500);
const GROUPS = Number(process.env.BENCH_GROUPS ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);

/** An OpenSSH `ssh-rsa` public key line. */
function opensshRsaPublicKey(): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' }) as { n: string; e: string };
  const str = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const mpint = (b64: string) => {
    let b = Buffer.from(b64, 'base64url');
    if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return str(b);
  };
  return `ssh-rsa ${Buffer.concat([str(Buffer.from('ssh-rsa')), mpint(jwk.e), mpint(jwk.n)]).toString('base64')} bench`;
}

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

async function populate(ec2: EC2Client, publicKey: string): Promise<void> {
  const material = new TextEncoder().encode(publicKey);
  await pool([...Array(KEYS).keys()], 10, (i) => ec2.send(new ImportKeyPairCommand({ KeyName: `bench-key-${String(i).padStart(4, '0')}`, PublicKeyMaterial: material })));
  await pool([...Array(GROUPS).keys()], 10, (i) => ec2.send(new CreateSecurityGroupCommand({ GroupName: `bench-sg-${String(i).padStart(4, '0')}`, Description: 'benchmark group' })));
}

/** Requests/s of `call` with CONCURRENCY callers for SECONDS (after a short warm-up). */
async function rate(call: () => Promise<unknown>): Promise<{ rps: number; n: number }> {
  for (let i = 0; i < 5; i++) await call();
  let n = 0;
  const start = performance.now();
  const until = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        await call();
        n++;
      }
    }),
  );
  return { rps: n / ((performance.now() - start) / 1000), n };
}

async function waitPort(port: number, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1', () => (s.end(), res(true)));
      s.on('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`moto_server did not open port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let cloud: TestCloud;
let moto: ChildProcess;
let motoClient: EC2Client;

beforeAll(async () => {
  cloud = await startCloud();
  const port = await freePort();
  moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await waitPort(port);
  motoClient = new EC2Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 });
}, 60_000);

afterAll(async () => {
  motoClient?.destroy();
  moto?.kill('SIGTERM');
  await cloud?.close();
});

it('DescribeKeyPairs / DescribeSecurityGroups: Koala vs moto_server', async () => {
  const koala = cloud.ec2();
  const publicKey = opensshRsaPublicKey();
  await populate(koala, publicKey);
  await populate(motoClient, publicKey);

  const rows: string[] = [];
  const line = (s: string) => rows.push(s);
  line(`items: ${KEYS} key pairs, ${GROUPS} security groups (plus defaults); ${CONCURRENCY} concurrent callers, ${SECONDS}s per figure`);
  line('action                   koala req/s   moto req/s   koala/moto   items (koala / moto)');
  for (const [name, make] of [
    ['DescribeKeyPairs', () => new DescribeKeyPairsCommand({})],
    ['DescribeSecurityGroups', () => new DescribeSecurityGroupsCommand({})],
  ] as const) {
    const count = async (c: EC2Client) => {
      const r = (await c.send(make() as never)) as { KeyPairs?: unknown[]; SecurityGroups?: unknown[] };
      return (r.KeyPairs ?? r.SecurityGroups ?? []).length;
    };
    const [kn, mn] = [await count(koala), await count(motoClient)];
    const k = await rate(() => koala.send(make() as never));
    const m = await rate(() => motoClient.send(make() as never));
    line(`${name.padEnd(24)} ${k.rps.toFixed(1).padStart(11)} ${m.rps.toFixed(1).padStart(12)} ${(k.rps / m.rps).toFixed(2).padStart(12)}   ${kn} / ${mn}`);
  }
  process.stdout.write(`\n${rows.join('\n')}\n\n`);
}, 600_000);
