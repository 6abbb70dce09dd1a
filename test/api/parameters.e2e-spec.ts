// Every action's declared parameters (the `params` of its @Ec2Action) against what its handler
// really reads and what clients send: undeclared names are refused UnknownParameter before the
// handler runs, bare list names mean `.1`, and the declarations cover every name a handler reads
// (recorded by Params while probing each action with requests built from its declaration).
import { shapeOf } from '@koala/ec2-query';
import { ActionRegistry } from '../../apps/cloud-controller/src/ec2/action-registry.js';
import { paramReads } from '../../apps/cloud-controller/src/ec2/ec2-endpoint.service.js';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { sigv4, type RawResponse } from './signed-http.js';

let cloud: TestCloud;
let registry: ActionRegistry;

beforeAll(async () => {
  cloud = await startCloud();
  registry = cloud.app.get(ActionRegistry);
}, 60_000);
afterAll(async () => {
  paramReads.recorder = undefined;
  await cloud?.close();
});

const call = (params: Record<string, string>) => sigv4(cloud.endpoint, cloud.admin, params);
const codeOf = (r: RawResponse) => /<Code>([^<]*)<\/Code>/.exec(r.body)?.[1];
const declared = (action: string) => registry.entry(action)!.shapes;

const ID_PREFIX: Record<string, string> = {
  Instance: 'i',
  Volume: 'vol',
  Snapshot: 'snap',
  SourceSnapshot: 'snap',
  Image: 'ami',
  Group: 'sg',
  SecurityGroup: 'sg',
  Allocation: 'eipalloc',
  Association: 'eipassoc',
  KeyPair: 'key',
  Subnet: 'subnet',
  Vpc: 'vpc',
  NetworkInterface: 'eni',
  Kernel: 'aki',
  Ramdisk: 'ari',
  SecurityGroupRule: 'sgr',
  Resource: 'i',
};
const VALUES: Record<string, string> = {
  DryRun: 'true',
  MaxResults: '10',
  MaxItems: '10',
  Size: '1',
  Iops: '100',
  MinCount: '1',
  MaxCount: '1',
  FromPort: '22',
  ToPort: '22',
  VolumeSize: '1',
  HttpPutResponseHopLimit: '2',
  KeyType: 'rsa',
  KeyFormat: 'pem',
  ImageType: 'machine',
  Architecture: 'x86_64',
  VirtualizationType: 'hvm',
  Domain: 'vpc',
  InstanceInitiatedShutdownBehavior: 'stop',
  HttpTokens: 'optional',
  HttpEndpoint: 'enabled',
  HttpProtocolIpv6: 'disabled',
  InstanceMetadataTags: 'disabled',
  OperationType: 'add',
  UserGroup: 'all',
  Group: 'all',
  IpProtocol: 'tcp',
  CidrIp: '198.51.100.0/24',
  CidrIpv6: '2001:db8::/32',
  VolumeType: 'standard',
  Device: '/dev/sdf',
  DeviceName: '/dev/sdf',
  UserData: 'aGVsbG8=',
  PublicKeyMaterial: 'c3NoLWVkMjU1MTkgQUFBQQ==',
  ImageLocation: 'http://127.0.0.1:9/x.img',
  ResourceType: 'instance',
  Owner: 'self',
  OwnerId: '123456789012',
  UserId: '123456789012',
  ExecutableBy: 'self',
  RestorableBy: 'self',
  Encrypted: 'false',
  SourceRegion: 'koala-1',
  AvailabilityZone: 'koala-1a',
  RegionName: 'koala-1',
  ZoneName: 'koala-1a',
  ZoneId: 'koala-1a',
  PrivateIpAddress: '10.0.0.5',
  PublicIp: '203.0.113.9',
  Force: 'false',
  Latest: 'false',
  NoDevice: '',
  DeleteOnTermination: 'true',
  AllowReassociation: 'false',
  InstanceType: 'm1.small',
  Name: 'probe',
  Key: 'k',
  AttributeName: 'supported-platforms',
  CidrBlock: '10.0.0.0/16',
};
/** A plausible value for the last segments of a shape (a bad value only cuts a probe short). */
function valueFor(action: string, shape: string): string {
  const segs = shape.split('.').filter((s) => s !== 'N');
  const last = segs[segs.length - 1]!;
  if (shape === 'Filter.N.Name') return 'tag:k';
  if (last === 'Attribute') {
    return (
      {
        DescribeImageAttribute: 'description',
        DescribeInstanceAttribute: 'instanceType',
        DescribeSnapshotAttribute: 'createVolumePermission',
        ModifyImageAttribute: 'launchPermission',
        ModifySnapshotAttribute: 'createVolumePermission',
        ResetImageAttribute: 'launchPermission',
        ResetSnapshotAttribute: 'createVolumePermission',
        ModifyInstanceAttribute: 'instanceType',
      }[action] ?? 'description'
    );
  }
  if (last === 'Value' && segs.length > 1) return VALUES[segs[segs.length - 2]!] ?? 'v';
  if (last in VALUES) return VALUES[last]!;
  const id = /^(.*)Id$/.exec(last);
  if (id && ID_PREFIX[id[1]!]) return `${ID_PREFIX[id[1]!]}-0123456789abcdef0`;
  if (/^(Include|Allow|Disable|Associate|All|Availability)/.test(last)) return 'true';
  return 'probe';
}

