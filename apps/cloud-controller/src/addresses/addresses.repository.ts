/**
 * Every query of elastic addresses, in plain SQL: the `addresses` table (elastic rows; `launch`
 * rows are instances' launch-time addresses, owned by guest networking) and the instances and
 * interfaces an address is associated with.
 */
import type { DataSource } from 'typeorm';
import { PUBLIC_POOL_LOCK, type Tx } from '../network/network.repository.js';
import { scopeSqlPositional, type Caller } from '../persistence/access-scope.js';
import type { AddressEntity } from './address.entity.js';

export type { Tx } from '../network/network.repository.js';

export type AddressRow = Omit<AddressEntity, 'kind'>;

/** An address as DescribeAddresses lists it: with the interface it is associated with. */
export interface ListedAddress extends AddressRow {
  networkInterfaceId: string | null;
}

const COLUMNS = `a.allocation_id AS "allocationId", a.account_id AS "accountId", a.public_ip AS "publicIp", a.domain,
  a.instance_id AS "instanceId", a.association_id AS "associationId", a.private_ip_address AS "privateIpAddress", a.created_at AS "createdAt"`;

/** An instance an address may be associated with. */
export interface TargetInstance {
  id: string;
  accountId: string;
  zone: string;
  state: string;
  privateIp: string | null;
  associatePublicIp: boolean;
}

/** The repository as AddressesService uses it (the real one below, or an in-memory fake in specs). */
export interface AddressesStore {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** The public address pool's lock (shared with launch-time addresses), until the transaction ends. */
  lockPool(tx: Tx): Promise<void>;
  /** Owner of each elastic address (by allocation id) that exists (tags). */
  owners(tx: Tx, allocationIds: readonly string[]): Promise<Map<string, string>>;
  /** Every public address in use (elastic and launch-time). */
  usedPublicIps(tx: Tx): Promise<string[]>;
  /** A new elastic address, not associated. */
  insert(tx: Tx, a: AddressRow): Promise<void>;
  /** The elastic addresses `caller` may see (access-scope: its own; the admin: every account's), unsorted. */
  listVisible(caller: Caller): Promise<ListedAddress[]>;
  /** One elastic address by allocation id, public IP or association id, row-locked. */
  lockOne(tx: Tx, by: { allocationId?: string; publicIp?: string; associationId?: string }): Promise<AddressRow | undefined>;
  /** The instance (row-locked) with its private IP (null: terminated, no interface). */
  lockInstance(tx: Tx, instanceId: string): Promise<TargetInstance | undefined>;
  /** The instance a network interface belongs to. */
  instanceOfInterface(tx: Tx, interfaceId: string): Promise<string | undefined>;
  /** An instance as it stands (no lock). */
  instance(tx: Tx, instanceId: string): Promise<TargetInstance | undefined>;
  /** A launch-time public address for the instance (its interface's private IP). */
  insertLaunchAddress(tx: Tx, allocationId: string, instance: TargetInstance, publicIp: string, now: Date): Promise<void>;
  /** The instance gives up its public address: a launch-time one is deleted, an elastic one disassociated. */
  dropPublicAddressOf(tx: Tx, instanceId: string): Promise<void>;
  associate(tx: Tx, allocationId: string, instanceId: string, privateIp: string, associationId: string): Promise<void>;
  disassociate(tx: Tx, allocationId: string): Promise<void>;
  delete(tx: Tx, allocationId: string): Promise<void>;
}

/** Nest token of the AddressesStore (bound to AddressesRepository in AddressesModule). */
export const ADDRESSES_STORE = Symbol('ADDRESSES_STORE');

