// STS GetCallerIdentity and IAM GetUser / ListAccountAliases on the EC2 endpoint, as boto3 and
// ansible's amazon.aws modules ask them (their own Query dialect, namespaces and error shape).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { startCloud, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { awsCliEnv } from '../support/cli-env.js';

const run = promisify(execFile);
const PYTHON = '/root/.pyenv/shims/python3';

let cloud: TestCloud;
let erin: TestCredentials;

beforeAll(async () => {
  cloud = await startCloud();
  erin = await cloud.createAccount('erin');
}, 60_000);
afterAll(async () => {
  await cloud?.close();
});

const SCRIPT = `
import json, sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
url = sys.argv[1]
cfg = Config(retries={'max_attempts': 1})
sts = boto3.client('sts', endpoint_url=url, config=cfg)
iam = boto3.client('iam', endpoint_url=url, config=cfg)
out = {'caller': sts.get_caller_identity(), 'user': iam.get_user()['User'], 'named': iam.get_user(UserName='admin')['User']['UserName'],
       'aliases': iam.list_account_aliases()['AccountAliases']}
for k in ('caller',):
    out[k].pop('ResponseMetadata', None)
out['user']['CreateDate'] = out['user']['CreateDate'].isoformat()
try:
    iam.get_user(UserName='nobody')
except ClientError as e:
    out['nouser'] = [e.response['Error']['Code'], e.response['Error'].get('Type'), e.response['ResponseMetadata']['HTTPStatusCode']]
bad = boto3.client('sts', endpoint_url=url, config=cfg, aws_access_key_id='AKIANOSUCHKEY0000000', aws_secret_access_key='x' * 40)
try:
    bad.get_caller_identity()
except ClientError as e:
    out['badkey'] = [e.response['Error']['Code'], e.response['Error'].get('Type'), e.response['ResponseMetadata']['HTTPStatusCode']]
print(json.dumps(out))
`;

describe('identity (STS/IAM) with boto3', () => {
  it('answers GetCallerIdentity, GetUser and ListAccountAliases for the caller, and STS-shaped errors', async () => {
    const { stdout } = await run(PYTHON, ['-c', SCRIPT, cloud.endpoint], { env: awsCliEnv(erin), timeout: 60_000 });
    const r = JSON.parse(stdout);
    expect(r.caller).toEqual({ Account: erin.accountId, Arn: `arn:aws:iam::${erin.accountId}:user/admin`, UserId: expect.stringMatching(/^AIDA[A-Z2-7]{16}$/) });
    expect(r.user).toMatchObject({ Path: '/', UserName: 'admin', UserId: r.caller.UserId, Arn: r.caller.Arn });
    expect(Math.abs(Date.parse(r.user.CreateDate) - Date.now())).toBeLessThan(10 * 60_000);
    expect(r.named).toBe('admin');
    expect(r.aliases).toEqual(['erin']);
    expect(r.nouser).toEqual(['NoSuchEntity', 'Sender', 404]);
    expect(r.badkey).toEqual(['InvalidClientTokenId', 'Sender', 403]);
    // another account sees its own identity
    const admin = JSON.parse((await run(PYTHON, ['-c', SCRIPT, cloud.endpoint], { env: awsCliEnv(cloud.admin), timeout: 60_000 })).stdout);
    expect(admin.caller.Account).toBe(cloud.admin.accountId);
    expect(admin.caller.UserId).not.toBe(r.caller.UserId);
  }, 60_000);

  it('answers raw STS requests in the STS namespace and EC2 actions still in EC2 form', async () => {
    const { stdout } = await run(
      PYTHON,
      [
        '-c',
        `
import sys, boto3, botocore.awsrequest, botocore.auth, botocore.credentials, urllib.request
creds = boto3.Session().get_credentials()
def send(body, service):
    req = botocore.awsrequest.AWSRequest(method='POST', url=sys.argv[1], data=body, headers={'Content-Type': 'application/x-www-form-urlencoded'})
    botocore.auth.SigV4Auth(creds, service, 'koala-1').add_auth(req)
    r = urllib.request.Request(sys.argv[1], data=body.encode(), headers=dict(req.headers.items()), method='POST')
    try:
        return urllib.request.urlopen(r).read().decode()
    except urllib.error.HTTPError as e:
        return e.read().decode()
print(send('Action=GetCallerIdentity&Version=2011-06-15', 'sts'))
print(send('Action=GetUser&Version=2010-05-08&UserName=%00x', 'iam'))
print(send('Action=DescribeRegions&Version=2016-11-15', 'ec2'))
`,
        cloud.endpoint,
      ],
      { env: awsCliEnv(erin), timeout: 60_000 },
    );
    const [sts, iamErr, ec2] = stdout.trim().split('\n');
    expect(sts).toContain('<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>');
    expect(sts).toContain(`<Account>${erin.accountId}</Account>`);
    expect(iamErr).toMatch(/^<\?xml[^>]*><ErrorResponse xmlns="https:\/\/iam.amazonaws.com\/doc\/2010-05-08\/"><Error><Type>Sender<\/Type><Code>InvalidParameterValue<\/Code>/); // NUL stops at the endpoint's edge check
    expect(iamErr).not.toContain('\u0000');
    expect(ec2).toContain('<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">');
  }, 60_000);
});

const ANSIBLE = '/usr/bin/ansible';
(existsSync(ANSIBLE) ? describe : describe.skip)('ansible amazon.aws', () => {
  it('aws_caller_info reads the account, ARN and user id', async () => {
    const env = { ...awsCliEnv(erin), ANSIBLE_LOCALHOST_WARNING: 'false', ANSIBLE_INVENTORY_UNPARSED_WARNING: 'false', ANSIBLE_HOME: cloud.home, ANSIBLE_LOCAL_TEMP: cloud.home };
    const { stdout } = await run(ANSIBLE, ['localhost', '-m', 'amazon.aws.aws_caller_info', '-a', `endpoint_url=${cloud.endpoint}`, '-e', `ansible_python_interpreter=${PYTHON}`, '-o'], {
      env,
      timeout: 120_000,
    });
    expect(stdout).toMatch(/localhost \| SUCCESS/);
    expect(stdout).toContain(`"account": "${erin.accountId}"`);
    expect(stdout).toContain(`"arn": "arn:aws:iam::${erin.accountId}:user/admin"`);
    expect(stdout).toContain('"account_alias": "erin"');
  }, 120_000);
});
