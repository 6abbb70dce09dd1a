// Load generator for bench/api-clients.bench.ts, run as its own process so it never shares the
// CLC's (or jest's) event loop. Input: one JSON argument
//   { endpoint, region, clients, seconds, credentials: [{ accessKeyId, secretAccessKey }] }
// N clients loop for T seconds over the Describe mix, each request signed (SigV4, aws4) with
// the credentials of its client (round-robin over the set), on keep-alive connections.
// Output: one JSON line { n, errors, seconds, rps, p50, p99, max, byAction: { action: { n, p50, p99 } }, workers }.
// Bounded: it stops by itself after `seconds` (+ the in-flight requests, each with a timeout).
import http from 'node:http';
import aws4 from 'aws4';

const MIX = ['DescribeInstances', 'DescribeVolumes', 'DescribeSecurityGroups', 'DescribeKeyPairs', 'DescribeImages', 'DescribeAvailabilityZones', 'DescribeRegions'];
const opts = JSON.parse(process.argv[2]);
const url = new URL(opts.endpoint);
const agent = new http.Agent({ keepAlive: true, maxSockets: opts.clients });
const lat = [];
const byAction = Object.fromEntries(MIX.map((a) => [a, []]));
const workers = {};
let errors = 0;
let firstError;

function call(action, creds) {
  const body = `Action=${action}&Version=2016-11-15`;
  const req = aws4.sign({ host: url.host, path: '/', method: 'POST', service: 'ec2', region: opts.region, body, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' } }, creds);
  return new Promise((resolve) => {
    const r = http.request({ hostname: url.hostname, port: url.port, path: '/', method: 'POST', headers: req.headers, agent, timeout: 30_000 }, (res) => {
      let len = 0;
      res.on('data', (c) => (len += c.length));
      res.on('end', () => {
        const w = res.headers['x-koala-worker'];
        if (w !== undefined) workers[w] = (workers[w] ?? 0) + 1;
        resolve(res.statusCode === 200 ? null : `HTTP ${res.statusCode}`);
      });
    });
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', (e) => resolve(e.message));
    r.end(body);
  });
}

const start = performance.now();
const until = start + opts.seconds * 1000;
await Promise.all(Array.from({ length: opts.clients }, async (_, i) => {
  const creds = opts.credentials[i % opts.credentials.length];
  let k = i;
  while (performance.now() < until) {
    const action = MIX[k++ % MIX.length];
    const t0 = performance.now();
    const err = await call(action, creds);
    if (err) {
      errors++;
      firstError ??= `${action}: ${err}`;
    } else {
      lat.push(performance.now() - t0);
      byAction[action].push(performance.now() - t0);
    }
  }
}));
const seconds = (performance.now() - start) / 1000;
agent.destroy();
lat.sort((a, b) => a - b);
const q = (p, l = lat) => (l.length ? l[Math.min(l.length - 1, Math.floor(p * l.length))] : NaN);
for (const a of MIX) byAction[a].sort((x, y) => x - y);
const perAction = Object.fromEntries(MIX.map((a) => [a, { n: byAction[a].length, p50: Math.round(q(0.5, byAction[a])), p99: Math.round(q(0.99, byAction[a])) }]));
process.stdout.write(JSON.stringify({ n: lat.length, errors, firstError, seconds, rps: lat.length / seconds, p50: q(0.5), p99: q(0.99), max: lat.at(-1) ?? NaN, byAction: perAction, workers }) + '\n');
