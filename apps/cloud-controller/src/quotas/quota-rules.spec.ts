import { loadConfig } from '@koala/config';
import { decideInstances, decideQuota, decideRules, defaultLimits, effectiveLimits, QUOTA_NAMES, type QuotaLimits } from './quota-rules.js';

const limits: QuotaLimits = {
  instances: 5,
  vcpus: 8,
  volumes: 3,
  'volume-gib': 100,
  snapshots: 2,
  images: 4,
  'image-fetches': 1,
  'key-pairs': 2,
  'security-groups': 3,
  'rules-per-group': 10,
  addresses: 1,
};
const code = (e: { code: string } | undefined) => e?.code;

describe('quota decisions', () => {
  it('defaults come from the configuration, overrides replace them, unknown names are ignored', () => {
    const d = defaultLimits(loadConfig({ KOALA_QUOTA_INSTANCES: '7', KOALA_ADDRESSES_PER_ACCOUNT: '3' }));
    expect(Object.keys(d).sort()).toEqual([...QUOTA_NAMES].sort());
    expect([d.instances, d.addresses, d.vcpus]).toEqual([7, 3, 64]);
    const e = effectiveLimits(d, [
      { name: 'vcpus', value: 2 },
      { name: 'bogus', value: 1 },
    ]);
    expect([e.vcpus, e.instances, (e as Record<string, number>).bogus]).toEqual([2, 7, undefined]);
  });

  it('volumes: count and total GiB, both VolumeLimitExceeded', () => {
    expect(decideQuota({ volumes: 2, volumeGiB: 90 }, { kind: 'volume', count: 1, gib: 10 }, limits)).toBeUndefined();
    expect(code(decideQuota({ volumes: 3, volumeGiB: 0 }, { kind: 'volume', count: 1, gib: 1 }, limits))).toBe('VolumeLimitExceeded');
    const gib = decideQuota({ volumes: 0, volumeGiB: 90 }, { kind: 'volume', count: 1, gib: 11 }, limits);
    expect([gib?.code, gib?.message]).toEqual(['VolumeLimitExceeded', expect.stringContaining('100 GiB')]);
  });

  it('snapshots, key pairs, groups, addresses: the next one beyond the limit is refused with its code', () => {
    expect(decideQuota({ snapshots: 1 }, { kind: 'snapshot' }, limits)).toBeUndefined();
    expect(code(decideQuota({ snapshots: 2 }, { kind: 'snapshot' }, limits))).toBe('SnapshotLimitExceeded');
    expect(code(decideQuota({ keyPairs: 2 }, { kind: 'key-pair' }, limits))).toBe('ResourceLimitExceeded');
    expect(code(decideQuota({ securityGroups: 3 }, { kind: 'security-group' }, limits))).toBe('SecurityGroupLimitExceeded');
    expect(code(decideQuota({ addresses: 1 }, { kind: 'address' }, limits))).toBe('AddressLimitExceeded');
    expect(code(decideQuota({ addresses: 0 }, { kind: 'address' }, limits))).toBeUndefined();
  });

  it('images: the count, and for a fetch the fetches running at once', () => {
    expect(decideQuota({ images: 3, imageFetches: 0 }, { kind: 'image', fetch: true }, limits)).toBeUndefined();
    expect(code(decideQuota({ images: 4, imageFetches: 0 }, { kind: 'image', fetch: false }, limits))).toBe('ResourceLimitExceeded');
    const f = decideQuota({ images: 1, imageFetches: 1 }, { kind: 'image', fetch: true }, limits);
    expect([f?.code, f?.message]).toEqual(['ResourceLimitExceeded', expect.stringContaining('fetched at once')]);
    expect(decideQuota({ images: 1, imageFetches: 1 }, { kind: 'image', fetch: false }, limits)).toBeUndefined();
  });

  it('a limit of 0 refuses everything; missing usage counts as none', () => {
    expect(code(decideQuota({}, { kind: 'key-pair' }, { ...limits, 'key-pairs': 0 }))).toBe('ResourceLimitExceeded');
    expect(decideQuota({}, { kind: 'key-pair' }, limits)).toBeUndefined();
  });

  it('rules per group and direction', () => {
    expect(decideRules(10, limits)).toBeUndefined();
    expect(code(decideRules(11, limits))).toBe('RulesPerSecurityGroupLimitExceeded');
  });

  describe('RunInstances', () => {
    it('launches up to MaxCount within both the count and the vCPU headroom', () => {
      expect(decideInstances({ instances: 0, vcpus: 0 }, { min: 1, max: 3, vcpus: 2 }, limits)).toEqual({ count: 3 });
      expect(decideInstances({ instances: 3, vcpus: 0 }, { min: 1, max: 5, vcpus: 1 }, limits)).toEqual({ count: 2 }); // by count
      expect(decideInstances({ instances: 0, vcpus: 2 }, { min: 1, max: 5, vcpus: 2 }, limits)).toEqual({ count: 3 }); // by vCPUs
    });
    it('InstanceLimitExceeded when fewer than MinCount fit by count', () => {
      const d = decideInstances({ instances: 4, vcpus: 0 }, { min: 2, max: 2, vcpus: 1 }, limits);
      expect('error' in d && [d.error.code, d.error.message]).toEqual(['InstanceLimitExceeded', expect.stringContaining('1 more')]);
    });
    it('VcpuLimitExceeded when fewer than MinCount fit by vCPUs', () => {
      const d = decideInstances({ instances: 0, vcpus: 6 }, { min: 1, max: 1, vcpus: 4 }, limits);
      expect('error' in d && d.error.code).toBe('VcpuLimitExceeded');
      // usage already above a lowered limit: nothing fits, never a negative count
      const over = decideInstances({ instances: 9, vcpus: 20 }, { min: 1, max: 1, vcpus: 1 }, limits);
      expect('error' in over && over.error.code).toBe('InstanceLimitExceeded');
    });
  });
});
