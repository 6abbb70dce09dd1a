// Images end to end: RegisterImage from a local HTTP server (127.0.0.1 only), DescribeImages
// (owners, executable-by, filters, pagination), launch permissions across accounts,
// DeregisterImage, the signed image-store endpoint, and `image import` (the operator command).
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeTagsCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  ModifyImageAttributeCommand,
  RegisterImageCommand,
  ResetImageAttributeCommand,
  waitUntilImageAvailable,
  type EC2Client,
  type Image,
} from '@aws-sdk/client-ec2';
import { runAdminCommand } from '../../apps/cloud-controller/src/admin/admin-commands.js';
import { FsBlobStore } from '../../apps/cloud-controller/src/images/blob-store.js';
import type { BlobUrlSigner } from '../../apps/cloud-controller/src/images/blob-url-signer.js';
import { BLOB_URL_SIGNER, ImagesService } from '../../apps/cloud-controller/src/images/images.service.js';
import { startCloud, type TestCloud, type TestCredentials } from '../support/cloud.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// ---- a local image server ---------------------------------------------------------------------
const RAW = randomBytes(1024 * 1024 + 123);
const QCOW2 = (() => {
  const b = Buffer.alloc(64 * 1024);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(3, 4);
  b.writeUInt32BE(16, 20);
  b.writeBigUInt64BE(1n << 30n, 24);
  return b;
})();
const QCOW2_BACKING = Buffer.from(QCOW2);
QCOW2_BACKING.writeBigUInt64BE(0x200n, 8);
const KERNEL = randomBytes(50_000);
/** 64 MiB of which 1 MiB is data: stored as a compact qcow2. */
const SPARSE = Buffer.alloc(64 * 1024 * 1024);
randomBytes(1024 * 1024).copy(SPARSE, 8 * 1024 * 1024 + 5);
let releaseSlow: () => void = () => undefined;
const slowGate = new Promise<void>((r) => (releaseSlow = r));

let server: Server;
let base = '';
let cloud: TestCloud;
let admin: EC2Client;
let alice: TestCredentials;
let bob: TestCredentials;
let aliceEc2: EC2Client;
let bobEc2: EC2Client;
let carolEc2: EC2Client;
let images: ImagesService;
let work: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const send = (b: Buffer) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(b.length) });
      res.end(b);
    };
    if (req.url === '/raw.img') return send(RAW);
    if (req.url === '/raw-copy.img') return send(RAW);
    if (req.url === '/disk.qcow2') return send(QCOW2);
    if (req.url === '/backing.qcow2') return send(QCOW2_BACKING);
    if (req.url === '/vmlinuz') return send(KERNEL);
    if (req.url === '/sparse.img') return send(SPARSE);
    if (req.url === '/slow.img') return void slowGate.then(() => send(RAW));
    res.writeHead(404).end('not here');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  // The loopback server is not public: the operator allow-lists it.
  cloud = await startCloud({ env: { KOALA_IMAGE_FETCH_ALLOW: `127.0.0.1:${port}` } });
  admin = cloud.ec2();
  alice = await cloud.createAccount('alice');
  bob = await cloud.createAccount('bob');
  aliceEc2 = cloud.ec2(alice);
  bobEc2 = cloud.ec2(bob);
  carolEc2 = cloud.ec2(await cloud.createAccount('carol'));
  images = cloud.app.get(ImagesService);
  work = mkdtempSync(join(tmpdir(), 'koala-images-e2e-'));
}, 30_000);

