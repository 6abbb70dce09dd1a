import { Inject, Injectable } from '@nestjs/common';
import { KOALA_CONFIG } from '@koala/config';
import { InstanceTypesService } from '../instance-types/instance-types.service.js';
import {
  decideInstances,
  decideQuota,
  decideRules,
  defaultLimits,
  effectiveLimits,
  isQuotaName,
  MAX_QUOTA_VALUE,
  QUOTA_NAMES,
  type QuotaDefaultsConfig,
  type QuotaLimits,
  type QuotaName,
  type QuotaRequest,
} from './quota-rules.js';
import { QUOTAS_STORE, QuotasRepository, type QuotasStore, type Tx, type UsageKind } from './quotas.repository.js';

/** Who creates: the admin account (the operator's) is not subject to quotas. */
export interface QuotaCaller {
  id: string;
  isAdmin: boolean;
}

const USAGE_OF: Record<QuotaRequest['kind'], Exclude<UsageKind, 'instances'>> = {
  volume: 'volumes',
  snapshot: 'snapshots',
  image: 'images',
  'key-pair': 'key-pairs',
  'security-group': 'security-groups',
  address: 'addresses',
};

export class QuotaUsageError extends Error {}

/**
 * Per-account quotas: limits are the KOALA_QUOTA_* defaults overridden per account
 * (`koala quota set`). Creates call `enforce`/`admitInstances` inside their own transaction,
 * before inserting: the per-account lock taken there serialises an account's creates, so two
 * concurrent requests never both pass on the same headroom. Take it before any other lock of the
 * transaction (RunInstances and AllocateAddress then take the address pool's): one order, no
 * deadlock. `limitsOf` is for reporting
 * (DescribeAccountAttributes).
 */
@Injectable()
export class QuotaService {
  private readonly defaults: QuotaLimits;

  constructor(
    @Inject(QUOTAS_STORE) private readonly repo: QuotasStore,
    @Inject(KOALA_CONFIG) config: QuotaDefaultsConfig,
    @Inject(InstanceTypesService) private readonly types: Pick<InstanceTypesService, 'lookup'>,
  ) {
    this.defaults = defaultLimits(config);
  }

  /** The account's limits: defaults with its overrides. */
  async limitsOf(accountId: string, tx?: Tx): Promise<QuotaLimits> {
    return effectiveLimits(this.defaults, await this.repo.overrides(accountId, tx));
  }

  /** Throws the EC2 error when `request` does not fit; call inside the create's transaction. */
  async enforce(tx: Tx, caller: QuotaCaller, request: QuotaRequest): Promise<void> {
    if (caller.isAdmin) return;
    await this.repo.lockAccount(tx, caller.id);
    const [limits, usage] = await Promise.all([this.limitsOf(caller.id, tx), this.repo.usage(tx, caller.id, [USAGE_OF[request.kind]])]);
    const error = decideQuota(usage, request, limits);
    if (error) throw error;
  }

  /** Rules per group and direction after an authorize (the group row is locked by the caller). */
  async enforceRules(tx: Tx, caller: QuotaCaller, groupOwnerId: string, rulesAfter: number): Promise<void> {
    if (caller.isAdmin && caller.id === groupOwnerId) return;
    const error = decideRules(rulesAfter, await this.limitsOf(groupOwnerId, tx));
    if (error) throw error;
  }

  /** RunInstances: how many of min..max instances of `instanceType` may launch (throws when not min). */
  async admitInstances(tx: Tx, caller: QuotaCaller, want: { min: number; max: number; instanceType: string }): Promise<number> {
    if (caller.isAdmin) return want.max;
    await this.repo.lockAccount(tx, caller.id);
    const [limits, byType] = await Promise.all([this.limitsOf(caller.id, tx), this.repo.instancesByType(tx, caller.id)]);
    const vcpusOf = (t: string) => this.types.lookup(t)?.vcpus ?? 1; // a type since removed from the table still counts
    const usage = { instances: byType.reduce((n, r) => n + r.count, 0), vcpus: byType.reduce((n, r) => n + r.count * vcpusOf(r.instanceType), 0) };
    const d = decideInstances(usage, { min: want.min, max: want.max, vcpus: vcpusOf(want.instanceType) }, limits);
    if ('error' in d) throw d.error;
    return d.count;
  }

  // ---- operator (koala quota) -------------------------------------------------------------

  /** Every quota of the account: value and whether it is the default. */
  async list(accountId: string): Promise<Array<{ name: QuotaName; value: number; source: 'default' | 'account' }>> {
    const overrides = new Map((await this.repo.overrides(accountId)).map((o) => [o.name, o.value]));
    return QUOTA_NAMES.map((name) => (overrides.has(name) ? { name, value: overrides.get(name)!, source: 'account' as const } : { name, value: this.defaults[name], source: 'default' as const }));
  }

  /** Sets an override; VALUE `default` removes it. */
  async set(accountId: string, name: string, value: string, now: Date): Promise<void> {
    if (!isQuotaName(name)) throw new QuotaUsageError(`unknown quota "${name.slice(0, 64)}" (one of: ${QUOTA_NAMES.join(', ')})`);
    if (value === 'default') {
      await this.repo.deleteOverride(accountId, name);
      return;
    }
    if (!/^\d{1,10}$/.test(value) || Number(value) > MAX_QUOTA_VALUE)
      throw new QuotaUsageError(`quota value must be a whole number from 0 to ${MAX_QUOTA_VALUE} or "default", got "${value.slice(0, 64)}"`);
    await this.repo.setOverride(accountId, name, Number(value), now);
  }
}

/** A QuotaService outside Nest (admin commands, specs). */
export function createQuotaService(ds: ConstructorParameters<typeof QuotasRepository>[0], config: QuotaDefaultsConfig & { instanceTypesFile: string | undefined }): QuotaService {
  return new QuotaService(new QuotasRepository(ds), config, new InstanceTypesService(config));
}
