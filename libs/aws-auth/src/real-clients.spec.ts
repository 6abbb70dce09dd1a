// Round trip with real EC2 clients (AWS SDK v3 and boto3) against a tiny HTTP server built
// from @koala/ec2-query + @koala/aws-auth: signatures verify, XML parses, errors map to codes.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { EC2Client, DescribeKeyPairsCommand, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { EC2_XML_CONTENT_TYPE, Ec2Error, Params, applyFilters, paginate, parseQueryParams, readActionAndVersion, readFilters, renderError, renderResponse } from '@koala/ec2-query';
import { verifyRequest } from './verify.js';

const run = promisify(execFile);
const AKID = 'AKIAKOALATEST0000001';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

const KEYS = Array.from({ length: 7 }, (_, i) => ({
  keyPairId: `key-0000000000000000${i}`,
  keyName: `k${i}`,
  keyFingerprint: 'aa:bb',
  tags: i % 2 ? { team: 'odd' } : { team: 'even' },
  created: new Date(Date.UTC(2026, 0, 1 + i)),
}));

let server: Server;
let endpoint: string;
let n = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const rid = `rid-${++n}`;
      try {
        const rawBody = Buffer.concat(chunks);
        const [path, query = ''] = (req.url ?? '/').split('?', 2) as [string, string?];
        await verifyRequest({ method: req.method ?? 'GET', path, query, headers: req.headers, rawBody }, async (id) => (id === AKID ? { secret: SECRET, active: true } : undefined), new Date());
        const p = new Params({ ...parseQueryParams(rawBody), ...parseQueryParams(query) });
        const { action, version } = readActionAndVersion(p);
        if (action === 'DescribeKeyPairs') {
          const names = p.list('KeyName');
          const found = applyFilters(
            KEYS.filter((k) => names.length === 0 || names.includes(k.keyName)),
            readFilters(p),
            { 'key-name': (k) => k.keyName, fingerprint: (k) => k.keyFingerprint },
            (k) => k.tags,
          );
          const out = {
            keySet: found.map((k) => ({
              keyPairId: k.keyPairId,
              keyName: k.keyName,
              keyFingerprint: k.keyFingerprint,
              createTime: k.created,
              tagSet: Object.entries(k.tags).map(([key, value]) => ({ key, value })),
            })),
          };
          res.writeHead(200, { 'content-type': EC2_XML_CONTENT_TYPE, 'x-amzn-requestid': rid });
          res.end(renderResponse(action, version, rid, out));
          return;
        }
        if (action === 'DescribeInstances') {
          const { page, nextToken } = paginate(KEYS, { maxResults: p.int('MaxResults'), nextToken: p.str('NextToken') });
          const out = {
            reservationSet: page.map((k) => ({ reservationId: `r-${k.keyPairId.slice(4)}`, instancesSet: [] })),
            nextToken,
          };
          res.writeHead(200, { 'content-type': EC2_XML_CONTENT_TYPE, 'x-amzn-requestid': rid });
          res.end(renderResponse(action, version, rid, out));
          return;
        }
        throw Ec2Error.invalidAction(action);
      } catch (e) {
        const r = renderError(e, rid);
        res.writeHead(r.status, { 'content-type': EC2_XML_CONTENT_TYPE, 'x-amzn-requestid': rid });
        res.end(r.body);
      }
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((ok) => server.close(ok));
});

function sdk(secret = SECRET, region = 'undefined-1234') {
  return new EC2Client({ endpoint, region, credentials: { accessKeyId: AKID, secretAccessKey: secret }, maxAttempts: 1 });
}

describe('AWS SDK v3 (client-ec2)', () => {
  it('signs, and parses our XML (filters, tags, dates)', async () => {
    const r = await sdk().send(
      new DescribeKeyPairsCommand({
        Filters: [
          { Name: 'tag:team', Values: ['odd'] },
          { Name: 'key-name', Values: ['k[13]', 'k?'] },
        ],
      }),
    );
    expect(r.KeyPairs!.map((k) => k.KeyName)).toEqual(['k1', 'k3', 'k5']);
    expect(r.KeyPairs![0]!.CreateTime).toEqual(new Date(Date.UTC(2026, 0, 2)));
    expect(r.KeyPairs![0]!.Tags).toEqual([{ Key: 'team', Value: 'odd' }]);
    expect(r.$metadata.httpStatusCode).toBe(200);
    expect(r.$metadata.requestId).toMatch(/^rid-/);
  });

  it('paginates to the end', async () => {
    const ids: string[] = [];
    let NextToken: string | undefined;
    do {
      const r = await sdk().send(new DescribeInstancesCommand({ MaxResults: 5, NextToken }));
      ids.push(...r.Reservations!.map((x) => x.ReservationId!));
      NextToken = r.NextToken;
    } while (NextToken);
    expect(ids).toHaveLength(7);
  });

  it('sees our error codes', async () => {
    const bad = await sdk('x'.repeat(40))
      .send(new DescribeKeyPairsCommand({}))
      .catch((e) => e);
    expect(bad.name).toBe('SignatureDoesNotMatch');
    expect(bad.$metadata.httpStatusCode).toBe(403);
    const filt = await sdk()
      .send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'nope', Values: ['x'] }] }))
      .catch((e) => e);
    expect(filt.name).toBe('InvalidParameterValue');
    expect(filt.message).toBe("The filter 'nope' is invalid");
  });
});

const BOTO = `
import sys, json, boto3, botocore.config
from botocore.exceptions import ClientError
ep, akid, secret = sys.argv[1:4]
c = boto3.client('ec2', endpoint_url=ep, region_name='eucalyptus', aws_access_key_id=akid, aws_secret_access_key=secret,
                 config=botocore.config.Config(retries={'max_attempts': 0}))
out = {}
r = c.describe_key_pairs(KeyNames=['k2', 'k4'])
out['names'] = [k['KeyName'] for k in r['KeyPairs']]
out['pages'] = sum(len(p['Reservations']) for p in c.get_paginator('describe_instances').paginate(PaginationConfig={'PageSize': 5}))
try:
    c.describe_key_pairs(Filters=[{'Name': 'bogus', 'Values': ['x']}])
except ClientError as e:
    out['err'] = [e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode']]
print(json.dumps(out))
`;

describe('boto3', () => {
  it('signs (SigV4), parses, paginates and maps errors', async () => {
    const { stdout } = await run('python3', ['-c', BOTO, endpoint, AKID, SECRET]);
    expect(JSON.parse(stdout)).toEqual({ names: ['k2', 'k4'], pages: 7, err: ['InvalidParameterValue', 400] });
  });
});