afterAll(async () => {
  releaseSlow();
  await cloud?.close();
  await new Promise((r) => server?.close(r));
  if (work) rmSync(work, { recursive: true, force: true });
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { name: string }).name;
  }
  return 'no error';
}
async function register(client: EC2Client, input: Record<string, unknown>): Promise<string> {
  const r = await client.send(new RegisterImageCommand(input as never));
  return r.ImageId!;
}
async function available(client: EC2Client, id: string): Promise<Image> {
  await waitUntilImageAvailable({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { ImageIds: [id] });
  return (await client.send(new DescribeImagesCommand({ ImageIds: [id] }))).Images![0]!;
}
async function list(client: EC2Client, input: Record<string, unknown> = {}): Promise<Image[]> {
  return (await client.send(new DescribeImagesCommand(input as never))).Images ?? [];
}
const ids = (xs: Image[]) => xs.map((i) => i.ImageId).sort();

/** `image ...` admin command in-process (what `koala image` spawns), output captured. */
async function imageCommand(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runAdminCommand(cloud.config, ['image', ...args], { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}
function file(name: string, data: Buffer): string {
  const p = join(work, name);
  writeFileSync(p, data);
  return p;
}

function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

describe('RegisterImage', () => {
  it('is pending while the CLC fetches the location, then available (waiter)', async () => {
    const id = await register(aliceEc2, { Name: 'slow-image', ImageLocation: `${base}/slow.img`, Description: 'fetched slowly' });
    expect(id).toMatch(/^emi-[0-9a-f]{17}$/);
    const [pending] = await list(aliceEc2, { ImageIds: [id] });
    expect(pending).toMatchObject({ ImageId: id, State: 'pending', Name: 'slow-image', OwnerId: alice.accountId, Public: false });
    releaseSlow();
    const img = await available(aliceEc2, id);
    expect(img).toMatchObject({
      State: 'available',
      ImageType: 'machine',
      Architecture: 'x86_64',
      VirtualizationType: 'hvm',
      RootDeviceType: 'instance-store',
      RootDeviceName: '/dev/sda1',
      ImageLocation: `${base}/slow.img`,
      Description: 'fetched slowly',
      Hypervisor: 'kvm',
    });
    expect(img.StateReason).toBeUndefined();
    expect(Date.parse(img.CreationDate!)).toBeGreaterThan(Date.now() - 60_000);
    const { spec } = await images.launchSpec({ accountId: alice.accountId, isAdmin: false }, id);
    expect(spec).toMatchObject({ virtualizationType: 'hvm', root: { imageId: id, sha256: sha(RAW), sizeBytes: RAW.length, format: 'raw' } });
  }, 40_000);

  it('stores a mostly-zero raw disk as a compact qcow2 of the same size (a dense one stays raw, above)', async () => {
    const id = await register(aliceEc2, { Name: 'sparse-image', ImageLocation: `${base}/sparse.img` });
    await available(aliceEc2, id);
    const { spec } = await images.launchSpec({ accountId: alice.accountId, isAdmin: false }, id);
    expect(spec.root.format).toBe('qcow2');
    expect(spec.root.sizeBytes).toBeLessThan(2 * 1024 * 1024);
    const store = new FsBlobStore(join(cloud.home, 'image-store'));
    expect(await store.size(spec.root.sha256)).toBe(spec.root.sizeBytes);
    expect(await store.size(sha(SPARSE))).toBeUndefined(); // the fetched raw form is not kept
    const listed = JSON.parse((await imageCommand(['list', '--json'])).out) as { id: string; size: number; stored: number }[];
    expect(listed.find((r) => r.id === id)).toMatchObject({ size: SPARSE.length, stored: spec.root.sizeBytes });
    // the guest reads the same bytes
    const back = join(work, 'sparse-back.raw');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', store.pathOf(spec.root.sha256), back]);
    expect(sha(readFileSync(back))).toBe(sha(SPARSE));
  }, 40_000);

  it('detects qcow2 and refuses a qcow2 with a backing file', async () => {
    const q = await register(aliceEc2, { Name: 'qcow2-image', ImageLocation: `${base}/disk.qcow2`, Architecture: 'arm64', RootDeviceName: '/dev/vda' });
    const img = await available(aliceEc2, q);
    expect(img).toMatchObject({ Architecture: 'arm64', RootDeviceName: '/dev/vda' });
    expect((await images.launchSpec({ accountId: alice.accountId, isAdmin: false }, q)).spec.root.format).toBe('qcow2');
    const bad = await register(aliceEc2, { Name: 'backing-qcow2', ImageLocation: `${base}/backing.qcow2` });
    await images.idle();
    const [b] = await list(aliceEc2, { ImageIds: [bad] });
    expect(b).toMatchObject({ State: 'failed', StateReason: { Code: 'Client.InvalidImage' } });
  }, 40_000);

  it('a location answering 404 fails the image with a reason (the waiter stops)', async () => {
    const id = await register(aliceEc2, { Name: 'missing-image', ImageLocation: `${base}/nope.img` });
    await expect(waitUntilImageAvailable({ client: aliceEc2, maxWaitTime: 20, minDelay: 1, maxDelay: 1 }, { ImageIds: [id] })).rejects.toThrow();
    const [img] = await list(aliceEc2, { ImageIds: [id] });
    expect(img!.State).toBe('failed');
    expect(img!.StateReason).toEqual({ Code: 'Client.InvalidImageLocation', Message: 'The image location could not be fetched.' });
    expect(await code(images.launchSpec({ accountId: alice.accountId, isAdmin: false }, id))).toBe('Ec2Error');
  }, 30_000);

  it('refuses non-http(s) locations, bad and duplicate names, bad parameters', async () => {
    for (const loc of ['file:///etc/passwd', 'ftp://127.0.0.1/x.img', 'not a url', 'gopher://127.0.0.1/']) {
      expect(await code(register(aliceEc2, { Name: 'bad-location', ImageLocation: loc }))).toBe('InvalidParameterValue');
    }
    expect(await code(register(aliceEc2, { Name: 'x', ImageLocation: `${base}/raw.img` }))).toBe('InvalidAMIName.Malformed');
    expect(await code(register(aliceEc2, { Name: 'bad*name', ImageLocation: `${base}/raw.img` }))).toBe('InvalidAMIName.Malformed');
    expect(await code(register(aliceEc2, { Name: 'slow-image', ImageLocation: `${base}/raw.img` }))).toBe('InvalidAMIName.Duplicate');
    expect(await code(register(aliceEc2, { ImageLocation: `${base}/raw.img` }))).toBe('MissingParameter');
    expect(await code(register(aliceEc2, { Name: 'arch-image', ImageLocation: `${base}/raw.img`, Architecture: 'sparc' }))).toBe('InvalidParameterValue');
    expect(await code(register(aliceEc2, { Name: 'pv-no-kernel', ImageLocation: `${base}/raw.img`, VirtualizationType: 'paravirtual' }))).toBe('MissingParameter');
    // names are per owner: bob may use alice's name
    const b = await register(bobEc2, { Name: 'slow-image', ImageLocation: `${base}/raw-copy.img` });
    await available(bobEc2, b);
  }, 30_000);

  it('tags the image from TagSpecification', async () => {
    const id = await register(aliceEc2, {
      Name: 'tagged-image',
      ImageLocation: `${base}/raw.img`,
      TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'role', Value: 'web' }] }],
    });
    const img = await available(aliceEc2, id);
    expect(img.Tags).toEqual([{ Key: 'role', Value: 'web' }]);
    expect(ids(await list(aliceEc2, { Filters: [{ Name: 'tag:role', Values: ['web'] }] }))).toEqual([id]);
    expect(await code(register(aliceEc2, { Name: 'tagged-2', ImageLocation: `${base}/raw.img`, TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'a', Value: 'b' }] }] }))).toBe(
      'InvalidParameterValue',
    );
  }, 30_000);
});

