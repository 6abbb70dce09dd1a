// RegisterImage's ImageLocation cannot reach the CLC's own host or internal network (SSRF):
// loopback in any spelling fails before any connection unless KOALA_IMAGE_FETCH_ALLOW names it,
// every redirect hop is checked, the tenant sees one generic reason (no port-scanner signal),
// and credentials/query of a location are never stored or shown. Loopback servers only.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { DescribeImagesCommand, RegisterImageCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { ImageEntity } from '../../apps/cloud-controller/src/images/image.entity.js';
import { ImagesService } from '../../apps/cloud-controller/src/images/images.service.js';
import { startCloud, type TestCloud } from '../support/cloud.js';

const GENERIC = { Code: 'Client.InvalidImageLocation', Message: 'The image location could not be fetched.' };
const IMG = randomBytes(4096);

interface Srv {
  server: Server;
  port: number;
  connections: number;
  auth: (string | undefined)[];
}
async function serve(handler: (url: string, res: import('node:http').ServerResponse) => void): Promise<Srv> {
  const s: Srv = { server: createServer(), port: 0, connections: 0, auth: [] };
  s.server.on('connection', () => s.connections++);
  s.server.on('request', (req, res) => {
    s.auth.push(req.headers.authorization);
    handler((req.url ?? '').split('?')[0]!, res);
  });
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  s.port = (s.server.address() as AddressInfo).port;
  return s;
}

let releaseSlow: () => void = () => undefined;
const slowGate = new Promise<void>((r) => (releaseSlow = r));
let allowed: Srv; // in KOALA_IMAGE_FETCH_ALLOW
let internal: Srv; // not allow-listed: must never see a connection
let cloud: TestCloud;
let ec2: EC2Client;

beforeAll(async () => {
  internal = await serve((_u, res) => res.writeHead(200).end(IMG));
  allowed = await serve((u, res) => {
    if (u === '/img') res.writeHead(200, { 'content-length': String(IMG.length) }).end(IMG);
    else if (u === '/slow') void slowGate.then(() => res.writeHead(200).end(IMG));
    else if (u === '/to-internal') res.writeHead(302, { location: `http://127.0.0.1:${internal.port}/img` }).end();
    else if (u === '/to-internal-hex') res.writeHead(307, { location: `http://0x7f000001:${internal.port}/img` }).end();
    else res.writeHead(404).end();
  });
  cloud = await startCloud({ env: { KOALA_IMAGE_FETCH_ALLOW: `127.0.0.1:${allowed.port}` } });
  const acct = await cloud.createAccount('tenant');
  ec2 = cloud.ec2(acct);
}, 30_000);

afterAll(async () => {
  await cloud?.close();
  for (const s of [allowed, internal]) {
    s?.server.closeAllConnections();
    await new Promise((r) => s?.server.close(r));
  }
});

let n = 0;
async function outcome(location: string) {
  const { ImageId } = await ec2.send(new RegisterImageCommand({ Name: `img-${n++}`, ImageLocation: location }));
  await cloud.app.get(ImagesService).idle();
  const img = (await ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!;
  return { id: ImageId!, state: img.State, reason: img.StateReason, location: img.ImageLocation };
}

it('refuses the internal loopback server in every spelling, before connecting, with the generic reason', async () => {
  const p = internal.port;
  for (const loc of [
    `http://127.0.0.1:${p}/img`,
    `http://0x7f000001:${p}/img`,
    `http://2130706433:${p}/img`,
    `http://127.1:${p}/img`,
    `http://[::1]:${p}/img`,
    `http://[::ffff:127.0.0.1]:${p}/img`,
    `http://[::ffff:7f00:1]:${p}/img`,
    `http://0.0.0.0:${p}/img`,
    `https://127.0.0.1:${p}/img`,
  ]) {
    const o = await outcome(loc);
    expect({ loc, state: o.state, reason: o.reason }).toEqual({ loc, state: 'failed', reason: GENERIC });
  }
  expect(internal.connections).toBe(0);
}, 30_000);

it('an allow-listed server works; a redirect from it to a server that is not allowed is refused', async () => {
  expect(await outcome(`http://127.0.0.1:${allowed.port}/img`)).toMatchObject({ state: 'available' });
  expect(await outcome(`http://127.0.0.1:${allowed.port}/to-internal`)).toMatchObject({ state: 'failed', reason: GENERIC });
  expect(await outcome(`http://127.0.0.1:${allowed.port}/to-internal-hex`)).toMatchObject({ state: 'failed', reason: GENERIC });
  expect(internal.connections).toBe(0);
}, 30_000);

it('gives no port-scanner signal: open port, closed port, 404 and refused destination read the same', async () => {
  const closed = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => r(port));
    });
  });
  const reasons = [
    (await outcome(`http://127.0.0.1:${internal.port}/img`)).reason, // open, not allowed
    (await outcome(`http://127.0.0.1:${closed}/img`)).reason, // closed, not allowed
    (await outcome(`http://127.0.0.1:${allowed.port}/nope`)).reason, // allowed, 404
  ];
  expect(reasons).toEqual([GENERIC, GENERIC, GENERIC]);
}, 30_000);

it('never stores or shows credentials and query of a location, but fetches with them', async () => {
  allowed.auth = [];
  const o = await outcome(`http://alice:s3cret@127.0.0.1:${allowed.port}/img?X-Amz-Signature=tok3n#frag`);
  expect(o).toMatchObject({ state: 'available', location: `http://127.0.0.1:${allowed.port}/img` });
  expect(allowed.auth).toEqual([`Basic ${Buffer.from('alice:s3cret').toString('base64')}`]);
  const row = await cloud.dataSource.getRepository(ImageEntity).findOneByOrFail({ id: o.id });
  expect(row.fetchLocation).toBeNull(); // the sealed full URL is gone once the fetch ended
  // While the fetch runs, the full URL is kept only sealed (a restarted CLC resumes with it).
  const { ImageId } = await ec2.send(new RegisterImageCommand({ Name: 'slow-secret', ImageLocation: `http://bob:hunter2@127.0.0.1:${allowed.port}/slow?token=tok3n` }));
  const pending = await cloud.dataSource.getRepository(ImageEntity).findOneByOrFail({ id: ImageId! });
  expect(pending).toMatchObject({ state: 'pending', imageLocation: `http://127.0.0.1:${allowed.port}/slow` });
  expect(pending.fetchLocation).toEqual(expect.any(String));
  expect(pending.fetchLocation).not.toMatch(/hunter2|tok3n/);
  releaseSlow();
  await cloud.app.get(ImagesService).idle();
  expect(await cloud.dataSource.getRepository(ImageEntity).findOneByOrFail({ id: ImageId! })).toMatchObject({ state: 'available', fetchLocation: null });
  const dump = JSON.stringify(await cloud.dataSource.query('SELECT * FROM images'));
  expect(dump).not.toMatch(/s3cret|tok3n/);
}, 30_000);
