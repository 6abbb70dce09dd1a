// Bounded fuzzing of the EC2 endpoint: ~2,500 correctly signed requests (seeded, reproducible:
// KOALA_FUZZ_SEED) with random actions from the CLC's own action registry and hostile
// parameters (missing, duplicated, huge, unicode, NUL, bad indexes, bad versions, bad content
// types). Asserts: never a 5xx, every answer well-formed EC2 XML with the request id, the
// event loop never blocked long (another account's DescribeRegions probe and the loop-delay
// histogram), and a failed request never adds or removes rows.
//
// The cloud runs on a private NATS server with no cluster controller: nothing can launch a VM
// or create a volume, and no other test's zone can answer.
import { createHmac } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import aws4 from 'aws4';
import { parseStringPromise } from 'xml2js';
import { ActionRegistry } from '../../apps/cloud-controller/src/ec2/action-registry.js';
import { startCloud, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { TestNatsServer } from '../support/nats-server.js';
import { prng } from '../support/prng.js';
import { send, sigv4, type RawResponse } from '../api/signed-http.js';

const SEED = Number(process.env.KOALA_FUZZ_SEED ?? 20261207);
const CONCURRENT_REQUESTS = 1800;
const SERIAL_REQUESTS = 400;
const CONCURRENCY = 8;

let nats: TestNatsServer;
let cloud: TestCloud;
let fuzzer: TestCredentials;
let prober: TestCredentials;
let actions: string[];
let registry: ActionRegistry;

beforeAll(async () => {
  nats = await TestNatsServer.start();
  cloud = await startCloud({ natsUrl: nats.url });
  fuzzer = await cloud.createAccount('fuzzer');
  prober = await cloud.createAccount('prober');
  registry = cloud.app.get(ActionRegistry);
  actions = registry.actions();
}, 30_000);
afterAll(async () => {
  await cloud?.close();
  await nats?.dispose();
});

// ------------------------------------------------------------------ generators

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const chance = (r: Rand, p: number) => r() < p;
const hex = (r: Rand, n: number) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(r() * 16)]).join('');

const PREFIXES = ['i', 'vol', 'snap', 'emi', 'ami', 'eki', 'eri', 'sg', 'eipalloc', 'eipassoc', 'key', 'r', 'vpc', 'subnet'];
/** Required parameters per action, learned from MissingParameter answers. */
const learned = new Map<string, Set<string>>();
/** Ids seen in successful answers: later requests act on real resources. */
const seenIds = new Set<string>();
const ID_RE = /\b(?:i|vol|snap|emi|ami|sg|eipalloc|eipassoc|key)-[0-9a-f]{8,17}\b/g;

const HOSTILE = [6, 7, 8, 9, 10, 16, 17, 20, 21];
const PLAUSIBLE = [0, 1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 18, 19, 22, 23];

/** Mostly plausible values (to reach the handlers), one in six refused at the edge or worse. */
function value(r: Rand, hostileShare = 1 / 6): string {
  const k = chance(r, hostileShare) ? pick(r, HOSTILE) : pick(r, PLAUSIBLE);
  switch (k) {
    case 0:
      return '';
    case 1:
      return `v${hex(r, 4)}`;
    case 2:
      return `${pick(r, PREFIXES)}-${hex(r, pick(r, [8, 17, 16, 3]))}`;
    case 3:
      return seenIds.size ? pick(r, [...seenIds]) : `sg-${hex(r, 17)}`;
    case 4:
      return pick(r, ['0', '1', '-1', '8', '22', '65535', '65536', '1000', '99999999999999999999', '1e309', '0x10', ' 5 ', 'NaN']);
    case 5:
      return pick(r, ['true', 'false', 'TRUE', 'yes', '1', '0']);
    case 6:
      return 'ż\u00f3\u0142w 🐢 \u202e\u0301 ﾟ';
    case 7:
      return `a\u0000b`;
    case 8:
      return `a\u0001\u001f\u007f`;
    case 9:
      return 'x'.repeat(pick(r, [256, 300, 1025, 5000]));
    case 10:
      return 'y'.repeat(40_000);
    case 11:
      return pick(r, ['0.0.0.0/0', '10.0.0.0/33', '::/0', '203.0.113.7/32', 'garbage', '1.2.3.4']);
    case 12:
      return pick(r, ['koala-1a', 'koala-1', 'nowhere-1a', '*']);
    case 13:
      return Buffer.from(`#!/bin/sh\necho ${hex(r, 6)}\n`).toString('base64');
    case 14:
      return pick(r, ['!!notbase64!!', '====', 'QQ']);
    case 15:
      return "'; DROP TABLE key_pairs; --";
    case 16:
      return '<a>&amp;"\'</a>]]>';
    case 17:
      return pick(r, ['%', '%%', '%zz', '*', '?', '\\', '..', '/etc/passwd']);
    case 18:
      return pick(r, ['t1.micro', 'm1.small', 'x9.huge', 'standard', 'gp2', 'io1', 'rsa', 'ed25519', 'dsa', 'all', 'self', 'amazon', 'tcp', 'udp', 'icmp', '-1', '6', 'vpc', 'standard']);
    case 19:
      return pick(r, ['http://127.0.0.1:9/none.img', 'ftp://127.0.0.1/x', 'file:///etc/passwd', 'bucket/manifest.xml']);
    case 20:
      return ' \t\n ';
    case 21:
      return '\uffff\ufffe';
    case 22:
      return `k-${hex(r, 6)}`;
    default:
      return `${hex(r, 2)} ${hex(r, 2)}`;
  }
}