describe('paravirtual images and operator import', () => {
  let kernelId = '';
  let ramdiskId = '';
  let pvId = '';

  it('imports a paravirtual triple (public) and answers the same ids when re-imported', async () => {
    const k = file('vmlinuz', KERNEL);
    const r = file('initramfs.img', randomBytes(30_000));
    const root = file('rootfs.img', Buffer.concat([randomBytes(4096), Buffer.alloc(1024 * 1024)]));
    const first = await imageCommand(['import', '--name', 'tiny-test', '--public', '--kernel', k, '--ramdisk', r, '--root', root, '--kernel-args', 'quiet']);
    expect(first.err).toMatch(/tiny-test-kernel \(vmlinuz\).*100%.*MB\/s.*imported as eki-/);
    expect(first.code).toBe(0);
    const lines = first.out
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    expect(lines.map((l) => [l[1], l[2], l[3]])).toEqual([
      ['tiny-test-kernel', 'kernel', 'new'],
      ['tiny-test-ramdisk', 'ramdisk', 'new'],
      ['tiny-test', 'machine', 'new'],
    ]);
    [kernelId, ramdiskId, pvId] = lines.map((l) => l[0]!);
    expect(kernelId).toMatch(/^eki-/);
    expect(ramdiskId).toMatch(/^eri-/);
    expect(pvId).toMatch(/^emi-/);
    const again = await imageCommand(['import', '--name', 'tiny-test', '--public', '--kernel', k, '--ramdisk', r, '--root', root, '--kernel-args', 'quiet']);
    expect(again.code).toBe(0);
    expect(
      again.out
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[0]),
    ).toEqual([kernelId, ramdiskId, pvId]);
    expect(again.out).not.toContain('\tnew');

    // visible to everyone, available, with its kernel and ramdisk
    const [img] = await list(carolEc2, { ImageIds: [pvId] });
    expect(img).toMatchObject({
      State: 'available',
      VirtualizationType: 'paravirtual',
      KernelId: kernelId,
      RamdiskId: ramdiskId,
      Public: true,
      OwnerId: cloud.admin.accountId,
      ImageOwnerAlias: 'amazon',
    });
    const { spec } = await images.launchSpec({ accountId: bob.accountId, isAdmin: false }, pvId);
    expect(spec).toMatchObject({ virtualizationType: 'paravirtual', kernelArgs: 'quiet', kernel: { imageId: kernelId, sha256: sha(KERNEL), format: 'raw' }, ramdisk: { imageId: ramdiskId } });
    expect(await code(images.launchSpec({ accountId: bob.accountId, isAdmin: false }, kernelId))).toBe('Ec2Error');
  }, 30_000);

  it('imports an HVM disk; other bytes under the same name need --replace', async () => {
    const disk = file('disk.raw', randomBytes(200_000));
    const r1 = await imageCommand(['import', '--name', 'hvm-disk', '--account', 'alice', disk]);
    expect(r1.code).toBe(0);
    const id = r1.out.split('\t')[0]!;
    expect((await available(aliceEc2, id)).VirtualizationType).toBe('hvm');
    expect(await list(bobEc2, { Filters: [{ Name: 'name', Values: ['hvm-disk'] }] })).toEqual([]);
    const other = file('disk2.raw', randomBytes(100_000));
    const r2 = await imageCommand(['import', '--name', 'hvm-disk', '--account', 'alice', other]);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/already exists.*--replace/);
    const r3 = await imageCommand(['import', '--name', 'hvm-disk', '--account', 'alice', '--replace', other]);
    expect(r3.code).toBe(0);
    const id3 = r3.out.split('\t')[0]!;
    expect(id3).not.toBe(id);
    expect(ids(await list(aliceEc2, { Filters: [{ Name: 'name', Values: ['hvm-disk'] }] }))).toEqual([id3]);
    expect((await imageCommand(['import', '--name', 'x', disk])).code).toBe(1); // malformed name
    expect((await imageCommand(['import', disk])).code).toBe(64);
    expect((await imageCommand(['import', '--name', 'nofile', join(work, 'nope')])).code).toBe(1);
    const listing = await imageCommand(['list']);
    expect(listing.out).toContain(id3);
    expect(listing.out).toContain('tiny-test-kernel');
  }, 30_000);

  it('RegisterImage paravirtual with KernelId/RamdiskId checks kinds', async () => {
    const ok = await register(bobEc2, { Name: 'bob-pv', ImageLocation: `${base}/raw.img`, KernelId: kernelId, RamdiskId: ramdiskId });
    const img = await available(bobEc2, ok);
    expect(img).toMatchObject({ VirtualizationType: 'paravirtual', KernelId: kernelId, RamdiskId: ramdiskId, RootDeviceName: '/dev/sda1' });
    expect(await code(register(bobEc2, { Name: 'bob-pv2', ImageLocation: `${base}/raw.img`, KernelId: ramdiskId }))).toBe('InvalidParameterValue');
    expect(await code(register(bobEc2, { Name: 'bob-pv3', ImageLocation: `${base}/raw.img`, KernelId: kernelId, RamdiskId: kernelId }))).toBe('InvalidParameterValue');
    expect(await code(register(bobEc2, { Name: 'bob-pv4', ImageLocation: `${base}/raw.img`, KernelId: pvId }))).toBe('InvalidParameterValue');
    expect(await code(register(bobEc2, { Name: 'bob-pv5', ImageLocation: `${base}/raw.img`, KernelId: 'eki-0123456789abcdef0' }))).toBe('InvalidAMIID.NotFound');
    expect(await code(register(bobEc2, { Name: 'bob-pv6', ImageLocation: `${base}/raw.img`, KernelId: 'kernel-1' }))).toBe('InvalidAMIID.Malformed');
    expect(await code(register(bobEc2, { Name: 'bob-pv7', ImageLocation: `${base}/raw.img`, KernelId: kernelId, VirtualizationType: 'hvm' }))).toBe('InvalidParameterCombination');
    // a private kernel of another account is not usable
    const k2 = await imageCommand(['import', '--name', 'alice-kernel', '--account', 'alice', '--kernel', file('k2', randomBytes(1000)), '--root', file('r2', randomBytes(1000))]);
    const aliceKernel = k2.out.split('\n')[0]!.split('\t')[0]!;
    expect(aliceKernel).toMatch(/^eki-/);
    expect(await code(register(bobEc2, { Name: 'bob-pv8', ImageLocation: `${base}/raw.img`, KernelId: aliceKernel }))).toBe('InvalidAMIID.NotFound');
  }, 30_000);
});

