// Real clients against key pairs and security groups: boto3 (paginator, create/delete cycle),
// aws-cli v2 (/usr/bin/aws) and aws-cli v1 (the Python environment's `aws`).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startCloud, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { awsCliEnv } from '../support/cli-env.js';
import { sshKeygenSha256, withTempDir, writeSecret } from './helpers.js';

const run = promisify(execFile);
const AWS_V2 = '/usr/bin/aws';
const AWS_V1 = '/root/.pyenv/shims/aws';

let cloud: TestCloud;
let dave: TestCredentials;

beforeAll(async () => {
  cloud = await startCloud();
  dave = await cloud.createAccount('dave');
}, 60_000);
afterAll(async () => {
  await cloud?.close();
});

const env = (c: TestCredentials) => awsCliEnv(c);

async function aws(bin: string, args: string[]): Promise<any> {
  const { stdout } = await run(bin, ['--endpoint-url', cloud.endpoint, '--output', 'json', 'ec2', ...args], { env: env(dave), timeout: 60_000 });
  return stdout.trim() ? JSON.parse(stdout) : {};
}

describe.each([
  ['aws-cli v2', AWS_V2, 'v2'],
  ['aws-cli v1', AWS_V1, 'v1'],
])('%s', (_name, bin, tag) => {
  it('create-key-pair (ed25519), describe-key-pairs, delete-key-pair', async () => {
    const k = await aws(bin, ['create-key-pair', '--key-name', `cli-${tag}`, '--key-type', 'ed25519']);
    expect(k.KeyName).toBe(`cli-${tag}`);
    expect(k.KeyMaterial).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    withTempDir((dir) => expect(k.KeyFingerprint.replace(/=$/, '')).toBe(sshKeygenSha256(writeSecret(dir, 'k', k.KeyMaterial))));
    const d = await aws(bin, ['describe-key-pairs', '--key-names', `cli-${tag}`]);
    expect(d.KeyPairs).toEqual([expect.objectContaining({ KeyName: `cli-${tag}`, KeyPairId: k.KeyPairId, KeyType: 'ed25519' })]);
    await aws(bin, ['delete-key-pair', '--key-name', `cli-${tag}`]);
    const e = await aws(bin, ['describe-key-pairs', '--key-names', `cli-${tag}`]).catch((err) => err);
    expect([254, 255]).toContain(e.code);
    expect(String(e.stderr)).toContain('InvalidKeyPair.NotFound');
  }, 60_000);

  it('create-security-group, authorize, describe-security-groups (paged by the CLI), delete', async () => {
    const g = await aws(bin, ['create-security-group', '--group-name', `cli-${tag}`, '--description', 'from the cli']);
    expect(g.GroupId).toMatch(/^sg-[0-9a-f]{17}$/);
    await aws(bin, ['authorize-security-group-ingress', '--group-id', g.GroupId, '--protocol', 'tcp', '--port', '22', '--cidr', '10.0.0.0/8']);
    const d = await aws(bin, ['describe-security-groups', '--group-ids', g.GroupId]);
    expect(d.SecurityGroups[0]).toMatchObject({ GroupName: `cli-${tag}`, Description: 'from the cli', OwnerId: dave.accountId });
    expect(d.SecurityGroups[0].IpPermissions).toEqual([expect.objectContaining({ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '10.0.0.0/8' }] })]);
    const paged = await aws(bin, ['describe-security-groups', '--page-size', '5']);
    expect(paged.SecurityGroups.map((s: { GroupName: string }) => s.GroupName)).toEqual(expect.arrayContaining(['default', `cli-${tag}`]));
    const dup = await aws(bin, ['authorize-security-group-ingress', '--group-id', g.GroupId, '--protocol', 'tcp', '--port', '22', '--cidr', '10.0.0.0/8']).catch((err) => err);
    expect(String(dup.stderr)).toContain('InvalidPermission.Duplicate');
    await aws(bin, ['delete-security-group', '--group-id', g.GroupId]);
  }, 60_000);
});

describe('boto3', () => {
  it('describe_key_pairs, waiters, describe_security_groups paginator, create/delete cycle', async () => {
    const script = `
import json, sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
ec2 = boto3.client('ec2', endpoint_url=sys.argv[1], region_name='koala-1', config=Config(retries={'max_attempts': 1}))
out = {}
k = ec2.create_key_pair(KeyName='boto-key', TagSpecifications=[{'ResourceType': 'key-pair', 'Tags': [{'Key': 'by', 'Value': 'boto3'}]}])
out['material'] = k['KeyMaterial'].splitlines()[0]
# boto3's own waiters (they poll Describe* until the resource shows)
ec2.get_waiter('key_pair_exists').wait(KeyNames=['boto-key'], WaiterConfig={'Delay': 1, 'MaxAttempts': 5})
sg = ec2.create_security_group(GroupName='boto-waited', Description='waited for')
ec2.get_waiter('security_group_exists').wait(GroupIds=[sg['GroupId']], WaiterConfig={'Delay': 1, 'MaxAttempts': 5})
ec2.delete_security_group(GroupId=sg['GroupId'])
out['waited'] = True
out['described'] = [(p['KeyName'], p['KeyPairId'] == k['KeyPairId'], p['Tags']) for p in ec2.describe_key_pairs(KeyNames=['boto-key'])['KeyPairs']]
for i in range(7):
    ec2.create_security_group(GroupName='boto-%d' % i, Description='boto3 group %d' % i)
pages = ec2.get_paginator('describe_security_groups').paginate(Filters=[{'Name': 'group-name', 'Values': ['boto-*']}], PaginationConfig={'PageSize': 5})
sizes, names = [], []
for page in pages:
    sizes.append(len(page['SecurityGroups']))
    names += [g['GroupName'] for g in page['SecurityGroups']]
out['sizes'] = sizes
out['names'] = sorted(names)
for i in range(7):
    ec2.delete_security_group(GroupName='boto-%d' % i)
ec2.delete_key_pair(KeyName='boto-key')
try:
    ec2.describe_security_groups(GroupNames=['boto-0'])
except ClientError as e:
    out['after'] = e.response['Error']['Code']
out['keys_left'] = ec2.describe_key_pairs()['KeyPairs']
print(json.dumps(out))
`;
    const { stdout } = await run('python3', ['-c', script, cloud.endpoint], { env: env(dave), timeout: 60_000 });
    const out = JSON.parse(stdout);
    expect(out.material).toBe('-----BEGIN RSA PRIVATE KEY-----');
    expect(out.waited).toBe(true);
    expect(out.described).toEqual([['boto-key', true, [{ Key: 'by', Value: 'boto3' }]]]);
    expect(out.sizes).toEqual([5, 2]);
    expect(out.names).toEqual(['boto-0', 'boto-1', 'boto-2', 'boto-3', 'boto-4', 'boto-5', 'boto-6']);
    expect(out.after).toBe('InvalidGroup.NotFound');
    expect(out.keys_left).toEqual([]);
  }, 60_000);
});
