// Elastic IP addresses (SDK v3) from a small pool: allocation under concurrency, limits,
// exhaustion, describe filters, release.
import { AllocateAddressCommand, DescribeAddressesCommand, ReleaseAddressCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { failure } from './helpers.js';

let cloud: TestCloud;
let a: EC2Client;
let b: EC2Client;

beforeAll(async () => {
  // 10.99.0.0/29: usable .1 - .6 (network and broadcast excluded); 4 per account
  cloud = await startCloud({ env: { KOALA_PUBLIC_IP_RANGE: '10.99.0.0/29', KOALA_ADDRESSES_PER_ACCOUNT: '4' } });
  a = cloud.ec2(await cloud.createAccount('addr-a'));
  b = cloud.ec2(await cloud.createAccount('addr-b'));
}, 60_000);
afterAll(async () => {
  await cloud?.close();
});

const ipsOf = async (c: EC2Client) => (await c.send(new DescribeAddressesCommand({}))).Addresses!.map((x) => x.PublicIp!);

it('parallel allocations never share an address; the per-account limit holds under concurrency', async () => {
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => a.send(new AllocateAddressCommand({ Domain: 'vpc' }))));
  const ok = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ PublicIp?: string; AllocationId?: string; Domain?: string }>).value);
  const failed = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as { name: string; $metadata: { httpStatusCode: number } });
  expect(ok).toHaveLength(4);
  expect(failed.map((f) => [f.name, f.$metadata.httpStatusCode])).toEqual([
    ['AddressLimitExceeded', 400],
    ['AddressLimitExceeded', 400],
  ]);
  expect(new Set(ok.map((r) => r.PublicIp)).size).toBe(4);
  for (const r of ok) {
    expect(r.AllocationId).toMatch(/^eipalloc-[0-9a-f]{17}$/);
    expect(r.Domain).toBe('vpc');
    expect(r.PublicIp).toMatch(/^10\.99\.0\.[1-6]$/);
  }
  expect((await ipsOf(a)).sort()).toEqual(['10.99.0.1', '10.99.0.2', '10.99.0.3', '10.99.0.4']);
});

it('exhausting the pool is a clear error; network and broadcast are never handed out', async () => {
  const two = await Promise.all([b.send(new AllocateAddressCommand({ Domain: 'standard' })), b.send(new AllocateAddressCommand({}))]);
  expect(two.map((r) => r.PublicIp).sort()).toEqual(['10.99.0.5', '10.99.0.6']);
  expect(two.map((r) => r.Domain).sort()).toEqual(['standard', 'standard']); // standard unless Domain=vpc
  expect(await failure(b.send(new AllocateAddressCommand({})))).toMatchObject({ name: 'InsufficientAddressCapacity', status: 500 });
  expect((await failure(b.send(new AllocateAddressCommand({ Domain: 'elsewhere' as never })))).name).toBe('InvalidParameterValue');
});

it('describes with PublicIp.N, AllocationId.N and filters; NotFound codes', async () => {
  const all = (await a.send(new DescribeAddressesCommand({}))).Addresses!;
  expect(all[0]).toMatchObject({ PublicIp: '10.99.0.1', Domain: 'vpc', Tags: [] });
  expect(all[0]!.InstanceId).toBeUndefined();
  const one = all[1]!;
  expect((await a.send(new DescribeAddressesCommand({ PublicIps: [one.PublicIp!] }))).Addresses!.map((x) => x.AllocationId)).toEqual([one.AllocationId]);
  expect((await a.send(new DescribeAddressesCommand({ AllocationIds: [one.AllocationId!] }))).Addresses!.map((x) => x.PublicIp)).toEqual([one.PublicIp]);
  const f = async (Name: string, Values: string[]) => (await a.send(new DescribeAddressesCommand({ Filters: [{ Name, Values }] }))).Addresses!.map((x) => x.PublicIp);
  expect(await f('public-ip', ['10.99.0.3'])).toEqual(['10.99.0.3']);
  expect(await f('allocation-id', [one.AllocationId!])).toEqual([one.PublicIp]);
  expect(await f('domain', ['vpc'])).toHaveLength(4);
  expect(await f('domain', ['standard'])).toEqual([]);
  expect(await f('instance-id', ['*'])).toEqual([]);
  expect(await f('association-id', ['*'])).toEqual([]);
  expect((await failure(a.send(new DescribeAddressesCommand({ Filters: [{ Name: 'size', Values: ['1'] }] })))).name).toBe('InvalidParameterValue');
  expect(await failure(a.send(new DescribeAddressesCommand({ PublicIps: ['10.99.0.5'] })))).toMatchObject({ name: 'InvalidAddress.NotFound', status: 400 });
  expect((await failure(a.send(new DescribeAddressesCommand({ AllocationIds: ['eipalloc-00000000000000000'] })))).name).toBe('InvalidAllocationID.NotFound');
  expect((await failure(a.send(new DescribeAddressesCommand({ AllocationIds: ['eipalloc-zz'] })))).name).toBe('InvalidAllocationID.Malformed');
});

it('releases by allocation id and by public IP; the address returns to the pool', async () => {
  const all = (await a.send(new DescribeAddressesCommand({}))).Addresses!;
  expect((await failure(a.send(new ReleaseAddressCommand({ AllocationId: all[0]!.AllocationId, DryRun: true })))).name).toBe('DryRunOperation');
  expect((await a.send(new ReleaseAddressCommand({ AllocationId: all[0]!.AllocationId }))).$metadata.httpStatusCode).toBe(200);
  await a.send(new ReleaseAddressCommand({ PublicIp: all[2]!.PublicIp }));
  expect(await ipsOf(a)).toEqual(['10.99.0.2', '10.99.0.4']);
  expect((await failure(a.send(new ReleaseAddressCommand({ AllocationId: all[0]!.AllocationId })))).name).toBe('InvalidAllocationID.NotFound');
  expect((await failure(a.send(new ReleaseAddressCommand({ PublicIp: all[2]!.PublicIp })))).name).toBe('InvalidAddress.NotFound');
  expect((await failure(a.send(new ReleaseAddressCommand({})))).name).toBe('MissingParameter');
  // the lowest free address comes back first
  expect((await b.send(new AllocateAddressCommand({}))).PublicIp).toBe('10.99.0.1');
});
