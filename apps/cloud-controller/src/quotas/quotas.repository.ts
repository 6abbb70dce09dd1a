/**
 * Every query of quotas, in plain SQL: the per-account overrides (`account_quotas`), the usage
 * counted from the resources' own rows, and the per-account lock the creates take.
 */
import type { DataSource, EntityManager } from 'typeorm';
import type { QuotaUsage } from './quota-rules.js';

/** A transaction (or the pool's manager). Services only pass it through. */
export type Tx = EntityManager;

/** Advisory lock class of per-account quota checks ("kqta"); the account id is the second key. */
export const QUOTA_LOCK = 0x6b717461;

export type UsageKind = 'instances' | 'volumes' | 'snapshots' | 'images' | 'key-pairs' | 'security-groups' | 'addresses';

/** What QuotaService needs from storage (the real one: QuotasRepository; specs: a fake). */
export interface QuotasStore {
  /** Holds the account's quota lock until `tx` ends. */
  lockAccount(tx: Tx, accountId: string): Promise<void>;
  /** The account's overrides, by name (outside a transaction when `tx` is omitted). */
  overrides(accountId: string, tx?: Tx): Promise<Array<{ name: string; value: number }>>;
  setOverride(accountId: string, name: string, value: number, now: Date): Promise<void>;
  /** true when there was an override to remove. */
  deleteOverride(accountId: string, name: string): Promise<boolean>;
  /** Instances not terminated, by type. */
  instancesByType(tx: Tx, accountId: string): Promise<Array<{ instanceType: string; count: number }>>;
  /** The usage `kinds` need. */
  usage(tx: Tx, accountId: string, kinds: readonly Exclude<UsageKind, 'instances'>[]): Promise<QuotaUsage>;
}

export const QUOTAS_STORE = Symbol('QUOTAS_STORE');

export class QuotasRepository implements QuotasStore {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.ds.transaction(work);
  }

  /**
   * Serialises the account's quota-checked creates until the transaction ends: the usage the
   * next one counts (READ COMMITTED: a fresh snapshot per statement) includes this one's rows.
   */
  async lockAccount(tx: Tx, accountId: string): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [QUOTA_LOCK, accountId]);
  }

  async overrides(accountId: string, tx: Tx = this.ds.manager): Promise<Array<{ name: string; value: number }>> {
    const rows: Array<{ name: string; value: string }> = await tx.query('SELECT name, value FROM account_quotas WHERE account_id = $1 ORDER BY name', [accountId]);
    return rows.map((r) => ({ name: r.name, value: Number(r.value) }));
  }

  async setOverride(accountId: string, name: string, value: number, now: Date): Promise<void> {
    await this.ds.query(
      `INSERT INTO account_quotas (account_id, name, value, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (account_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
      [accountId, name, value, now],
    );
  }

  /** true when there was an override to remove. */
  async deleteOverride(accountId: string, name: string): Promise<boolean> {
    const [, n]: [unknown, number] = await this.ds.query('DELETE FROM account_quotas WHERE account_id = $1 AND name = $2', [accountId, name]);
    return n > 0;
  }

  /** Instances not terminated, by type (vCPUs come from the type table). */
  async instancesByType(tx: Tx, accountId: string): Promise<Array<{ instanceType: string; count: number }>> {
    const rows: Array<{ instance_type: string; n: number }> = await tx.query(
      `SELECT instance_type, count(*)::int AS n FROM instances WHERE account_id = $1 AND state <> 'terminated' GROUP BY instance_type`,
      [accountId],
    );
    return rows.map((r) => ({ instanceType: r.instance_type, count: r.n }));
  }

  /** The usage `kinds` need, counted from the rows that hold the resources. */
  async usage(tx: Tx, accountId: string, kinds: readonly Exclude<UsageKind, 'instances'>[]): Promise<QuotaUsage> {
    const u: QuotaUsage = {};
    const one = async (sql: string) => ((await tx.query(sql, [accountId])) as Array<Record<string, number>>)[0]!;
    for (const k of kinds) {
      if (k === 'volumes') {
        const r = await one(`SELECT count(*)::int AS n, coalesce(sum(size_gib), 0)::bigint AS gib FROM volumes WHERE account_id = $1 AND state <> 'deleted'`);
        u.volumes = r.n;
        u.volumeGiB = Number(r.gib);
      } else if (k === 'snapshots') u.snapshots = (await one('SELECT count(*)::int AS n FROM snapshots WHERE account_id = $1')).n;
      else if (k === 'images') {
        const r = await one(`SELECT count(*)::int AS n, (count(*) FILTER (WHERE state = 'pending'))::int AS f FROM images WHERE account_id = $1 AND deregistered_at IS NULL`);
        u.images = r.n;
        u.imageFetches = r.f;
      } else if (k === 'key-pairs') u.keyPairs = (await one('SELECT count(*)::int AS n FROM key_pairs WHERE account_id = $1')).n;
      else if (k === 'security-groups') u.securityGroups = (await one('SELECT count(*)::int AS n FROM security_groups WHERE account_id = $1')).n;
      else if (k === 'addresses') u.addresses = (await one(`SELECT count(*)::int AS n FROM addresses WHERE account_id = $1 AND kind = 'elastic'`)).n;
    }
    return u;
  }
}
