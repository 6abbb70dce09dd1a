import { place, type NodeCapacity } from './placement.js';

const node = (name: string, cores: number, memoryMiB = 4096, diskGiB = 100): NodeCapacity => ({ node: name, free: { cores, memoryMiB, diskGiB } });
const small = { cores: 1, memoryMiB: 256, diskGiB: 2 };

describe('place', () => {
  it('GREEDY fills the first node before the next', () => {
    expect(place([node('a', 2), node('b', 2)], small, 3, 'GREEDY').nodes).toEqual(['a', 'a', 'b']);
  });

  it('ROUNDROBIN spreads and continues after the last node used, across calls', () => {
    const nodes = [node('a', 4), node('b', 4), node('c', 4)];
    const first = place(nodes, small, 2, 'ROUNDROBIN');
    expect(first.nodes).toEqual(['a', 'b']);
    const second = place(nodes, small, 2, 'ROUNDROBIN', first.cursor);
    expect(second.nodes).toEqual(['c', 'a']);
  });

  it('ROUNDROBIN skips full nodes', () => {
    expect(place([node('a', 0), node('b', 1), node('c', 2)], small, 3, 'ROUNDROBIN').nodes).toEqual(['b', 'c', 'c']);
  });

  it('places only as many as fit, on every resource', () => {
    expect(place([node('a', 8, 512)], small, 5, 'GREEDY').nodes).toEqual(['a', 'a']); // memory-bound
    expect(place([node('a', 8, 8192, 5)], small, 5, 'GREEDY').nodes).toEqual(['a', 'a']); // disk-bound
    expect(place([], small, 1, 'GREEDY').nodes).toEqual([]);
  });

  it('a cursor naming a vanished node starts from the first', () => {
    expect(place([node('a', 1), node('b', 1)], small, 1, 'ROUNDROBIN', 'zz').nodes).toEqual(['a']);
  });
});