describe('DescribeImages', () => {
  it('Owner, ExecutableBy, filters and pagination', async () => {
    const mine = await list(aliceEc2, { Owners: ['self'] });
    expect(mine.length).toBeGreaterThan(3);
    expect(mine.every((i) => i.OwnerId === alice.accountId)).toBe(true);
    expect(ids(await list(aliceEc2, { Owners: [alice.accountId] }))).toEqual(ids(mine));
    const amazon = await list(bobEc2, { Owners: ['amazon'] });
    expect(amazon.length).toBe(3);
    expect(amazon.every((i) => i.OwnerId === cloud.admin.accountId && i.Public)).toBe(true);
    expect(await list(bobEc2, { Owners: ['aws-marketplace'] })).toEqual([]);
    const pub = await list(bobEc2, { ExecutableUsers: ['all'] });
    expect(ids(pub)).toEqual(ids(amazon));
    // bob's default view: his own + public
    const bobAll = await list(bobEc2);
    expect(bobAll.every((i) => i.OwnerId === bob.accountId || i.Public)).toBe(true);
    expect(ids(await list(bobEc2, { ExecutableUsers: ['self'] }))).toEqual(ids(await list(bobEc2, { Owners: ['self'] })));
    // filters
    const kernels = await list(bobEc2, { Filters: [{ Name: 'image-type', Values: ['kernel'] }] });
    expect(kernels.map((i) => i.Name)).toEqual(['tiny-test-kernel']);
    expect((await list(aliceEc2, { Filters: [{ Name: 'architecture', Values: ['arm64'] }] })).map((i) => i.Name)).toEqual(['qcow2-image']);
    expect(
      (
        await list(aliceEc2, {
          Filters: [
            { Name: 'state', Values: ['failed'] },
            { Name: 'owner-id', Values: [alice.accountId] },
          ],
        })
      )
        .map((i) => i.Name)
        .sort(),
    ).toEqual(['backing-qcow2', 'missing-image']);
    expect(
      (
        await list(bobEc2, {
          Filters: [
            { Name: 'is-public', Values: ['true'] },
            { Name: 'virtualization-type', Values: ['paravirtual'] },
            { Name: 'image-type', Values: ['machine'] },
          ],
        })
      ).map((i) => i.Name),
    ).toEqual(['tiny-test']);
    expect(
      (
        await list(aliceEc2, {
          Filters: [
            { Name: 'name', Values: ['slow-*'] },
            { Name: 'root-device-type', Values: ['instance-store'] },
            { Name: 'description', Values: ['fetched*'] },
          ],
        })
      ).map((i) => i.OwnerId),
    ).toEqual([alice.accountId]);
    expect(
      (
        await list(bobEc2, {
          Filters: [
            { Name: 'kernel-id', Values: ['eki-*'] },
            { Name: 'owner-id', Values: [bob.accountId] },
          ],
        })
      ).map((i) => i.Name),
    ).toEqual(['bob-pv']);
    expect((await list(aliceEc2, { Filters: [{ Name: 'root-device-name', Values: ['/dev/vda'] }] })).map((i) => i.Name)).toEqual(['qcow2-image']);
    expect(await code(list(aliceEc2, { Filters: [{ Name: 'flavour', Values: ['x'] }] }))).toBe('InvalidParameterValue');
    // ids
    expect(await code(list(bobEc2, { ImageIds: ['emi-0123456789abcdef0'] }))).toBe('InvalidAMIID.NotFound');
    expect(await code(list(bobEc2, { ImageIds: ['image-1'] }))).toBe('InvalidAMIID.Malformed');
    // the admin sees everything
    const all = await list(admin);
    expect(all.some((i) => i.OwnerId === alice.accountId && !i.Public)).toBe(true);
    // pagination
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await admin.send(new DescribeImagesCommand({ MaxResults: 5, NextToken: token }));
      expect(r.Images!.length).toBeLessThanOrEqual(5);
      seen.push(...r.Images!.map((i) => i.ImageId!));
      token = r.NextToken;
      pages++;
    } while (token);
    expect(pages).toBeGreaterThan(1);
    expect(seen.sort()).toEqual(ids(all));
  }, 30_000);
});

