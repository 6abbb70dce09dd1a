// Authentication through the real endpoint: SigV4 (SDK v3, aws4, presigned) and SigV2, and the
// failures a user sees (code + HTTP status). aws-cli v1/v2 and boto3 are driven in cli.e2e-spec.ts.
import { DescribeRegionsCommand, EC2ServiceException } from '@aws-sdk/client-ec2';
import { AccountsService } from '../../apps/cloud-controller/src/accounts/accounts.service.js';
import { startCloud, type TestCloud, type TestCredentials } from '../support/cloud.js';
import { errorOf, presignedPath, send, sigv2, sigv4 } from './signed-http.js';

let cloud: TestCloud;
let alice: TestCredentials;
const REGIONS = { Action: 'DescribeRegions', Version: '2016-11-15' };

beforeAll(async () => {
  cloud = await startCloud();
  alice = await cloud.createAccount('alice');
}, 30_000);
afterAll(async () => cloud?.close());

async function sdkError(p: Promise<unknown>): Promise<{ name: string; status?: number }> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EC2ServiceException);
    return { name: (e as EC2ServiceException).name, status: (e as EC2ServiceException).$metadata.httpStatusCode };
  }
  throw new Error('expected an error');
}

describe('authentication', () => {
  it('accepts SDK v3 signatures (admin and a second account)', async () => {
    const a = await cloud.ec2().send(new DescribeRegionsCommand({}));
    expect(a.Regions?.[0]?.RegionName).toBe('koala-1');
    const b = await cloud.ec2(alice).send(new DescribeRegionsCommand({}));
    expect(b.$metadata.httpStatusCode).toBe(200);
    expect(b.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('accepts any region name in the credential scope (euca2ools sends undefined-<pid>)', async () => {
    const r = await sigv4(cloud.endpoint, alice, REGIONS, { region: 'undefined-4242' });
    expect(r.status).toBe(200);
  });

  it('refuses a tampered body: SignatureDoesNotMatch 403', async () => {
    const r = await sigv4(cloud.endpoint, alice, REGIONS, { tamperBody: 'Action=DescribeRegions&Version=2016-11-15&RegionName.1=x' });
    expect(r.status).toBe(403);
    expect((await errorOf(r)).code).toBe('SignatureDoesNotMatch');
  });

  it('refuses a wrong secret: SignatureDoesNotMatch 403', async () => {
    const wrong = { ...alice, secretAccessKey: alice.secretAccessKey.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) };
    const e = await sdkError(cloud.ec2(wrong).send(new DescribeRegionsCommand({})));
    expect(e).toEqual({ name: 'SignatureDoesNotMatch', status: 403 });
  });

  it('refuses an unknown access key: AuthFailure 401', async () => {
    const e = await sdkError(cloud.ec2({ ...alice, accessKeyId: 'AKIANOSUCHKEY0000000' }).send(new DescribeRegionsCommand({})));
    expect(e).toEqual({ name: 'AuthFailure', status: 401 });
  });

  it('refuses a deactivated key and accepts it again once reactivated; refuses a deleted key', async () => {
    const accounts = cloud.app.get(AccountsService);
    const bob = await cloud.createAccount('bob');
    const client = cloud.ec2(bob);
    await accounts.setAccessKeyStatus('bob', bob.accessKeyId, 'Inactive');
    expect(await sdkError(client.send(new DescribeRegionsCommand({})))).toEqual({ name: 'AuthFailure', status: 401 });
    await accounts.setAccessKeyStatus('bob', bob.accessKeyId, 'Active');
    expect((await client.send(new DescribeRegionsCommand({}))).$metadata.httpStatusCode).toBe(200);
    await accounts.deleteAccessKey('bob', bob.accessKeyId);
    expect(await sdkError(client.send(new DescribeRegionsCommand({})))).toEqual({ name: 'AuthFailure', status: 401 });
  });

  it('forgets a cached key at once when another process deactivates it (database NOTIFY), and when its account changes', async () => {
    const accounts = cloud.app.get(AccountsService);
    const carol = await cloud.createAccount('carol');
    const client = cloud.ec2(carol);
    expect((await client.send(new DescribeRegionsCommand({}))).$metadata.httpStatusCode).toBe(200);
    expect(accounts.keyCache.enabled).toBe(true);
    expect(accounts.keyCache.get(carol.accessKeyId, Date.now())).toBeDefined(); // now served from the cache
    // as `koala access-key deactivate` does: another connection, not this process's AccountsService
    await cloud.dataSource.query(`UPDATE access_keys SET status = 'Inactive' WHERE id = $1`, [carol.accessKeyId]);
    const refused = async () => {
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
        const r = await sigv4(cloud.endpoint, carol, REGIONS);
        if (r.status !== 200) return r.status;
      }
      return 200;
    };
    expect(await refused()).toBe(401); // the cache's ttl is 30 s: only the announcement can make this pass
    await cloud.dataSource.query(`UPDATE access_keys SET status = 'Active' WHERE id = $1`, [carol.accessKeyId]);
    expect((await sigv4(cloud.endpoint, carol, REGIONS)).status).toBe(200);
    await cloud.dataSource.query(`UPDATE accounts SET is_admin = false WHERE id = $1`, [carol.accountId]);
    // The announcement arrives asynchronously (a loaded machine: up to seconds), still well within the 30 s ttl.
    for (const deadline = Date.now() + 10_000; accounts.keyCache.get(carol.accessKeyId, Date.now()) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
    expect(accounts.keyCache.get(carol.accessKeyId, Date.now())).toBeUndefined();
  });

  it('refuses a request signed 16 minutes ago: RequestExpired 400', async () => {
    const r = await sigv4(cloud.endpoint, alice, REGIONS, { date: new Date(Date.now() - 16 * 60_000) });
    expect(r.status).toBe(400);
    expect((await errorOf(r)).code).toBe('RequestExpired');
    const ok = await sigv4(cloud.endpoint, alice, REGIONS, { date: new Date(Date.now() - 14 * 60_000) });
    expect(ok.status).toBe(200);
  });

  it('accepts a presigned URL until it expires, then RequestExpired 400', async () => {
    const path = presignedPath(cloud.endpoint, alice, REGIONS, 1);
    const first = await send(cloud.endpoint, { method: 'GET', path });
    expect(first.status).toBe(200);
    await new Promise((r) => setTimeout(r, 2100));
    const replay = await send(cloud.endpoint, { method: 'GET', path });
    expect(replay.status).toBe(400);
    expect((await errorOf(replay)).code).toBe('RequestExpired');
  });

  it.each(['HmacSHA256', 'HmacSHA1'] as const)('accepts hand-built SigV2 with %s (and refuses it with a wrong secret)', async (method) => {
    const r = await sigv2(cloud.endpoint, alice, REGIONS, method);
    expect(r.status).toBe(200);
    expect(r.body).toContain('<regionName>koala-1</regionName>');
    const euca = await sigv2(cloud.endpoint, alice, REGIONS, method, '/services/Eucalyptus');
    expect(euca.status).toBe(200);
    const bad = await sigv2(cloud.endpoint, { ...alice, secretAccessKey: 'x'.repeat(40) }, REGIONS, method);
    expect(bad.status).toBe(403);
    expect((await errorOf(bad)).code).toBe('SignatureDoesNotMatch');
  });

  it('never stores secrets in clear', async () => {
    const rows: { secret_encrypted: string }[] = await cloud.dataSource.query('SELECT secret_encrypted FROM access_keys');
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.secret_encrypted).toMatch(/^v1:/);
      expect(r.secret_encrypted).not.toContain(alice.secretAccessKey);
    }
  });
});