function index(r: Rand): string {
  return chance(r, 0.85) ? String(1 + Math.floor(r() * 3)) : pick(r, ['0', '-1', '01', '1.5', 'a', '', '1000000', '99999999999999999999']);
}

const SCALARS = [
  'InstanceId',
  'VolumeId',
  'SnapshotId',
  'ImageId',
  'GroupId',
  'AllocationId',
  'AssociationId',
  'KeyPairId',
  'SourceSnapshotId',
  'VpcId',
  'KernelId',
  'RamdiskId',
  'KeyName',
  'GroupName',
  'GroupDescription',
  'Description',
  'Name',
  'AvailabilityZone',
  'Placement.AvailabilityZone',
  'InstanceType',
  'Attribute',
  'Value',
  'Device',
  'DeviceName',
  'PublicIp',
  'Domain',
  'Size',
  'VolumeType',
  'Iops',
  'MinCount',
  'MaxCount',
  'MaxResults',
  'NextToken',
  'DryRun',
  'Force',
  'UserData',
  'PublicKeyMaterial',
  'KeyType',
  'ClientToken',
  'ImageLocation',
  'Architecture',
  'RootDeviceName',
  'IpProtocol',
  'FromPort',
  'ToPort',
  'CidrIp',
  'SourceSecurityGroupName',
  'SourceSecurityGroupOwnerId',
  'AllowReassociation',
  'Encrypted',
  'SourceRegion',
  'InstanceInitiatedShutdownBehavior',
  'UserData.Value',
  'Description.Value',
];
const LISTS = [
  'InstanceId',
  'VolumeId',
  'SnapshotId',
  'ImageId',
  'GroupId',
  'GroupName',
  'KeyName',
  'KeyPairId',
  'AllocationId',
  'PublicIp',
  'ZoneName',
  'RegionName',
  'ResourceId',
  'Owner',
  'ExecutableBy',
  'RestorableBy',
  'SecurityGroupId',
  'SecurityGroup',
];

