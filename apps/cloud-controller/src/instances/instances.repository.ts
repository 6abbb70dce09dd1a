/**
 * Every query of instances: the `instances` and `reservations` rows, the security groups an
 * instance was launched with (`instance_security_groups`), and what an instance's view reads of
 * other tables (group names, attached volumes). Query builders over the entities; plain SQL where
 * a builder cannot say it (bulk updates over arrays). The services hold the rules and see only
 * the InstancesStore interface (fakes in testing/fake-instances-store.ts).
 */
import { type DataSource, type EntityManager, type SelectQueryBuilder } from 'typeorm';
import { scopeSql, type Caller } from '../persistence/access-scope.js';
import { describePage, type DescribePaging, type DescribeQuery } from '../persistence/describe-page.js';
import { findVisible } from '../persistence/find-visible.js';
import { InstanceEntity, InstanceSecurityGroupEntity, ReservationEntity } from './instance.entity.js';
import { isUniqueViolation } from '../persistence/pg-errors.js';
import type { StateFields } from './instance-states.js';

/**
 * A CTE `locked(id)` that row-locks the instances whose ids are in `$1` in id order. Every
 * statement or transaction that writes several instance rows takes its locks in id order
 * (lockByIds, this CTE), so two of them never wait for each other in a circle: an event batch
 * and a TerminateInstances, or the reconciler's last-seen update and a launch, deadlocked
 * before (found by the 500-node scale bench). MATERIALIZED keeps the planner from folding the
 * locking into the UPDATE's own (unordered) scan.
 */
const LOCK_IN_ID_ORDER = 'locked AS MATERIALIZED (SELECT id FROM instances WHERE id = ANY($1) ORDER BY id FOR UPDATE)';

/** A transaction (or the pool's manager). Services only pass it through. */
export type Tx = EntityManager;

/** A security group of an instance, in launch order, with its name ('' once the group is gone). */
export interface GroupLink {
  instanceId: string;
  groupId: string;
  groupName: string;
}

/** A volume attached (attaching, detaching) to an instance. */
export interface AttachedVolume {
  id: string;
  instanceId: string;
  device: string;
  state: string;
  attachTime: Date | null;
  deleteOnTermination: boolean;
}

/** A reservation's ClientToken is already taken (a concurrent RunInstances with the same token won). */
export class ClientTokenTaken extends Error {
  constructor() {
    super('client token taken');
  }
}

/**
 * How a Describe* action over instances reads its page (see describePage): the repository adds
 * the rows (the caller's instances still retained, alias `i`); `runningOnly` narrows them in SQL.
 */
export type InstancePaging<V> = Omit<DescribePaging<InstanceEntity, V>, 'named' | 'query' | 'alias'> & { runningOnly?: boolean };

/** What the instance services need of the database. */
export interface InstancesStore {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Outside any transaction. */
  readonly pool: Tx;

  // RunInstances
  publicKeyOf(accountId: string, keyName: string): Promise<string | undefined>;
  reservationByClientToken(accountId: string, clientToken: string): Promise<ReservationEntity | undefined>;
  /** @throws ClientTokenTaken */
  insertReservation(tx: Tx, r: ReservationEntity): Promise<void>;
  insertInstances(tx: Tx, instances: readonly InstanceEntity[]): Promise<void>;
  insertGroupLinks(tx: Tx, links: readonly InstanceSecurityGroupEntity[]): Promise<void>;
  /** Sets the node of the instances not placed yet. */
  setNodes(tx: Tx, placed: ReadonlyMap<string, string>): Promise<void>;
  deleteInstances(tx: Tx, ids: readonly string[]): Promise<void>;
  deleteReservation(tx: Tx, id: string): Promise<void>;
  deleteEmptyReservations(tx: Tx): Promise<void>;

  // Views
  reservations(ids: readonly string[]): Promise<ReservationEntity[]>;
  /** The instances of the reservations, by launch index. */
  instancesOf(reservationIds: readonly string[]): Promise<InstanceEntity[]>;
  groupLinks(instanceIds: readonly string[], tx?: Tx): Promise<GroupLink[]>;
  /** By device name. */
  attachedVolumes(instanceIds: readonly string[], tx?: Tx): Promise<AttachedVolume[]>;
  /** A page of the caller's instances that are not terminated, or terminated after `cutoff`. */
  page<V>(caller: Caller, cutoff: Date, q: DescribeQuery, how: InstancePaging<V>): Promise<{ page: V[]; nextToken?: string }>;

  // State changes
  /** The instances (any account's), row-locked, in id order. */
  lockByIds(tx: Tx, ids: readonly string[]): Promise<InstanceEntity[]>;
  lockOne(tx: Tx, id: string): Promise<InstanceEntity | undefined>;
  update(tx: Tx, ids: readonly string[], patch: Partial<InstanceEntity>): Promise<void>;
  /** Each row's state fields as given (rows locked by the caller), in one statement. */
  writeStates(tx: Tx, rows: ReadonlyArray<{ id: string } & StateFields>): Promise<void>;

