/**
 * Per-account quotas as pure functions (no I/O): what each quota is called, its default from the
 * configuration, and whether a request fits an account's usage, with the EC2 error when not.
 * QuotaService gathers the usage (from the real rows, under a per-account lock) and the limits.
 */
import { Ec2Error } from '@koala/ec2-query';

/** Quota names as `koala quota set ACCOUNT NAME VALUE` spells them. */
export const QUOTA_NAMES = ['instances', 'vcpus', 'volumes', 'volume-gib', 'snapshots', 'images', 'image-fetches', 'key-pairs', 'security-groups', 'rules-per-group', 'addresses'] as const;
export type QuotaName = (typeof QUOTA_NAMES)[number];
export type QuotaLimits = Readonly<Record<QuotaName, number>>;

/** The largest value a quota may take (a bigint column; the counts are far below). */
export const MAX_QUOTA_VALUE = 1_000_000_000;

export function isQuotaName(s: string): s is QuotaName {
  return (QUOTA_NAMES as readonly string[]).includes(s);
}

/** The configuration variables that give the defaults. */
export interface QuotaDefaultsConfig {
  quotaInstances: number;
  quotaVcpus: number;
  quotaVolumes: number;
  quotaVolumeGiB: number;
  quotaSnapshots: number;
  quotaImages: number;
  quotaImageFetches: number;
  quotaKeyPairs: number;
  quotaSecurityGroups: number;
  quotaRulesPerGroup: number;
  addressesPerAccount: number;
}

export function defaultLimits(c: QuotaDefaultsConfig): QuotaLimits {
  return {
    instances: c.quotaInstances,
    vcpus: c.quotaVcpus,
    volumes: c.quotaVolumes,
    'volume-gib': c.quotaVolumeGiB,
    snapshots: c.quotaSnapshots,
    images: c.quotaImages,
    'image-fetches': c.quotaImageFetches,
    'key-pairs': c.quotaKeyPairs,
    'security-groups': c.quotaSecurityGroups,
    'rules-per-group': c.quotaRulesPerGroup,
    addresses: c.addressesPerAccount,
  };
}

/** The defaults with an account's overrides applied (unknown names in the table are ignored). */
export function effectiveLimits(defaults: QuotaLimits, overrides: ReadonlyArray<{ name: string; value: number }>): QuotaLimits {
  const out: Record<QuotaName, number> = { ...defaults };
  for (const o of overrides) if (isQuotaName(o.name)) out[o.name] = o.value;
  return out;
}

/** What a create adds. Only the quotas it names are checked. */
export type QuotaRequest =
  { kind: 'volume'; count: number; gib: number } | { kind: 'snapshot' } | { kind: 'image'; fetch: boolean } | { kind: 'key-pair' } | { kind: 'security-group' } | { kind: 'address' };

/** What an account holds now (the fields a request's kind needs). */
export interface QuotaUsage {
  instances?: number;
  vcpus?: number;
  volumes?: number;
  volumeGiB?: number;
  snapshots?: number;
  images?: number;
  imageFetches?: number;
  keyPairs?: number;
  securityGroups?: number;
  addresses?: number;
}

const exceeded = (used: number | undefined, add: number, limit: number) => (used ?? 0) + add > limit;

/** undefined when the request fits, else the error EC2 answers for that limit. */
export function decideQuota(usage: QuotaUsage, request: QuotaRequest, limits: QuotaLimits): Ec2Error | undefined {
  switch (request.kind) {
    case 'volume':
      if (exceeded(usage.volumes, request.count, limits.volumes)) return new Ec2Error('VolumeLimitExceeded', `You have reached the maximum number of volumes (${limits.volumes}) for this account.`);
      if (exceeded(usage.volumeGiB, request.gib, limits['volume-gib'])) {
        return new Ec2Error('VolumeLimitExceeded', `You have reached your volume storage limit of ${limits['volume-gib']} GiB (in use: ${usage.volumeGiB ?? 0} GiB, requested: ${request.gib} GiB).`);
      }
      return undefined;
    case 'snapshot':
      return exceeded(usage.snapshots, 1, limits.snapshots)
        ? new Ec2Error('SnapshotLimitExceeded', `You have reached the maximum number of snapshots (${limits.snapshots}) for this account.`)
        : undefined;
    case 'image':
      if (exceeded(usage.images, 1, limits.images)) return new Ec2Error('ResourceLimitExceeded', `You have reached the maximum number of images (${limits.images}) for this account.`);
      if (request.fetch && exceeded(usage.imageFetches, 1, limits['image-fetches'])) {
        return new Ec2Error(
          'ResourceLimitExceeded',
          `You have reached the maximum number of images being fetched at once (${limits['image-fetches']}); wait for a pending image to become available or failed.`,
        );
      }
      return undefined;
    case 'key-pair':
      return exceeded(usage.keyPairs, 1, limits['key-pairs'])
        ? new Ec2Error('ResourceLimitExceeded', `You have reached the maximum number of key pairs (${limits['key-pairs']}) for this account.`)
        : undefined;
    case 'security-group':
      return exceeded(usage.securityGroups, 1, limits['security-groups'])
        ? new Ec2Error('SecurityGroupLimitExceeded', `You have reached the maximum number of security groups (${limits['security-groups']}) for this account.`)
        : undefined;
    case 'address':
      return exceeded(usage.addresses, 1, limits.addresses) ? new Ec2Error('AddressLimitExceeded', 'The maximum number of addresses has been reached.') : undefined;
  }
}

/** Rules a group may hold per direction (ingress and egress are counted apart, as EC2 does). */
export function decideRules(rulesAfter: number, limits: QuotaLimits): Ec2Error | undefined {
  return rulesAfter > limits['rules-per-group'] ? new Ec2Error('RulesPerSecurityGroupLimitExceeded', 'The maximum number of rules per security group has been reached.') : undefined;
}

/**
 * RunInstances: how many of MinCount..MaxCount instances (each `vcpus`) fit, as EC2 launches as
 * many as it can up to MaxCount when at least MinCount fit; else InstanceLimitExceeded (count) or
 * VcpuLimitExceeded (vCPUs).
 */
export function decideInstances(usage: Pick<QuotaUsage, 'instances' | 'vcpus'>, want: { min: number; max: number; vcpus: number }, limits: QuotaLimits): { count: number } | { error: Ec2Error } {
  const byCount = Math.max(0, limits.instances - (usage.instances ?? 0));
  const byVcpus = want.vcpus > 0 ? Math.max(0, Math.floor((limits.vcpus - (usage.vcpus ?? 0)) / want.vcpus)) : Number.MAX_SAFE_INTEGER;
  if (byCount < want.min) {
    return { error: new Ec2Error('InstanceLimitExceeded', `Your quota allows for ${byCount} more running instance(s). You requested at least ${want.min}.`) };
  }
  if (byVcpus < want.min) {
    return {
      error: new Ec2Error(
        'VcpuLimitExceeded',
        `You have requested more vCPU capacity than your current vCPU limit of ${limits.vcpus} allows for the instance bucket that the specified instance type belongs to (in use: ${usage.vcpus ?? 0}, requested: ${want.min * want.vcpus}).`,
      ),
    };
  }
  return { count: Math.min(want.max, byCount, byVcpus) };
}