describe('launch permissions', () => {
  let priv = '';
  beforeAll(async () => {
    priv = await register(aliceEc2, { Name: 'alice-private', ImageLocation: `${base}/raw.img` });
    await available(aliceEc2, priv);
  }, 30_000);

  it('B cannot see A’s private image until A adds B; public images are visible to all', async () => {
    expect(await code(list(bobEc2, { ImageIds: [priv] }))).toBe('InvalidAMIID.NotFound');
    expect(await code(images.launchSpec({ accountId: bob.accountId, isAdmin: false }, priv))).toBe('Ec2Error');
    await aliceEc2.send(new ModifyImageAttributeCommand({ ImageId: priv, LaunchPermission: { Add: [{ UserId: bob.accountId }] } }));
    expect(ids(await list(bobEc2, { ImageIds: [priv] }))).toEqual([priv]);
    expect(ids(await list(bobEc2, { ExecutableUsers: ['self'] }))).toContain(priv);
    expect(ids(await list(aliceEc2, { ExecutableUsers: [bob.accountId] }))).toEqual([priv]);
    expect((await images.launchSpec({ accountId: bob.accountId, isAdmin: false }, priv)).spec.root.sha256).toBe(sha(RAW));
    expect(await code(list(carolEc2, { ImageIds: [priv] }))).toBe('InvalidAMIID.NotFound');
    const attr = await aliceEc2.send(new DescribeImageAttributeCommand({ ImageId: priv, Attribute: 'launchPermission' }));
    expect(attr.LaunchPermissions).toEqual([{ UserId: bob.accountId }]);
    expect(await code(bobEc2.send(new DescribeImageAttributeCommand({ ImageId: priv, Attribute: 'launchPermission' })))).toBe('AuthFailure');
    expect(await code(bobEc2.send(new ModifyImageAttributeCommand({ ImageId: priv, LaunchPermission: { Add: [{ Group: 'all' }] } })))).toBe('AuthFailure');

    await aliceEc2.send(new ModifyImageAttributeCommand({ ImageId: priv, LaunchPermission: { Remove: [{ UserId: bob.accountId }] } }));
    expect(await code(list(bobEc2, { ImageIds: [priv] }))).toBe('InvalidAMIID.NotFound');

    // the older form, and public
    await aliceEc2.send(new ModifyImageAttributeCommand({ ImageId: priv, Attribute: 'launchPermission', OperationType: 'add', UserGroups: ['all'] }));
    const [seen] = await list(carolEc2, { ImageIds: [priv] });
    expect(seen!.Public).toBe(true);
    expect(ids(await list(carolEc2, { ExecutableUsers: ['all'], Owners: [alice.accountId] }))).toEqual([priv]);
    expect((await aliceEc2.send(new DescribeImageAttributeCommand({ ImageId: priv, Attribute: 'launchPermission' }))).LaunchPermissions).toEqual([{ Group: 'all' }]);
    await aliceEc2.send(new ModifyImageAttributeCommand({ ImageId: priv, Attribute: 'launchPermission', OperationType: 'add', UserIds: [bob.accountId] }));
    await aliceEc2.send(new ResetImageAttributeCommand({ ImageId: priv, Attribute: 'launchPermission' }));
    expect(await code(list(carolEc2, { ImageIds: [priv] }))).toBe('InvalidAMIID.NotFound');
    expect(await code(list(bobEc2, { ImageIds: [priv] }))).toBe('InvalidAMIID.NotFound');
    expect(await code(aliceEc2.send(new ModifyImageAttributeCommand({ ImageId: priv, LaunchPermission: { Add: [{ UserId: 'bob' }] } })))).toBe('InvalidAMIAttributeItemValue');
  });

  it('tags of a shared or public image are the owner’s: grantees see none, tag filters and DescribeTags find nothing', async () => {
    await aliceEc2.send(new CreateTagsCommand({ Resources: [priv], Tags: [{ Key: 'team', Value: 'secret-project' }] }));
    await aliceEc2.send(new ModifyImageAttributeCommand({ ImageId: priv, LaunchPermission: { Add: [{ UserId: bob.accountId }, { Group: 'all' }] } }));
    try {
      const tagOf = async (c: EC2Client) => (await list(c, { ImageIds: [priv] }))[0]!.Tags ?? [];
      expect(await tagOf(aliceEc2)).toEqual([{ Key: 'team', Value: 'secret-project' }]);
      expect(await tagOf(admin)).toEqual([{ Key: 'team', Value: 'secret-project' }]);
      expect(await tagOf(bobEc2)).toEqual([]);
      expect(await tagOf(carolEc2)).toEqual([]);
      const byTag = { Filters: [{ Name: 'tag:team', Values: ['secret-project'] }] };
      expect(ids(await list(aliceEc2, byTag))).toEqual([priv]);
      expect(ids(await list(bobEc2, byTag))).toEqual([]);
      expect(ids(await list(carolEc2, { Filters: [{ Name: 'tag-key', Values: ['team'] }] }))).toEqual([]);
      const described = async (c: EC2Client) => (await c.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [priv] }] }))).Tags ?? [];
      expect((await described(aliceEc2)).map((t) => t.Value)).toEqual(['secret-project']);
      expect(await described(bobEc2)).toEqual([]);
      expect(await code(bobEc2.send(new CreateTagsCommand({ Resources: [priv], Tags: [{ Key: 'mine', Value: 'x' }] })))).not.toBe('no error');
    } finally {
      await aliceEc2.send(new ResetImageAttributeCommand({ ImageId: priv, Attribute: 'launchPermission' }));
    }
  });

  it('description, kernel and ramdisk attributes', async () => {
    await aliceEc2.send(new ModifyImageAttributeCommand({ ImageId: priv, Description: { Value: 'new words' } }));
    expect((await aliceEc2.send(new DescribeImageAttributeCommand({ ImageId: priv, Attribute: 'description' }))).Description).toEqual({ Value: 'new words' });
    expect((await list(aliceEc2, { ImageIds: [priv] }))[0]!.Description).toBe('new words');
    const [pv] = await list(bobEc2, { Filters: [{ Name: 'name', Values: ['bob-pv'] }] });
    expect((await bobEc2.send(new DescribeImageAttributeCommand({ ImageId: pv!.ImageId!, Attribute: 'kernel' }))).KernelId).toEqual({ Value: pv!.KernelId });
    expect((await bobEc2.send(new DescribeImageAttributeCommand({ ImageId: pv!.ImageId!, Attribute: 'ramdisk' }))).RamdiskId).toEqual({ Value: pv!.RamdiskId });
    expect((await bobEc2.send(new DescribeImageAttributeCommand({ ImageId: pv!.ImageId!, Attribute: 'blockDeviceMapping' }))).BlockDeviceMappings).toEqual([]);
  });
});

