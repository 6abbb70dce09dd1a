import { readFileSync } from 'node:fs';
import { KOALA_VERSION, NodeHeartbeat, Subjects, listNodes } from './index.js';

describe('contracts', () => {
  it('builds subjects and refuses tokens that would break subject syntax', () => {
    expect(Subjects.nodeHeartbeat('koala-1a')).toBe('koala.v1.zone.koala-1a.node.heartbeat');
    expect(listNodes('koala-1a').subject).toBe('koala.v1.zone.koala-1a.cc.list-nodes');
    expect(() => Subjects.nodeCommand('koala-1a', 'node.*', 'run')).toThrow(/invalid node/);
    expect(() => Subjects.nodeHeartbeat('>')).toThrow(/invalid zone/);
  });

  it('validates heartbeats', () => {
    const ok = {
      node: 'n1',
      zone: 'z',
      version: '1',
      hypervisorUri: 'test:///default',
      total: { cores: 2, memoryMiB: 1024, diskGiB: 10 },
      free: { cores: 2, memoryMiB: 1024, diskGiB: 10 },
      domains: [],
      sentAt: new Date().toISOString(),
    };
    expect(NodeHeartbeat.parse(ok)).toEqual(ok);
    expect(() => NodeHeartbeat.parse({ ...ok, total: { cores: -1, memoryMiB: 1, diskGiB: 1 } })).toThrow();
  });

  it('reports the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    expect(KOALA_VERSION).toBe(pkg.version);
  });
});
