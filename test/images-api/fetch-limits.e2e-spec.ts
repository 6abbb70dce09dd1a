// RegisterImage's fetch is bounded: KOALA_IMAGE_MAX_BYTES (the image fails Client.ImageTooLarge,
// whether the server declares the length or not) and KOALA_IMAGE_FETCH_TIMEOUT_MS (a server that
// never answers fails Client.ImageFetchTimeout). Local HTTP server on 127.0.0.1 only.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeImagesCommand, RegisterImageCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { ImagesService } from '../../apps/cloud-controller/src/images/images.service.js';
import { startCloud, type TestCloud } from '../support/cloud.js';

const MiB = 1024 * 1024;
let server: Server;
let base = '';
let cloud: TestCloud;
let ec2: EC2Client;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/big.img') {
      const b = randomBytes(MiB + 1);
      res.writeHead(200, { 'content-length': String(b.length) }).end(b);
    } else if (req.url === '/big-chunked.img') {
      res.writeHead(200); // no content-length: counted while storing
      res.write(randomBytes(MiB));
      res.end(randomBytes(10));
    } else if (req.url === '/small.img') res.writeHead(200).end(randomBytes(MiB));
    else if (req.url === '/hang.img')
      res.writeHead(200).write(Buffer.alloc(10)); // then nothing
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cloud = await startCloud({ env: { KOALA_IMAGE_MAX_BYTES: String(MiB), KOALA_IMAGE_FETCH_TIMEOUT_MS: '1500', KOALA_IMAGE_FETCH_ALLOW: '127.0.0.1' } });
  ec2 = cloud.ec2();
}, 30_000);

afterAll(async () => {
  await cloud?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

async function outcome(name: string, path: string) {
  const { ImageId } = await ec2.send(new RegisterImageCommand({ Name: name, ImageLocation: `${base}${path}` }));
  await cloud.app.get(ImagesService).idle();
  const r = await ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }));
  return { state: r.Images![0]!.State, code: r.Images![0]!.StateReason?.Code };
}

it('fails images larger than KOALA_IMAGE_MAX_BYTES, declared or not; accepts one at the cap', async () => {
  expect(await outcome('big', '/big.img')).toEqual({ state: 'failed', code: 'Client.ImageTooLarge' });
  expect(await outcome('big-chunked', '/big-chunked.img')).toEqual({ state: 'failed', code: 'Client.ImageTooLarge' });
  expect(await outcome('small', '/small.img')).toEqual({ state: 'available', code: undefined });
}, 30_000);

it('fails a fetch that takes longer than KOALA_IMAGE_FETCH_TIMEOUT_MS', async () => {
  const t0 = Date.now();
  expect(await outcome('hang', '/hang.img')).toEqual({ state: 'failed', code: 'Client.ImageFetchTimeout' });
  expect(Date.now() - t0).toBeLessThan(10_000);
}, 30_000);