function params(r: Rand): Record<string, string> {
  const p: Record<string, string> = {};
  const n = Math.floor(r() * 8);
  for (let i = 0; i < n; i++) {
    const shape = Math.floor(r() * 9);
    if (shape <= 2) p[pick(r, SCALARS)] = value(r);
    else if (shape === 3) p[`${pick(r, LISTS)}.${index(r)}`] = value(r);
    else if (shape === 4) {
      const f = index(r);
      if (chance(r, 0.9)) p[`Filter.${f}.Name`] = pick(r, ['tag:Name', 'tag-key', 'key-name', 'group-name', 'instance-state-name', 'status', 'volume-id', 'owner-id', 'fingerprint', 'nope', value(r)]);
      p[`Filter.${f}.Value.${index(r)}`] = chance(r, 0.7) ? pick(r, ['*', 'a*', 'running', 'available', 'x?y', '\\*']) : value(r);
    } else if (shape === 5) {
      const t = index(r);
      p[`Tag.${t}.Key`] = chance(r, 0.8) ? `k${hex(r, 2)}` : value(r);
      if (chance(r, 0.8)) p[`Tag.${t}.Value`] = value(r);
    } else if (shape === 6) {
      const s = index(r);
      p[`TagSpecification.${s}.ResourceType`] = pick(r, ['key-pair', 'security-group', 'volume', 'instance', 'image', 'snapshot', 'elastic-ip', 'nope', value(r)]);
      p[`TagSpecification.${s}.Tag.${index(r)}.Key`] = `k${hex(r, 2)}`;
      p[`TagSpecification.${s}.Tag.1.Value`] = value(r);
    } else if (shape === 7) {
      const i = index(r);
      p[`IpPermissions.${i}.IpProtocol`] = pick(r, ['tcp', 'udp', 'icmp', '-1', '6', 'bogus', value(r)]);
      p[`IpPermissions.${i}.FromPort`] = pick(r, ['22', '-1', '0', '65536', value(r)]);
      p[`IpPermissions.${i}.ToPort`] = pick(r, ['22', '-1', '65535', value(r)]);
      if (chance(r, 0.7)) p[`IpPermissions.${i}.IpRanges.${index(r)}.CidrIp`] = pick(r, ['0.0.0.0/0', '203.0.113.0/24', value(r)]);
      else p[`IpPermissions.${i}.Groups.${index(r)}.GroupId`] = value(r);
    } else {
      const i = index(r);
      p[`BlockDeviceMapping.${i}.DeviceName`] = pick(r, ['/dev/sda1', '/dev/vdb', value(r)]);
      p[`BlockDeviceMapping.${i}.Ebs.VolumeSize`] = pick(r, ['1', '0', '-1', '100000', value(r)]);
    }
  }
  return p;
}

/** A generated request: action, version, parameters and how it travels. */
interface Gen {
  action: string;
  params: Record<string, string>;
  transport: 'post' | 'get' | 'v2' | 'badType' | 'dupes';
}

function generate(r: Rand): Gen {
  const action = chance(r, 0.04) ? pick(r, ['LaunchRockets', '', 'describeregions', 'Describe Regions', `Describe${'\u0000'}Regions`]) : pick(r, actions);
  const p = params(r);
  // mostly names the action declares (any other is refused UnknownParameter before the handler):
  // drop foreign names, add some of the declared ones
  const declared = registry.entry(action)?.shapes;
  if (declared && chance(r, 0.85)) {
    for (const k of Object.keys(p)) if (declared.classify(k) === 'unknown') delete p[k];
    for (const shape of declared.shapes) if (chance(r, 0.3)) p[shape.replace(/(^|\.)N(?=\.|$)/g, () => `.${index(r)}`).replace(/^\./, '')] = value(r);
  }
  // parameters this action asked for earlier (MissingParameter): get past the first check
  for (const name of learned.get(action) ?? []) if (!(name in p) && chance(r, 0.9)) p[name] = value(r, 0.05);
  if (action !== '' || chance(r, 0.5)) p.Action = action;
  const v = chance(r, 0.9) ? '2016-11-15' : pick(r, ['', '2010-01-01', '9999-99-99', '../..', 'x'.repeat(100), 'v\u0000']);
  if (v !== '' || chance(r, 0.5)) p.Version = v;
  if (chance(r, 0.1)) p.DryRun = 'true';
  const t = r();
  const transport = t < 0.7 ? 'post' : t < 0.8 ? 'get' : t < 0.9 ? 'v2' : t < 0.95 ? 'badType' : 'dupes';
  return { action, params: p, transport };
}

// ------------------------------------------------------------------ transports

const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
const amzDate = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

/** SigV4 over an arbitrary body and content type (what a hostile but authenticated client may send). */
function sigv4Raw(creds: TestCredentials, body: string, contentType: string): Promise<RawResponse> {
  const u = new URL(cloud.endpoint);
  const headers: Record<string, string> = { 'X-Amz-Date': amzDate(new Date()), 'Content-Type': contentType };
  const req: aws4.Request & { headers: Record<string, string> } = { host: u.host, method: 'POST', path: '/', service: 'ec2', region: 'koala-1', headers, body };
  aws4.sign(req, { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey });
  return send(cloud.endpoint, { method: 'POST', path: '/', headers: req.headers as Record<string, string>, body });
}

