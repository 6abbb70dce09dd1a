import type { NodeHeartbeat } from '@koala/contracts';
import { NodeRegistry } from './node-registry.js';

const hb = (node: string, zone = 'z1', cores = 4, domains = 0): NodeHeartbeat => ({
  node,
  zone,
  version: '0.1.0',
  hypervisorUri: 'test:///default',
  total: { cores, memoryMiB: 8192, diskGiB: 100 },
  free: { cores, memoryMiB: 4096, diskGiB: 50 },
  domains: Array.from({ length: domains }, (_, k) => ({ name: `${node}-d${k}`, state: 'running' })),
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

  it('lists capacity with a domain count, not the domains', () => {
    const r = new NodeRegistry('z1', 10_000);
    r.record(hb('a', 'z1', 4, 3), t0);
    const [a] = r.list(t0);
    expect(a).toMatchObject({ node: 'a', domainCount: 3, state: 'up' });
    expect(a).not.toHaveProperty('domains');
  });

  it('gives placement the up nodes in name order with their free capacity, however they registered', () => {
    const r = new NodeRegistry('z1', 10_000);
    for (const n of ['c', 'a', 'b']) r.record(hb(n, 'z1', n === 'b' ? 8 : 4), t0);
    r.record(hb('a'), at(5_000)); // a known node again: order unchanged
    expect(r.upFree(at(12_000))).toEqual([{ node: 'a', free: { cores: 4, memoryMiB: 4096, diskGiB: 50 } }]);
    expect(r.upFree(at(1_000)).map((n) => [n.node, n.free.cores])).toEqual([
      ['a', 4],
      ['b', 8],
      ['c', 4],
    ]);
    expect(r.list(at(1_000)).map((n) => n.node)).toEqual(['a', 'b', 'c']);
  });

  describe('domainsPage', () => {
    // Nodes n0..n5 holding 0, 2, 3, 1, 4, 2 domains.
    const sizes = [0, 2, 3, 1, 4, 2];
    const registry = () => {
      const r = new NodeRegistry('z1', 10_000);
      for (const [k, n] of sizes.entries()) r.record(hb(`n${k}`, 'z1', 4, n), t0);
      r.record(hb('n6', 'z1', 4, 1), at(-20_000)); // long silent: listed, down
      return r;
    };
    const walk = (r: NodeRegistry, max: number) => {
      const pages: string[][] = [];
      let after: string | undefined;
      do {
        const p = r.domainsPage(at(1), after, max);
        pages.push(p.nodes.map((n) => n.node));
        after = p.next;
      } while (after !== undefined);
      return pages;
    };

    it('walks every node exactly once, whole nodes per page, within the domain budget', () => {
      expect(walk(registry(), 5)).toEqual([
        ['n0', 'n1', 'n2'],
        ['n3', 'n4'],
        ['n5', 'n6'],
      ]);
      expect(walk(registry(), 1000)).toEqual([['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6']]);
    });

    it('still makes progress when one node alone exceeds the budget', () => {
      expect(walk(registry(), 1)).toEqual([['n0'], ['n1'], ['n2'], ['n3'], ['n4'], ['n5'], ['n6']]);
    });

    it("carries each node's domains and state", () => {
      const p = registry().domainsPage(at(1), 'n3', 100);
      expect(p.next).toBeUndefined();
      expect(p.nodes.map((n) => [n.node, n.state, n.domains.length])).toEqual([
        ['n4', 'up', 4],
        ['n5', 'up', 2],
        ['n6', 'down', 1],
      ]);
      expect(p.nodes[0].domains[0]).toEqual({ name: 'n4-d0', state: 'running' });
    });

    it('answers an empty last page after the last node', () => {
      expect(registry().domainsPage(at(1), 'n6', 10)).toEqual({ nodes: [] });
    });
  });
});
