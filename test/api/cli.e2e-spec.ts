// Real command-line clients against the endpoint: aws-cli v2 (/usr/bin/aws), aws-cli v1 (the
// Python environment's `aws`), boto3 (with a paginator), and the admin.env written by bootstrap.
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { bootstrapAdmin } from '../../apps/cloud-controller/src/admin/admin-commands.js';
import { startCloud, startZone, uniqueZone, type TestCloud, type TestCredentials, type TestZone } from '../support/cloud.js';
import { awsCliEnv } from '../support/cli-env.js';

const run = promisify(execFile);
const AWS_V2 = '/usr/bin/aws';
const AWS_V1 = '/root/.pyenv/shims/aws';
const PYTHON = 'python3';

let cloud: TestCloud;
let zone: TestZone;
let carol: TestCredentials;

beforeAll(async () => {
  zone = await startZone(uniqueZone('cli'));
  cloud = await startCloud();
  carol = await cloud.createAccount('carol');
}, 30_000);
afterAll(async () => {
  await cloud?.close();
  await zone?.close();
});

const cleanEnv = (c: TestCredentials) => awsCliEnv(c);

async function aws(bin: string, args: string[], c: TestCredentials = carol): Promise<any> {
  const { stdout } = await run(bin, ['--endpoint-url', cloud.endpoint, '--output', 'json', 'ec2', ...args], { env: cleanEnv(c), timeout: 60_000 });
  return JSON.parse(stdout);
}

describe.each([
  ['aws-cli v2', AWS_V2],
  ['aws-cli v1', AWS_V1],
])('%s', (_name, bin) => {
  it('describe-regions', async () => {
    const r = await aws(bin, ['describe-regions']);
    expect(r.Regions).toEqual([{ RegionName: 'koala-1', Endpoint: new URL(cloud.endpoint).host, OptInStatus: 'opt-in-not-required' }]);
  }, 60_000);
  it('describe-availability-zones', async () => {
    const r = await aws(bin, ['describe-availability-zones', '--zone-names', zone.zone]);
    expect(r.AvailabilityZones).toHaveLength(1);
    expect(r.AvailabilityZones[0]).toMatchObject({ ZoneName: zone.zone, State: 'available', RegionName: 'koala-1' });
  }, 60_000);
  it('describe-instance-types (paginated by the CLI)', async () => {
    const r = await aws(bin, ['describe-instance-types', '--page-size', '5']);
    expect(r.InstanceTypes.map((t: { InstanceType: string }) => t.InstanceType).sort()).toEqual(['c1.medium', 'm1.large', 'm1.medium', 'm1.small', 'm1.xlarge', 't1.micro']);
    const f = await aws(bin, ['describe-instance-types', '--filters', 'Name=vcpu-info.default-vcpus,Values=2', 'Name=memory-info.size-in-mib,Values=1024']);
    expect(f.InstanceTypes.map((t: { InstanceType: string }) => t.InstanceType)).toEqual(['m1.large']);
  }, 60_000);
  it('reports an error code and a non-zero exit', async () => {
    const e = await aws(bin, ['describe-availability-zones', '--zone-names', 'no-such-zone']).catch((err) => err);
    expect([254, 255]).toContain(e.code); // v2: 254, v1: 255
    expect(String(e.stderr)).toContain('InvalidParameterValue');
  }, 60_000);
});

describe('boto3', () => {
  it('describes regions and zones and pages through instance types with a paginator', async () => {
    const script = `
import json, sys, boto3
from botocore.config import Config
ec2 = boto3.client('ec2', endpoint_url=sys.argv[1], region_name='koala-1', config=Config(retries={'max_attempts': 1}))
out = {}
out['regions'] = [r['RegionName'] for r in ec2.describe_regions()['Regions']]
out['zones'] = [z['ZoneName'] for z in ec2.describe_availability_zones(ZoneNames=[sys.argv[2]])['AvailabilityZones']]
pages = [[t['InstanceType'] for t in p['InstanceTypes']] for p in ec2.get_paginator('describe_instance_types').paginate(PaginationConfig={'PageSize': 5})]
out['pages'] = pages
try:
    ec2.describe_instance_types(InstanceTypes=['p9.huge'])
except ec2.exceptions.ClientError as e:
    out['error'] = [e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode']]
print(json.dumps(out))
`;
    const { stdout } = await run(PYTHON, ['-c', script, cloud.endpoint, zone.zone], { env: cleanEnv(carol), timeout: 60_000 });
    const out = JSON.parse(stdout);
    expect(out.regions).toEqual(['koala-1']);
    expect(out.zones).toEqual([zone.zone]);
    expect(out.pages.map((p: string[]) => p.length)).toEqual([5, 1]);
    expect(new Set(out.pages.flat()).size).toBe(6);
    expect(out.error).toEqual(['InvalidInstanceType', 400]);
  }, 60_000);
});

describe('admin bootstrap', () => {
  it('writes a 0600 admin.env that works when sourced, and keeps the key when re-run', async () => {
    const envFile = `${cloud.home}/admin.env`;
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    expect(statSync(`${cloud.home}/master.key`).mode & 0o777).toBe(0o600);
    const before = readFileSync(envFile, 'utf8');
    expect(before).toContain(`export AWS_ACCESS_KEY_ID='${cloud.admin.accessKeyId}'`);
    expect(before).toContain(`export EC2_URL='${cloud.endpoint}'`);
    expect(before).toContain(`export AWS_DEFAULT_REGION='koala-1'`);

    const again = await bootstrapAdmin(cloud.config, cloud.dataSource);
    expect(again.keyReused).toBe(true);
    expect(again.accessKeyId).toBe(cloud.admin.accessKeyId);
    expect(readFileSync(envFile, 'utf8')).toBe(before);

    const env = { PATH: process.env.PATH, HOME: process.env.HOME, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
    // aws-cli v1 reads AWS_ENDPOINT_URL_EC2; v2.9 predates it and is given $EC2_URL
    const v1 = await run('bash', ['-c', `. '${envFile}' && ${AWS_V1} ec2 describe-regions --output json`], { env, timeout: 60_000 });
    expect(JSON.parse(v1.stdout).Regions[0].RegionName).toBe('koala-1');
    const v2 = await run('bash', ['-c', `. '${envFile}' && ${AWS_V2} --endpoint-url "$EC2_URL" ec2 describe-regions --output json`], { env, timeout: 60_000 });
    expect(JSON.parse(v2.stdout).Regions[0].RegionName).toBe('koala-1');
  }, 60_000);
});
