/**
 * The request rate limit per access key, through the EC2 API of a real CLC configured with a
 * small bucket (KOALA_API_BURST=5) that refills slowly (KOALA_API_RATE=1 per second).
 */
import { DescribeKeyPairsCommand, DescribeRegionsCommand, EC2ServiceException } from '@aws-sdk/client-ec2';
import { AccountsService } from '../../apps/cloud-controller/src/accounts/accounts.service.js';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { sleep } from '../support/wait.js';

let cloud: TestCloud;

beforeAll(async () => {
  cloud = await startCloud({ env: { KOALA_API_RATE: '1', KOALA_API_BURST: '5' } });
}, 30_000);
afterAll(async () => {
  await cloud?.close();
});

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    const x = e as EC2ServiceException;
    return `${x.name} ${x.$metadata?.httpStatusCode}`;
  }
}

it('a key may burst, then gets RequestLimitExceeded (503) until tokens come back; other keys and the admin are unaffected', async () => {
  const alice = cloud.ec2(await cloud.createAccount('alice'));
  const bobCreds = await cloud.createAccount('bob');
  const bob = cloud.ec2(bobCreds);
  const burst = [];
  for (let i = 0; i < 7; i++) burst.push(await outcome(alice.send(new DescribeKeyPairsCommand({}))));
  // 5 from the bucket; at 1 token/s a sixth may just have refilled on a slow machine, never two
  expect(burst.slice(0, 5)).toEqual(Array(5).fill('ok'));
  expect(burst.slice(5).filter((o) => o === 'RequestLimitExceeded 503').length).toBeGreaterThanOrEqual(1);
  expect(burst.every((o) => o === 'ok' || o === 'RequestLimitExceeded 503')).toBe(true);

  // another account's key has its own bucket; the admin is exempt
  expect(await outcome(bob.send(new DescribeRegionsCommand({})))).toBe('ok');
  for (let i = 0; i < 10; i++) expect(await outcome(cloud.ec2().send(new DescribeRegionsCommand({})))).toBe('ok');

  // the EC2 error document, as SDKs parse it
  const raw = await alice.send(new DescribeKeyPairsCommand({})).catch((e: EC2ServiceException) => e);
  expect(raw).toBeInstanceOf(EC2ServiceException);
  expect([(raw as EC2ServiceException).name, (raw as EC2ServiceException).message, (raw as EC2ServiceException).$metadata.requestId]).toEqual([
    'RequestLimitExceeded',
    'Request limit exceeded.',
    expect.stringMatching(/^[0-9a-f-]{36}$/),
  ]);

  // tokens come back at the rate
  await sleep(1100);
  expect(await outcome(alice.send(new DescribeKeyPairsCommand({})))).toBe('ok');
}, 30_000);

it('a second key of the same account has its own bucket (the limit is per access key)', async () => {
  const a1 = await cloud.createAccount('carol');
  const c1 = cloud.ec2(a1);
  const seen = [];
  for (let i = 0; i < 8; i++) seen.push(await outcome(c1.send(new DescribeRegionsCommand({}))));
  expect(seen).toContain('RequestLimitExceeded 503');
  const k2 = await cloud.app.get(AccountsService).createAccessKey('carol');
  const c2 = cloud.ec2({ accessKeyId: k2.accessKeyId, secretAccessKey: k2.secretAccessKey, accountId: a1.accountId });
  expect(await outcome(c2.send(new DescribeRegionsCommand({})))).toBe('ok');
});