function sigv2(creds: TestCredentials, params: Record<string, string>): Promise<RawResponse> {
  const u = new URL(cloud.endpoint);
  const all: Record<string, string> = { ...params, AWSAccessKeyId: creds.accessKeyId, SignatureVersion: '2', SignatureMethod: 'HmacSHA256', Timestamp: new Date().toISOString() };
  const canonical = Object.keys(all)
    .sort()
    .map((k) => `${rfc3986(k)}=${rfc3986(all[k]!)}`)
    .join('&');
  const signature = createHmac('sha256', creds.secretAccessKey).update(`POST\n${u.host}\n/\n${canonical}`).digest('base64');
  return send(cloud.endpoint, { method: 'POST', path: '/', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Host: u.host }, body: `${canonical}&Signature=${rfc3986(signature)}` });
}

function sendGen(g: Gen, r: Rand): Promise<RawResponse> {
  const form = Object.entries(g.params)
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .join('&');
  switch (g.transport) {
    case 'post':
      return sigv4(cloud.endpoint, fuzzer, g.params);
    case 'get':
      return sigv4(cloud.endpoint, fuzzer, g.params, { method: 'GET' });
    case 'v2':
      return sigv2(fuzzer, g.params);
    case 'badType':
      return sigv4Raw(
        fuzzer,
        form,
        pick(r, ['text/plain', 'application/json', 'text/plain; x=application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencodedX']),
      );
    case 'dupes': {
      // every parameter twice, the second copy hostile
      const dup = Object.entries(g.params)
        .map(([k]) => `${rfc3986(k)}=${rfc3986(value(r))}`)
        .join('&');
      return sigv4Raw(fuzzer, `${form}&${dup}`, 'application/x-www-form-urlencoded');
    }
  }
}

// ------------------------------------------------------------------ checks

interface Outcome {
  gen: Gen;
  status: number;
  code?: string;
}

async function check(g: Gen, res: RawResponse): Promise<Outcome> {
  const where = `${g.transport} ${JSON.stringify(g.params).slice(0, 300)} → ${res.status} ${res.body.slice(0, 300)}`;
  const rid = res.headers['x-amzn-requestid'];
  if (typeof rid !== 'string' || !/^[0-9a-f-]{36}$/.test(rid)) throw new Error(`no request id: ${where}`);
  if (res.headers['content-type'] !== 'text/xml;charset=UTF-8') throw new Error(`not XML: ${where}`);
  let doc: Record<string, any>;
  try {
    doc = await parseStringPromise(res.body, { strict: true });
  } catch (e) {
    throw new Error(`malformed XML (${(e as Error).message.split('\n')[0]}): ${where}`);
  }
  if (res.status >= 500) throw new Error(`5xx: ${where}`);
  if (res.status >= 400) {
    // EC2's error document, or the STS/IAM one for the identity actions served on the same endpoint.
    const err = doc.Response?.Errors?.[0]?.Error?.[0] ?? doc.ErrorResponse?.Error?.[0];
    const errRid = doc.Response?.RequestID?.[0] ?? doc.ErrorResponse?.RequestId?.[0];
    if (!err?.Code?.[0] || errRid !== rid) throw new Error(`bad error document: ${where}`);
    const missing = err.Code[0] === 'MissingParameter' && /parameter ([A-Za-z0-9.]{1,64})\b/.exec(String(err.Message?.[0] ?? ''));
    if (missing) learned.set(g.action, (learned.get(g.action) ?? new Set()).add(missing[1]!));
    return { gen: g, status: res.status, code: err.Code[0] };
  }
  const root = Object.keys(doc)[0]!;
  const okRid = doc[root]?.requestId?.[0] ?? doc[root]?.ResponseMetadata?.[0]?.RequestId?.[0];
  if (!root.endsWith('Response') || okRid !== rid) throw new Error(`bad response document: ${where}`);
  for (const id of res.body.match(ID_RE) ?? []) seenIds.add(id);
  return { gen: g, status: res.status };
}

const TABLES = [
  'key_pairs',
  'security_groups',
  'security_group_rules',
  'volumes',
  'snapshots',
  'addresses',
  'images',
  'instances',
  'reservations',
  'tags',
  'image_launch_permissions',
  'snapshot_volume_permissions',
  'instance_block_devices',
  'instance_security_groups',
];