describe('DeregisterImage', () => {
  it('owner only; the unreferenced blob is deleted, a shared one kept', async () => {
    const a = await register(aliceEc2, { Name: 'to-deregister', ImageLocation: `${base}/vmlinuz` });
    await available(aliceEc2, a);
    await aliceEc2.send(new ModifyImageAttributeCommand({ ImageId: a, LaunchPermission: { Add: [{ Group: 'all' }] } }));
    expect(await code(bobEc2.send(new DeregisterImageCommand({ ImageId: a })))).toBe('AuthFailure');
    const store = new FsBlobStore(join(cloud.home, 'image-store'));
    const blob = store.pathOf(sha(KERNEL));
    expect(existsSync(blob)).toBe(true);
    // same bytes as the tiny-test kernel: the blob stays while that image is registered
    await aliceEc2.send(new DeregisterImageCommand({ ImageId: a }));
    expect(await code(list(aliceEc2, { ImageIds: [a] }))).toBe('InvalidAMIID.NotFound');
    expect(existsSync(blob)).toBe(true);
    expect(await code(aliceEc2.send(new DeregisterImageCommand({ ImageId: a })))).toBe('InvalidAMIID.NotFound');

    const b = await register(aliceEc2, { Name: 'unique-bytes', ImageLocation: `${base}/disk.qcow2` });
    await available(aliceEc2, b);
    const qcowBlob = store.pathOf(sha(QCOW2));
    // qcow2-image has the same bytes: deregister both, then the blob goes
    const [q] = await list(aliceEc2, { Filters: [{ Name: 'name', Values: ['qcow2-image'] }] });
    await aliceEc2.send(new DeregisterImageCommand({ ImageId: b }));
    expect(existsSync(qcowBlob)).toBe(true);
    await admin.send(new DeregisterImageCommand({ ImageId: q!.ImageId! })); // the admin may, by id
    expect(existsSync(qcowBlob)).toBe(false);
    // a name is free again once deregistered
    await available(aliceEc2, await register(aliceEc2, { Name: 'unique-bytes', ImageLocation: `${base}/raw.img` }));
  }, 30_000);
});