export class AddressesRepository implements AddressesStore {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.ds.transaction((em) => work(em));
  }

  get pool(): Tx {
    return this.ds.manager;
  }

  async lockPool(tx: Tx): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [PUBLIC_POOL_LOCK]);
  }

  async owners(tx: Tx, allocationIds: readonly string[]): Promise<Map<string, string>> {
    const rows: Array<{ allocation_id: string; account_id: string }> = await tx.query(`SELECT allocation_id, account_id FROM addresses WHERE kind = 'elastic' AND allocation_id = ANY($1)`, [
      [...allocationIds],
    ]);
    return new Map(rows.map((r) => [r.allocation_id, r.account_id]));
  }

  /** Every public address in use (elastic and launch-time). */
  async usedPublicIps(tx: Tx): Promise<string[]> {
    const rows: Array<{ public_ip: string }> = await tx.query('SELECT public_ip FROM addresses');
    return rows.map((r) => r.public_ip);
  }

  async insert(tx: Tx, a: AddressRow): Promise<void> {
    await tx.query(
      `INSERT INTO addresses (allocation_id, account_id, public_ip, domain, kind, instance_id, association_id, private_ip_address, created_at)
       VALUES ($1, $2, $3, $4, 'elastic', NULL, NULL, NULL, $5)`,
      [a.allocationId, a.accountId, a.publicIp, a.domain, a.createdAt],
    );
  }

  async listVisible(caller: Caller): Promise<ListedAddress[]> {
    const scope = scopeSqlPositional(caller, 'a', 'see', 1);
    return this.ds.query(
      `SELECT ${COLUMNS}, n.id AS "networkInterfaceId" FROM addresses a LEFT JOIN network_interfaces n ON n.instance_id = a.instance_id WHERE a.kind = 'elastic' AND ${scope.where}`,
      scope.params,
    );
  }

  /** One elastic address by allocation id, public IP or association id, row-locked. */
  async lockOne(tx: Tx, by: { allocationId?: string; publicIp?: string; associationId?: string }): Promise<AddressRow | undefined> {
    const [column, value] =
      by.allocationId !== undefined ? ['allocation_id', by.allocationId] : by.associationId !== undefined ? ['association_id', by.associationId] : ['public_ip', by.publicIp ?? ''];
    const rows = await tx.query(`SELECT ${COLUMNS} FROM addresses a WHERE a.kind = 'elastic' AND a.${column} = $1 FOR UPDATE`, [value]);
    return rows[0];
  }

  /** The instance (row-locked) with its private IP (null: terminated, no interface). */
  async lockInstance(tx: Tx, instanceId: string): Promise<TargetInstance | undefined> {
    const rows = await tx.query(
      `SELECT i.id, i.account_id AS "accountId", i.zone, i.state, n.private_ip AS "privateIp", i.associate_public_ip AS "associatePublicIp"
         FROM instances i LEFT JOIN network_interfaces n ON n.instance_id = i.id WHERE i.id = $1 FOR UPDATE OF i`,
      [instanceId],
    );
    return rows[0];
  }

  async instanceOfInterface(tx: Tx, interfaceId: string): Promise<string | undefined> {
    const rows: Array<{ instance_id: string }> = await tx.query('SELECT instance_id FROM network_interfaces WHERE id = $1', [interfaceId]);
    return rows[0]?.instance_id;
  }

  /** An instance as it stands (no lock). */
  async instance(tx: Tx, instanceId: string): Promise<TargetInstance | undefined> {
    const rows = await tx.query(
      `SELECT i.id, i.account_id AS "accountId", i.zone, i.state, n.private_ip AS "privateIp", i.associate_public_ip AS "associatePublicIp"
         FROM instances i LEFT JOIN network_interfaces n ON n.instance_id = i.id WHERE i.id = $1`,
      [instanceId],
    );
    return rows[0];
  }

  /** A launch-time public address for the instance (its interface's private IP). */
  async insertLaunchAddress(tx: Tx, allocationId: string, instance: TargetInstance, publicIp: string, now: Date): Promise<void> {
    await tx.query(
      `INSERT INTO addresses (allocation_id, account_id, public_ip, domain, kind, instance_id, association_id, private_ip_address, created_at)
       VALUES ($1, $2, $3, 'vpc', 'launch', $4, NULL, $5, $6)`,
      [allocationId, instance.accountId, publicIp, instance.id, instance.privateIp, now],
    );
  }

  /**
   * The instance gives up its public address: a launch-time one goes back to the pool, an
   * elastic one is disassociated. (At most one per instance: addresses_instance_key.)
   */
  async dropPublicAddressOf(tx: Tx, instanceId: string): Promise<void> {
    await tx.query(`DELETE FROM addresses WHERE kind = 'launch' AND instance_id = $1`, [instanceId]);
    await tx.query(`UPDATE addresses SET instance_id = NULL, association_id = NULL, private_ip_address = NULL WHERE kind = 'elastic' AND instance_id = $1`, [instanceId]);
  }

  async associate(tx: Tx, allocationId: string, instanceId: string, privateIp: string, associationId: string): Promise<void> {
    await tx.query('UPDATE addresses SET instance_id = $2, private_ip_address = $3, association_id = $4 WHERE allocation_id = $1', [allocationId, instanceId, privateIp, associationId]);
  }

  async disassociate(tx: Tx, allocationId: string): Promise<void> {
    await tx.query('UPDATE addresses SET instance_id = NULL, association_id = NULL, private_ip_address = NULL WHERE allocation_id = $1', [allocationId]);
  }

  async delete(tx: Tx, allocationId: string): Promise<void> {
    await tx.query('DELETE FROM addresses WHERE allocation_id = $1', [allocationId]);
  }
}