/** Row counts of every resource table: what a failed request must leave unchanged. */
async function rowCounts(): Promise<Record<string, number>> {
  const row = (await cloud.dataSource.query(`SELECT ${TABLES.map((t) => `(SELECT count(*) FROM ${t})::int AS ${t}`).join(', ')}`))[0] as Record<string, number>;
  return row;
}

// ------------------------------------------------------------------ the test

describe('EC2 endpoint fuzzing', () => {
  it('never answers 5xx or non-XML, never blocks the loop, and failed requests leave no rows', async () => {
    expect(actions.length).toBeGreaterThan(20);
    const r = prng(SEED);
    // the fuzzer's default security group exists before the serial phase counts rows
    await sigv4(cloud.endpoint, fuzzer, { Action: 'DescribeSecurityGroups', Version: '2016-11-15' });

    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const probe: number[] = [];
    let done = false;
    const prober$ = (async () => {
      while (!done) {
        const t = performance.now();
        const res = await sigv4(cloud.endpoint, prober, { Action: 'DescribeRegions', Version: '2016-11-15' });
        probe.push(performance.now() - t);
        if (res.status !== 200) throw new Error(`probe failed: ${res.status} ${res.body}`);
        await new Promise((res2) => setTimeout(res2, 5));
      }
    })();

    const outcomes: Outcome[] = [];
    const failures: string[] = [];
    const gens = Array.from({ length: CONCURRENT_REQUESTS }, () => generate(r));
    let next = 0;
    const workers = Array.from({ length: CONCURRENCY }, async (_, w) => {
      const wr = prng(SEED + 1 + w);
      while (next < gens.length && failures.length < 10) {
        const g = gens[next++]!;
        try {
          outcomes.push(await check(g, await sendGen(g, wr)));
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    });
    await Promise.all(workers);

    // serial phase: a request that fails must not change any row count
    for (let i = 0; i < SERIAL_REQUESTS && failures.length < 10; i++) {
      const g = generate(r);
      const before = await rowCounts();
      try {
        const o = await check(g, await sendGen(g, r));
        outcomes.push(o);
        if (o.status >= 400) {
          const after = await rowCounts();
          if (JSON.stringify(after) !== JSON.stringify(before)) {
            failures.push(`failed request changed rows: ${o.code} ${JSON.stringify(g.params).slice(0, 300)} ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
          }
        }
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    done = true;
    await prober$;
    loop.disable();

    expect(failures).toEqual([]);
    expect(outcomes.length).toBe(CONCURRENT_REQUESTS + SERIAL_REQUESTS);
    // the run reached handlers, not only the edge
    const ok = outcomes.filter((o) => o.status === 200).length;
    const codes = new Set(outcomes.map((o) => o.code).filter(Boolean));
    expect(ok).toBeGreaterThan(50); // about 100 with the default seed: most generated requests are malformed on purpose
    expect(codes.size).toBeGreaterThan(12);

    const sorted = [...probe].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)]!;
    const p99 = sorted[Math.floor(sorted.length * 0.99)]!;
    const maxLoopMs = loop.max / 1e6;
    // Bounds for a shared, loaded 2-core machine (the client runs in this process too; a CI run
    // saw a 0.94 s stall at load average 14 with nothing wrong): they catch gross blocking
    // (seconds: a quadratic parse, synchronous crypto in a loop); the key-material spec measures
    // RSA generation precisely and the hostile-filters test a tenant's effect on another.
    expect(p50).toBeLessThan(250);
    expect(p99).toBeLessThan(3000);
    expect(maxLoopMs).toBeLessThan(3000);
    const byCode: Record<string, number> = {};
    for (const o of outcomes) byCode[o.code ?? String(o.status)] = (byCode[o.code ?? String(o.status)] ?? 0) + 1;
    if (process.env.FUZZ_DEBUG) process.stdout.write(`${JSON.stringify(byCode)}\n`);
    process.stdout.write(
      `fuzz seed=${SEED} requests=${outcomes.length} ok=${ok} codes=${codes.size} probe p50=${p50.toFixed(1)}ms p99=${p99.toFixed(1)}ms n=${probe.length} loop max=${maxLoopMs.toFixed(1)}ms\n`,
    );
  }, 180_000); // 2,600 requests: over a minute when the machine is loaded
});
