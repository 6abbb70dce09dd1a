// The EC2 Query endpoint itself: paths, GET/POST, errors, body limit, request ids.
import { request as httpRequest } from 'node:http';
import { parseStringPromise } from 'xml2js';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { errorOf, send, sigv4 } from './signed-http.js';

let cloud: TestCloud;
const LIMIT = 4096;

beforeAll(async () => {
  cloud = await startCloud({ env: { KOALA_API_MAX_BODY_BYTES: String(LIMIT) } });
}, 30_000);
afterAll(async () => cloud?.close());

const REGIONS = { Action: 'DescribeRegions', Version: '2016-11-15' };

describe('EC2 endpoint', () => {
  it('answers POST / with XML, the request id in the body and in x-amzn-requestid', async () => {
    const r = await sigv4(cloud.endpoint, cloud.admin, REGIONS);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/xml;charset=UTF-8');
    const x = await parseStringPromise(r.body);
    expect(x.DescribeRegionsResponse.$.xmlns).toBe('http://ec2.amazonaws.com/doc/2016-11-15/');
    expect(x.DescribeRegionsResponse.requestId[0]).toBe(r.headers['x-amzn-requestid']);
    expect(r.headers['x-amzn-requestid']).toMatch(/^[0-9a-f-]{36}$/);
    expect(x.DescribeRegionsResponse.regionInfo[0].item[0].regionName[0]).toBe('koala-1');
  });

  it('serves GET with the parameters in the query string', async () => {
    const r = await sigv4(cloud.endpoint, cloud.admin, REGIONS, { method: 'GET' });
    expect(r.status).toBe(200);
    expect(r.body).toContain('<regionName>koala-1</regionName>');
  });

  it.each(['/services/Eucalyptus', '/services/compute', '/services/Eucalyptus/', '/services/compute/'])('serves %s', async (path) => {
    const r = await sigv4(cloud.endpoint, cloud.admin, REGIONS, { path });
    expect(r.status).toBe(200);
    expect(r.body).toContain('<DescribeRegionsResponse');
  });

  it('defaults Version when absent', async () => {
    const r = await sigv4(cloud.endpoint, cloud.admin, { Action: 'DescribeRegions' });
    expect(r.status).toBe(200);
    expect(r.body).toContain('xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"');
  });

  it('refuses unknown parameters (UnknownParameter), never ignores them', async () => {
    for (const name of ['SomeFutureField', 'Nested.1.Thing']) {
      const r = await sigv4(cloud.endpoint, cloud.admin, { ...REGIONS, [name]: 'x' });
      expect(r.status).toBe(400);
      expect(await errorOf(r)).toMatchObject({ code: 'UnknownParameter', message: `The parameter ${name} is not recognized` });
    }
  });

  it('answers InvalidAction (400) for an unknown action', async () => {
    const r = await sigv4(cloud.endpoint, cloud.admin, { Action: 'LaunchRockets', Version: '2016-11-15' });
    expect(r.status).toBe(400);
    const e = await errorOf(r);
    expect(e.code).toBe('InvalidAction');
    expect(e.message).toContain('LaunchRockets');
    expect(e.requestId).toBe(r.headers['x-amzn-requestid']);
  });

  it('answers MissingParameter naming Action when there is none', async () => {
    const r = await sigv4(cloud.endpoint, cloud.admin, { Version: '2016-11-15' });
    expect(r.status).toBe(400);
    const e = await errorOf(r);
    expect(e.code).toBe('MissingParameter');
    expect(e.message).toMatch(/\bAction\b/);
  });

  it('answers MissingAuthenticationToken (401) for an unsigned request', async () => {
    const r = await send(cloud.endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=DescribeRegions' });
    expect(r.status).toBe(401);
    expect((await errorOf(r)).code).toBe('MissingAuthenticationToken');
  });

  it('refuses a body whose declared length exceeds the limit with 413, before reading it', async () => {
    const u = new URL(cloud.endpoint);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(LIMIT * 1000) } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('Action=DescribeRegions&'); // only a few bytes of the announced body are ever sent
    });
    expect(status).toBe(413);
  });

  it('refuses a chunked body that grows past the limit with 413', async () => {
    const u = new URL(cloud.endpoint);
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' } },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', (e) => reject(e));
      const chunk = 'Padding=' + 'x'.repeat(1000) + '&';
      let sent = 0;
      const pump = () => {
        while (sent < LIMIT * 4 && req.write(chunk)) sent += chunk.length;
        if (sent < LIMIT * 4) req.once('drain', pump);
        else req.end();
      };
      pump();
    });
    expect(r.status).toBe(413);
    expect(r.body).toContain('<Code>RequestEntityTooLarge</Code>');
  });

  it('accepts a body just under the limit', async () => {
    // padding in names the action takes (any other is UnknownParameter): filter values of 241 characters
    const params: Record<string, string> = { ...REGIONS, 'Filter.1.Name': 'endpoint' };
    for (let i = 1; new URLSearchParams(params).toString().length < LIMIT - 600; i++) params[`Filter.1.Value.${i}`] = `*${'x'.repeat(240)}`;
    params['Filter.1.Value.99'] = '*';
    expect(new URLSearchParams(params).toString().length).toBeGreaterThan(LIMIT - 600);
    const r = await sigv4(cloud.endpoint, cloud.admin, params);
    expect(r.status).toBe(200);
  });

  it('keeps /healthz', async () => {
    const r = await send(cloud.endpoint, { method: 'GET', path: '/healthz' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ status: 'ok', database: true, nats: true });
  });
});