describe('image-store endpoint', () => {
  it('a signed URL from launchSpec downloads exactly the bytes; ranges; tampered or expired → 403', async () => {
    const [img] = await list(aliceEc2, { Filters: [{ Name: 'name', Values: ['slow-image'] }] });
    const { spec } = await images.launchSpec({ accountId: alice.accountId, isAdmin: false }, img!.ImageId!);
    const url = spec.root.url;
    expect(url.startsWith(`${cloud.endpoint}images/blobs/sha256/${sha(RAW)}?expires=`)).toBe(true);
    const r = await httpGet(url);
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(RAW.length));
    expect(sha(r.body)).toBe(sha(RAW));

    const part = await httpGet(url, { range: 'bytes=100-199' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-199/${RAW.length}`);
    expect(part.body.equals(RAW.subarray(100, 200))).toBe(true);
    expect((await httpGet(url, { range: `bytes=${RAW.length}-` })).status).toBe(416);

    const u = new URL(url);
    const sig = u.searchParams.get('signature')!;
    const tampered = new URL(url);
    tampered.searchParams.set('signature', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
    expect((await httpGet(tampered.toString())).status).toBe(403);
    const later = new URL(url);
    later.searchParams.set('expires', String(Number(u.searchParams.get('expires')) + 3600));
    expect((await httpGet(later.toString())).status).toBe(403);
    expect((await httpGet(`${cloud.endpoint}images/blobs/sha256/${sha(RAW)}`)).status).toBe(403);

    const signer = cloud.app.get<BlobUrlSigner>(BLOB_URL_SIGNER);
    const expired = signer.url(cloud.endpoint, sha(RAW), Math.floor(Date.now() / 1000) - 10);
    expect((await httpGet(expired)).status).toBe(403);
    const unknown = signer.url(cloud.endpoint, 'f'.repeat(64), Math.floor(Date.now() / 1000) + 60);
    expect((await httpGet(unknown)).status).toBe(404);
  });
});
