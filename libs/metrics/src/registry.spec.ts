import { request } from 'node:http';
import { escapeLabelValue, isLoopback, metricsAccessAllowed, PROMETHEUS_CONTENT_TYPE, Registry, startMetricsServer } from './index.js';

describe('Registry text exposition (0.0.4)', () => {
  it('renders counters, gauges and histograms exactly', async () => {
    const r = new Registry();
    const c = r.counter({ name: 'koala_requests_total', help: 'Requests.', labelNames: ['action', 'code'] });
    c.inc({ action: 'RunInstances', code: 'ok' });
    c.inc({ code: 'ok', action: 'RunInstances' }, 2);
    c.inc({ action: 'DescribeInstances', code: 'AuthFailure' });
    r.gauge({ name: 'koala_up', help: 'Always 1.' }).set(undefined, 1);
    r.counter({ name: 'koala_untouched_total', help: 'Never incremented.' });
    const h = r.histogram({ name: 'koala_latency_seconds', help: 'Latency.', labelNames: ['op'], buckets: [0.1, 1] });
    h.observe({ op: 'a' }, 0.05);
    h.observe({ op: 'a' }, 0.5);
    h.observe({ op: 'a' }, 3);
    expect(await r.metricsText()).toBe(
      [
        '# HELP koala_requests_total Requests.',
        '# TYPE koala_requests_total counter',
        'koala_requests_total{action="RunInstances",code="ok"} 3',
        'koala_requests_total{action="DescribeInstances",code="AuthFailure"} 1',
        '# HELP koala_up Always 1.',
        '# TYPE koala_up gauge',
        'koala_up 1',
        '# HELP koala_untouched_total Never incremented.',
        '# TYPE koala_untouched_total counter',
        'koala_untouched_total 0',
        '# HELP koala_latency_seconds Latency.',
        '# TYPE koala_latency_seconds histogram',
        'koala_latency_seconds_bucket{op="a",le="0.1"} 1',
        'koala_latency_seconds_bucket{op="a",le="1"} 2',
        'koala_latency_seconds_bucket{op="a",le="+Inf"} 3',
        'koala_latency_seconds_sum{op="a"} 3.55',
        'koala_latency_seconds_count{op="a"} 3',
        '',
      ].join('\n'),
    );
  });

  it('escapes help text and label values; formats special values', async () => {
    const r = new Registry();
    const g = r.gauge({ name: 'g', help: 'a \\ back\nslash', labelNames: ['v'] });
    g.set({ v: 'q"uo\\te\nnl' }, Infinity);
    g.set({ v: 'nan' }, NaN);
    g.set({ v: 'neg' }, -Infinity);
    g.set({ v: 'ü\u0000' }, -0.5);
    expect(await r.metricsText()).toBe(['# HELP g a \\\\ back\\nslash', '# TYPE g gauge', 'g{v="q\\"uo\\\\te\\nnl"} +Inf', 'g{v="nan"} NaN', 'g{v="neg"} -Inf', 'g{v="ü\u0000"} -0.5', ''].join('\n'));
    expect(escapeLabelValue('a\\"\n')).toBe('a\\\\\\"\\n');
  });

  it('refuses bad names, wrong labels, decreasing counters and mismatched re-registration', () => {
    const r = new Registry();
    expect(() => r.counter({ name: '1bad', help: '' })).toThrow(/metric name/);
    expect(() => r.counter({ name: 'x', help: '', labelNames: ['__x'] })).toThrow(/label name/);
    expect(() => r.histogram({ name: 'h', help: '', labelNames: ['le'] })).toThrow(/label name/);
    expect(() => r.histogram({ name: 'h2', help: '', buckets: [1, 1] })).toThrow(/increasing/);
    const c = r.counter({ name: 'c', help: '', labelNames: ['a'] });
    expect(() => c.inc({ b: 'x' })).toThrow(/takes labels/);
    expect(() => c.inc({ a: 'x', b: 'y' })).toThrow(/takes labels/);
    expect(() => c.inc({ a: 'x' }, -1)).toThrow(/only goes up/);
    expect(r.counter({ name: 'c', help: '', labelNames: ['a'] })).toBe(c);
    expect(() => r.gauge({ name: 'c', help: '', labelNames: ['a'] })).toThrow(/already registered/);
  });

  it('runs collectors before a scrape; a failing collector does not fail it', async () => {
    const r = new Registry();
    const g = r.gauge({ name: 'instances', help: 'By state.', labelNames: ['state'] });
    let n = 0;
    const remove = r.addCollector(() => {
      g.reset();
      g.set({ state: 'running' }, ++n);
    });
    r.addCollector(async () => {
      throw new Error('database down');
    });
    expect(await r.metricsText()).toContain('instances{state="running"} 1');
    expect(await r.metricsText()).toContain('instances{state="running"} 2');
    remove();
    expect(await r.metricsText()).toContain('instances{state="running"} 2');
  });

  it('times promises with an outcome label', async () => {
    const r = new Registry();
    const h = r.histogram({ name: 't', help: '', labelNames: ['op', 'outcome'], buckets: [10] });
    await h.time({ op: 'x' }, async () => 1);
    await expect(h.time({ op: 'x' }, async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(h.get({ op: 'x', outcome: 'ok' }).count).toBe(1);
    expect(h.get({ op: 'x', outcome: 'error' }).count).toBe(1);
  });
});

describe('metrics access', () => {
  it('allows loopback, and elsewhere only the configured bearer token', () => {
    for (const a of ['127.0.0.1', '127.9.8.7', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a)).toBe(true);
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', 'fe80::1', '', undefined]) expect(isLoopback(a)).toBe(false);
    expect(metricsAccessAllowed('203.0.113.9', undefined, undefined)).toBe(false);
    expect(metricsAccessAllowed('203.0.113.9', 'Bearer s3cret', undefined)).toBe(false);
    expect(metricsAccessAllowed('203.0.113.9', 'Bearer s3cret', 's3cret')).toBe(true);
    expect(metricsAccessAllowed('203.0.113.9', 'Bearer s3cre', 's3cret')).toBe(false);
    expect(metricsAccessAllowed('203.0.113.9', 'Basic s3cret', 's3cret')).toBe(false);
    expect(metricsAccessAllowed('203.0.113.9', ['Bearer s3cret'], 's3cret')).toBe(false);
  });
});

describe('metrics server (loopback)', () => {
  const get = (port: number, path: string, method = 'GET') =>
    new Promise<{ status: number; type?: string; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('serves GET /metrics and 404 elsewhere', async () => {
    const r = new Registry();
    r.counter({ name: 'koala_test_total', help: 'T.' }).inc();
    const s = await startMetricsServer({ port: 0, host: '127.0.0.1', registry: r });
    try {
      const ok = await get(s.port, '/metrics');
      expect(ok).toEqual({ status: 200, type: PROMETHEUS_CONTENT_TYPE, body: '# HELP koala_test_total T.\n# TYPE koala_test_total counter\nkoala_test_total 1\n' });
      expect((await get(s.port, '/metrics?x=1')).status).toBe(200);
      expect((await get(s.port, '/')).status).toBe(404);
      expect((await get(s.port, '/metrics', 'POST')).status).toBe(404);
    } finally {
      await s.close();
    }
  });
});
