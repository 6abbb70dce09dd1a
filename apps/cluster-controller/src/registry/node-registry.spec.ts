import type { NodeHeartbeat } from '@koala/contracts';
import { NodeRegistry } from './node-registry.js';

const hb = (node: string, zone = 'z1', cores = 4): NodeHeartbeat => ({
  node,
  zone,
  version: '0.1.0',
  hypervisorUri: 'test:///default',
  total: { cores, memoryMiB: 8192, diskGiB: 100 },
  free: { cores, memoryMiB: 4096, diskGiB: 50 },
  domains: [],
  sentAt: new Date(0).toISOString(),
});

describe('NodeRegistry', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const at = (ms: number) => new Date(t0.getTime() + ms);

  it('keeps nodes of its own zone only', () => {
    const r = new NodeRegistry('z1', 10_000);
    expect(r.record(hb('a'), t0)).toBe(true);
    expect(r.record(hb('b', 'z2'), t0)).toBe(false);
    expect(r.list(t0).map((n) => n.node)).toEqual(['a']);
  });

  it('marks a silent node down and revives it on its next heartbeat', () => {
    const r = new NodeRegistry('z1', 10_000);
    r.record(hb('a'), t0);
    expect(r.list(at(10_000))[0].state).toBe('up');
    expect(r.list(at(10_001))[0].state).toBe('down');
    expect(r.isUp('a', at(10_000))).toBe(true);
    expect(r.isUp('a', at(10_001))).toBe(false);
    expect(r.isUp('nobody', at(0))).toBe(false);
    r.record(hb('a'), at(20_000));
    expect(r.list(at(20_001))[0].state).toBe('up');
  });

  it('sums capacity over nodes that are up', () => {
    const r = new NodeRegistry('z1', 10_000);
    r.record(hb('a', 'z1', 2), t0);
    r.record(hb('b', 'z1', 6), at(5_000));
    expect(r.capacity(at(1_000))).toMatchObject({ nodes: 2, nodesUp: 2, total: { cores: 8 } });
    expect(r.capacity(at(12_000))).toMatchObject({ nodes: 2, nodesUp: 1, total: { cores: 6, memoryMiB: 8192 }, free: { cores: 6 } });
  });
});