  // Reconciliation
  /** Zones this cloud has instances (rows) in. */
  zones(): Promise<string[]>;
  /** The zone's instances that are not terminated. */
  liveIn(zone: string): Promise<InstanceEntity[]>;
  /** Unless the instance is terminated meanwhile. */
  setImpaired(id: string, impaired: boolean, now: Date): Promise<void>;
  setLastSeen(ids: readonly string[], now: Date): Promise<void>;
  terminatedBefore(tx: Tx, cutoff: Date): Promise<string[]>;
}

export class InstancesRepository implements InstancesStore {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.ds.transaction((em) => work(em));
  }

  get pool(): Tx {
    return this.ds.manager;
  }

  private instances(tx: Tx = this.ds.manager): SelectQueryBuilder<InstanceEntity> {
    return tx.createQueryBuilder(InstanceEntity, 'i');
  }

  async publicKeyOf(accountId: string, keyName: string): Promise<string | undefined> {
    const rows: Array<{ public_key: string }> = await this.ds.query('SELECT public_key FROM key_pairs WHERE account_id = $1 AND name = $2', [accountId, keyName]);
    return rows[0]?.public_key;
  }

  async reservationByClientToken(accountId: string, clientToken: string): Promise<ReservationEntity | undefined> {
    const r = await this.ds.createQueryBuilder(ReservationEntity, 'r').where('r.account_id = :accountId AND r.client_token = :clientToken', { accountId, clientToken }).getOne();
    return r ?? undefined;
  }

  async insertReservation(tx: Tx, r: ReservationEntity): Promise<void> {
    try {
      await tx.createQueryBuilder().insert().into(ReservationEntity).values(r).execute();
    } catch (e) {
      // reservations_client_token_key: the only unique key a new reservation can collide on.
      if (r.clientToken !== null && isUniqueViolation(e)) throw new ClientTokenTaken();
      throw e;
    }
  }

  async insertInstances(tx: Tx, instances: readonly InstanceEntity[]): Promise<void> {
    if (instances.length)
      await tx
        .createQueryBuilder()
        .insert()
        .into(InstanceEntity)
        .values([...instances])
        .execute();
  }

  async insertGroupLinks(tx: Tx, links: readonly InstanceSecurityGroupEntity[]): Promise<void> {
    if (links.length)
      await tx
        .createQueryBuilder()
        .insert()
        .into(InstanceSecurityGroupEntity)
        .values([...links])
        .execute();
  }

  async setNodes(tx: Tx, placed: ReadonlyMap<string, string>): Promise<void> {
    // one statement, not one per instance (a launch of 20 spent ~150-500 ms here under load)
    if (!placed.size) return;
    // Rows locked in id order first, as every multi-row writer of instances does (LOCK_IN_ID_ORDER).
    await tx.query(
      `WITH ${LOCK_IN_ID_ORDER}
       UPDATE instances SET node = v.node FROM unnest($1::varchar[], $2::varchar[]) AS v(id, node), locked
       WHERE instances.id = v.id AND locked.id = v.id AND instances.node IS NULL`,
      [[...placed.keys()], [...placed.values()]],
    );
  }

  async deleteInstances(tx: Tx, ids: readonly string[]): Promise<void> {
    if (ids.length)
      await tx
        .createQueryBuilder()
        .delete()
        .from(InstanceEntity)
        .where('id IN (:...ids)', { ids: [...ids] })
        .execute();
  }

  async deleteReservation(tx: Tx, id: string): Promise<void> {
    await tx.createQueryBuilder().delete().from(ReservationEntity).where('id = :id', { id }).execute();
  }

  async deleteEmptyReservations(tx: Tx): Promise<void> {
    await tx.query('DELETE FROM reservations r WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.reservation_id = r.id)');
  }

  async reservations(ids: readonly string[]): Promise<ReservationEntity[]> {
    if (!ids.length) return [];
    return this.ds
      .createQueryBuilder(ReservationEntity, 'r')
      .where('r.id IN (:...ids)', { ids: [...ids] })
      .getMany();
  }

  async instancesOf(reservationIds: readonly string[]): Promise<InstanceEntity[]> {
    if (!reservationIds.length) return [];
    return this.instances()
      .where('i.reservation_id IN (:...ids)', { ids: [...reservationIds] })
      .orderBy('i.launch_index', 'ASC')
      .getMany();
  }

  async groupLinks(instanceIds: readonly string[], tx: Tx = this.ds.manager): Promise<GroupLink[]> {
    if (!instanceIds.length) return [];
    return tx.query(
      `SELECT l.instance_id AS "instanceId", l.group_id AS "groupId", coalesce(g.name, '') AS "groupName"
         FROM instance_security_groups l LEFT JOIN security_groups g ON g.id = l.group_id
        WHERE l.instance_id = ANY($1) ORDER BY l.position ASC`,
      [[...instanceIds]],
    );
  }

  async attachedVolumes(instanceIds: readonly string[], tx: Tx = this.ds.manager): Promise<AttachedVolume[]> {
    if (!instanceIds.length) return [];
    return tx.query(
      `SELECT id, attach_instance_id AS "instanceId", attach_device AS device, attach_state AS state, attach_time AS "attachTime", delete_on_termination AS "deleteOnTermination"
         FROM volumes WHERE attach_instance_id = ANY($1) AND attach_state IS NOT NULL ORDER BY attach_device ASC`,
      [[...instanceIds]],
    );
  }

  /** Every account's instances (alias `i`) as a fresh query; terminated ones only after `cutoff`. */
  private retained(cutoff: Date): SelectQueryBuilder<InstanceEntity> {
    return this.instances().where("(i.state <> 'terminated' OR i.terminated_at > :cutoff)", { cutoff });
  }

  page<V>(caller: Caller, cutoff: Date, q: DescribeQuery, how: InstancePaging<V>): Promise<{ page: V[]; nextToken?: string }> {
    const { runningOnly, ...paging } = how;
    return describePage(q, {
      ...paging,
      named: (ids) => findVisible(this.retained(cutoff), 'i', caller, ids, { prefix: 'i', malformed: 'InvalidInstanceID.Malformed', notFound: 'InvalidInstanceID.NotFound' }),
      query: () => {
        const scope = scopeSql(caller, 'i', 'see');
        const qb = this.retained(cutoff).andWhere(scope.where, scope.params);
        if (runningOnly) qb.andWhere("i.state = 'running'");
        return qb;
      },
      alias: 'i',
    });
  }

  lockByIds(tx: Tx, ids: readonly string[]): Promise<InstanceEntity[]> {
    if (!ids.length) return Promise.resolve([]);
    return this.instances(tx)
      .where('i.id IN (:...ids)', { ids: [...ids] })
      .orderBy('i.id', 'ASC')
      .setLock('pessimistic_write')
      .getMany();
  }

  async lockOne(tx: Tx, id: string): Promise<InstanceEntity | undefined> {
    return (await this.instances(tx).where('i.id = :id', { id }).setLock('pessimistic_write').getOne()) ?? undefined;
  }

  async update(tx: Tx, ids: readonly string[], patch: Partial<InstanceEntity>): Promise<void> {
    if (!ids.length || !Object.keys(patch).length) return;
    await tx
      .createQueryBuilder()
      .update(InstanceEntity)
      .set(patch)
      .where('id IN (:...ids)', { ids: [...ids] })
      .execute();
  }

  async writeStates(tx: Tx, rows: ReadonlyArray<{ id: string } & StateFields>): Promise<void> {
    if (!rows.length) return;
    await tx.query(
      `UPDATE instances SET state = v.state, state_code = v.code, state_reason_code = v.reason_code, state_reason_message = v.reason_message,
              state_transition_reason = v.transition_reason, state_changed_at = v.changed_at, node = v.node, terminated_at = v.terminated_at
         FROM unnest($1::varchar[], $2::varchar[], $3::int[], $4::varchar[], $5::varchar[], $6::varchar[], $7::timestamptz[], $8::varchar[], $9::timestamptz[])
              AS v(id, state, code, reason_code, reason_message, transition_reason, changed_at, node, terminated_at)
        WHERE instances.id = v.id`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.state),
        rows.map((r) => r.stateCode),
        rows.map((r) => r.stateReasonCode),
        rows.map((r) => r.stateReasonMessage),
        rows.map((r) => r.stateTransitionReason),
        rows.map((r) => r.stateChangedAt),
        rows.map((r) => r.node),
        rows.map((r) => r.terminatedAt),
      ],
    );
  }

  async zones(): Promise<string[]> {
    const rows: Array<{ zone: string }> = await this.ds.query('SELECT DISTINCT zone FROM instances');
    return rows.map((r) => r.zone);
  }

  liveIn(zone: string): Promise<InstanceEntity[]> {
    return this.instances().where("i.zone = :zone AND i.state <> 'terminated'", { zone }).getMany();
  }

  async setImpaired(id: string, impaired: boolean, now: Date): Promise<void> {
    await this.ds
      .createQueryBuilder()
      .update(InstanceEntity)
      .set({ impaired, impairedSince: impaired ? now : null })
      .where("id = :id AND state <> 'terminated'", { id })
      .execute();
  }

  async setLastSeen(ids: readonly string[], now: Date): Promise<void> {
    if (!ids.length) return;
    await this.ds.query(`WITH ${LOCK_IN_ID_ORDER} UPDATE instances SET last_seen_at = $2 FROM locked WHERE instances.id = locked.id`, [[...ids], now]);
  }

  /** Counts of instances by zone and state (the `koala_instances` metric): one grouped query. */
  countByState(): Promise<Array<{ zone: string; state: string; n: number }>> {
    return this.ds.query('SELECT zone, state, count(*)::int AS n FROM instances GROUP BY zone, state');
  }

  async terminatedBefore(tx: Tx, cutoff: Date): Promise<string[]> {
    // Locked in id order: the purge deletes them in this transaction.
    const rows: Array<{ id: string }> = await tx.query(`SELECT id FROM instances WHERE state = 'terminated' AND terminated_at < $1 ORDER BY id FOR UPDATE`, [cutoff]);
    return rows.map((r) => r.id);
  }
}