/** A request holding `shapes` (every `N` = 1) with plausible values. */
function requestOf(action: string, shapes: readonly string[]): Record<string, string> {
  const out: Record<string, string> = { Action: action, Version: '2016-11-15' };
  for (const s of shapes) out[s.replace(/(^|\.)N(?=\.|$)/g, '$11')] = valueFor(action, s);
  return out;
}

/** Sends `shapes`; a MissingParameter for a declared name adds that name and sends again (a probe gets past required names). */
async function probe(action: string, shapes: readonly string[]): Promise<RawResponse> {
  let with_ = [...shapes];
  for (;;) {
    const r = await call(requestOf(action, with_));
    const missing = codeOf(r) === 'MissingParameter' ? /parameter ([A-Za-z0-9.]+)/.exec(r.body)?.[1] : undefined;
    const shape = missing && shapeOf(missing);
    if (!shape || with_.includes(shape) || !declared(action).declares(shape)) return r;
    with_ = [...with_, shape];
  }
}

describe('declared parameters', () => {
  it('cover every name each handler reads (probing every action with its declared names, all, each alone and all but each)', async () => {
    const reads = new Map<string, Map<string, boolean>>();
    paramReads.recorder = (action, shape, prefix) => {
      const m = reads.get(action) ?? new Map<string, boolean>();
      m.set(shape, prefix || (m.get(shape) ?? false));
      reads.set(action, m);
    };
    const statuses: string[] = [];
    try {
      for (const action of registry.actions()) {
        const shapes = declared(action).shapes;
        const dry = shapes.includes('DryRun') ? ['DryRun'] : [];
        const probes = [shapes, ...shapes.map((s) => [s, ...dry]), ...shapes.map((_, i) => shapes.filter((_, j) => j !== i))];
        for (let i = 0; i < probes.length; i += 8) {
          const rs = await Promise.all(probes.slice(i, i + 8).map((p) => probe(action, p)));
          for (const r of rs) {
            if (r.status >= 500 || codeOf(r) === 'UnknownParameter') statuses.push(`${action}: ${r.status} ${r.body.slice(0, 300)}`);
          }
        }
      }
    } finally {
      paramReads.recorder = undefined;
    }
    expect(statuses).toEqual([]);
    const uncovered: string[] = [];
    for (const action of registry.actions()) {
      const shapes = declared(action);
      for (const [shape, prefix] of reads.get(action) ?? []) {
        if (prefix ? !shapes.covers(shape) : !shapes.declares(shape)) uncovered.push(`${action}: ${shape}${prefix ? '.*' : ''}`);
      }
    }
    expect(uncovered).toEqual([]);
    // and the converse: every declared name is read by the handler, or declared ignored
    const unread: string[] = [];
    for (const action of registry.actions()) {
      const read = reads.get(action) ?? new Map<string, boolean>();
      const ignored = registry.entry(action)!.ignored;
      for (const s of declared(action).shapes) if (!read.has(s) && !ignored.includes(s)) unread.push(`${action}: ${s}`);
    }
    expect(unread).toEqual([]);
  }, 120_000);

  it('every action refuses Bogus=x with UnknownParameter, before anything happens', async () => {
    const wrong: string[] = [];
    for (const action of registry.actions()) {
      const r = await call({ Action: action, Version: '2016-11-15', Bogus: 'x' });
      const identity = ['GetCallerIdentity', 'GetUser', 'ListAccountAliases'].includes(action);
      if (r.status !== 400 || codeOf(r) !== 'UnknownParameter' || !r.body.includes('The parameter Bogus is not recognized')) wrong.push(`${action}: ${r.status} ${r.body.slice(0, 200)}`);
      if (identity && !r.body.includes('<ErrorResponse')) wrong.push(`${action}: not in the STS/IAM error shape`);
    }
    expect(wrong).toEqual([]);
    // a create with an unknown name creates nothing
    expect(codeOf(await call({ Action: 'CreateKeyPair', KeyName: 'bogus-key', Bogus: 'x' }))).toBe('UnknownParameter');
    expect(codeOf(await call({ Action: 'DescribeKeyPairs', 'KeyName.1': 'bogus-key' }))).toBe('InvalidKeyPair.NotFound');
    // a misspelt member is as unknown as a misspelt name
    expect(codeOf(await call({ Action: 'DescribeKeyPairs', 'KeyName.x': 'a' }))).toBe('UnknownParameter');
    expect(codeOf(await call({ Action: 'DescribeKeyPairs', 'Filter.1.Nme': 'key-name', 'Filter.1.Value.1': 'a' }))).toBe('UnknownParameter');
  }, 60_000);

  it('reads each unindexed list name as its first member', async () => {
    for (const k of ['probe-a', 'probe-b']) expect((await call({ Action: 'CreateKeyPair', KeyName: k })).status).toBe(200);
    const r = await call({ Action: 'DescribeKeyPairs', KeyName: 'probe-b' });
    expect(r.status).toBe(200);
    expect(r.body).toContain('<keyName>probe-b</keyName>');
    expect(r.body).not.toContain('probe-a');
    expect(codeOf(await call({ Action: 'DescribeKeyPairs', KeyName: 'no-such-key' }))).toBe('InvalidKeyPair.NotFound');
    expect(codeOf(await call({ Action: 'DescribeKeyPairs', KeyName: 'probe-a', 'KeyName.1': 'probe-b' }))).toBe('InvalidParameterCombination');
    // a filter's bare Value too
    const f = await call({ Action: 'DescribeKeyPairs', 'Filter.1.Name': 'key-name', 'Filter.1.Value': 'probe-a' });
    expect(f.body).toContain('<keyName>probe-a</keyName>');
    expect(f.body).not.toContain('probe-b');
    // every top-level list of every action is accepted bare (never UnknownParameter)
    const refused: string[] = [];
    for (const action of registry.actions()) {
      for (const s of declared(action).shapes) {
        const m = /^([A-Za-z]+)\.N$/.exec(s);
        if (!m || declared(action).declares(m[1]!)) continue;
        const r = await call({ Action: action, [m[1]!]: valueFor(action, s), ...(declared(action).declares('DryRun') ? { DryRun: 'true' } : {}) });
        if (codeOf(r) === 'UnknownParameter' || r.status >= 500) refused.push(`${action} ${m[1]}: ${codeOf(r)}`);
      }
    }
    expect(refused).toEqual([]);
  }, 60_000);
});

// keep `shapeOf` honest here too: the recorder speaks in its shapes
test('shapeOf', () => expect(shapeOf('IpPermissions.1.Groups.22.GroupId')).toBe('IpPermissions.N.Groups.N.GroupId'));
