import { ConfigError, loadConfig, SCHEMA } from './schema.js';

describe('loadConfig', () => {
  it('applies documented defaults', () => {
    const c = loadConfig({});
    expect(c.home).toBe('/var/lib/koala');
    expect(c.apiPort).toBe(8773);
    expect(c.schedulerPolicy).toBe('GREEDY');
    expect(c.masterKey).toBeUndefined();
    expect(c.nodeName.length).toBeGreaterThan(0);
  });

  it('reads the network settings', () => {
    const c = loadConfig({});
    expect(c.zoneSubnets).toEqual({ '*': '172.31.0.0/20' });
    expect(c.associatePublicIp).toBe(true);
    expect(c.dnsSuffix).toBe('koala-1.compute.internal');
    const d = loadConfig({ KOALA_REGION: 'north-2', KOALA_ZONE_SUBNETS: 'north-2a=10.1.0.0/24, *=10.9.0.0/16', KOALA_ASSOCIATE_PUBLIC_IP: 'false' });
    expect(d.zoneSubnets).toEqual({ 'north-2a': '10.1.0.0/24', '*': '10.9.0.0/16' });
    expect(d.associatePublicIp).toBe(false);
    expect(d.dnsSuffix).toBe('north-2.compute.internal');
  });

  it('parses given values', () => {
    const c = loadConfig({ KOALA_API_PORT: '9000', KOALA_SCHEDULER_POLICY: 'roundrobin', KOALA_HOME: '/tmp/k' });
    expect(c.apiPort).toBe(9000);
    expect(c.schedulerPolicy).toBe('ROUNDROBIN');
    expect(c.home).toBe('/tmp/k');
    expect(c.publicEndpoint).toBe('http://127.0.0.1:9000/'); // follows the port unless given
    expect(loadConfig({}).publicEndpoint).toBe('http://127.0.0.1:8773/');
    expect(loadConfig({ KOALA_API_PORT: '9000', KOALA_PUBLIC_ENDPOINT: 'https://ec2.example.org/' }).publicEndpoint).toBe('https://ec2.example.org/');
  });

  it('reads KOALA_IMAGE_FETCH_ALLOW as a list of CIDRs and host[:port] entries', () => {
    expect(loadConfig({}).imageFetchAllow).toEqual([]);
    expect(loadConfig({ KOALA_IMAGE_FETCH_ALLOW: ' 10.1.0.0/16, fd00::/8,mirror.lan,127.0.0.1:8080,[::1]:9000 ' }).imageFetchAllow).toEqual([
      '10.1.0.0/16',
      'fd00::/8',
      'mirror.lan',
      '127.0.0.1:8080',
      '[::1]:9000',
    ]);
    expect(loadConfig({ KOALA_IMAGE_FETCH_ALLOW: '::1' }).imageFetchAllow).toEqual(['::1']);
    for (const bad of ['http://x/', '10.0.0.0/33', 'fd00::/129', '1.2.3/8', 'x/8', 'host:0', 'host:70000', '[nothex]:80', 'a b']) {
      expect(() => loadConfig({ KOALA_IMAGE_FETCH_ALLOW: `mirror.lan,${bad}` })).toThrow(/CIDRs or host\[:port\]/);
    }
  });

  it.each([
    ['KOALA_API_PORT', 'eighty', /must be an integer/],
    ['KOALA_API_PORT', '70000', /between 1 and 65535/],
    ['KOALA_HOME', 'relative/dir', /absolute path/],
    ['KOALA_DATABASE_URL', 'mysql://x/y', /must use postgres/],
    ['KOALA_DATABASE_URL', 'not a url', /must be a URL/],
    ['KOALA_NATS_URL', 'http://127.0.0.1:4222', /must use nats/],
    ['KOALA_SCHEDULER_POLICY', 'RANDOM', /GREEDY, ROUNDROBIN/],
    ['KOALA_LOG_LEVEL', 'loud', /one of/],
    ['KOALA_PUBLIC_IP_RANGE', '10.0.0.0/33', /CIDR/],
    ['KOALA_ZONE', 'Zone_A', /lower-case/],
    ['KOALA_REGION', '', /lower-case/],
    ['KOALA_ZONE_SUBNETS', 'a=10.0.0.0/8', /\/16 to \/28/],
    ['KOALA_ZONE_SUBNETS', 'a=10.0.0.1/24', /host bits/],
    ['KOALA_ZONE_SUBNETS', '10.0.0.0/24', /zone=cidr/],
    ['KOALA_ZONE_SUBNETS', 'a=10.0.0.0/24,a=10.0.1.0/24', /twice/],
    ['KOALA_ASSOCIATE_PUBLIC_IP', 'maybe', /true or false/],
    ['KOALA_DNS_SUFFIX', 'Bad Suffix', /DNS name/],
  ])('rejects %s=%s naming the variable', (env, value, reason) => {
    let err: unknown;
    try {
      loadConfig({ [env]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(env);
    expect((err as Error).message).toContain(env);
    expect((err as Error).message).toMatch(reason);
  });

  it('documents every variable', () => {
    for (const spec of Object.values(SCHEMA)) {
      expect(spec.env).toMatch(/^KOALA_[A-Z_]+$/);
      expect(spec.doc.length).toBeGreaterThan(10);
    }
  });
});

describe('README', () => {
  it('documents every variable', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const missing = Object.values(SCHEMA)
      .map((s) => s.env)
      .filter((env) => !readme.includes(`\`${env}\``));
    expect(missing).toEqual([]);
  });
});

describe('EC2 endpoint TLS and presigning', () => {
  it('defaults the public endpoint to https when the endpoint serves TLS, and bounds KOALA_PRESIGN_MAX_SECONDS by 7 days', async () => {
    const { loadConfig } = await import('./schema.js');
    expect(loadConfig({}).publicEndpoint).toBe('http://127.0.0.1:8773/');
    const tls = loadConfig({ KOALA_API_TLS_CERT: '/etc/koala/api.pem', KOALA_API_TLS_KEY: '/etc/koala/api.key' });
    expect([tls.publicEndpoint, tls.apiTlsCert, tls.apiTlsKey]).toEqual(['https://127.0.0.1:8773/', '/etc/koala/api.pem', '/etc/koala/api.key']);
    expect(loadConfig({}).presignMaxSeconds).toBe(604800);
    expect(() => loadConfig({ KOALA_PRESIGN_MAX_SECONDS: '604801' })).toThrow(/KOALA_PRESIGN_MAX_SECONDS/);
    expect(() => loadConfig({ KOALA_API_TLS_CERT: 'relative.pem' })).toThrow(/KOALA_API_TLS_CERT/);
  });
});
