/**
 * Every query of guest networking, in plain SQL: interfaces (network_interfaces), node addresses
 * (network_nodes), published versions (network_versions), the public addresses of instances
 * (addresses, `kind` launch or elastic) and what the desired state is built from.
 */
import type { DataSource, EntityManager } from 'typeorm';
import type { InstanceMetadataOptions } from '@koala/contracts';
import type { InterfaceInput, StoredRule } from './network-state.js';

/** A transaction (or the pool's manager). Services only pass it through to repositories. */
export type Tx = EntityManager;

export interface InterfaceRow {
  id: string;
  instanceId: string;
  attachmentId: string;
  zone: string;
  mac: string;
  privateIp: string;
  createdAt: Date;
}

/** An instance's interface with its public address (launch-time or elastic) for views. */
export interface InterfaceView extends InterfaceRow {
  publicIp: string | null;
  publicKind: 'launch' | 'elastic' | null;
  publicOwnerId: string | null;
  associationId: string | null;
  allocationId: string | null;
}

export interface LaunchAddressRow {
  allocationId: string;
  accountId: string;
  publicIp: string;
  instanceId: string;
  privateIp: string;
  createdAt: Date;
}

/** An instance as ModifyInstanceMetadataOptions reads it (with its interface's private IP, null when it has none). */
export interface NetworkInstance {
  id: string;
  accountId: string;
  zone: string;
  state: string;
  terminatedAt: Date | null;
  privateIp: string | null;
}

/** The repository as NetworkService and VpcService use it (the real one below, or an in-memory fake in specs). */
export interface NetworkStore {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Outside any transaction (reads). */
  readonly pool: Tx;
  /** Serialises private-address allocations of one zone until the transaction ends. */
  lockZone(tx: Tx, zone: string): Promise<void>;
  /** Private addresses taken in the zone: interfaces and node addresses. */
  usedPrivateIps(tx: Tx, zone: string): Promise<string[]>;
  /** How many private addresses each of `zones` has taken (interfaces and node addresses). */
  usedPrivateIpCounts(zones: readonly string[]): Promise<Map<string, number>>;
  /** Private addresses and MACs taken in the zone, in one round trip (it runs under the zone's lock). */
  usedAddresses(tx: Tx, zone: string): Promise<{ ips: string[]; macs: Set<string> }>;
  /** A launch's interfaces and its instances' private DNS names (by instance id), in one statement. */
  insertInterfaces(tx: Tx, rows: readonly InterfaceRow[], dnsNames: ReadonlyMap<string, string>): Promise<void>;
  /** The public address pool's lock (AllocateAddress takes it too). */
  lockPublicPool(tx: Tx): Promise<void>;
  /** Every public address in use (elastic and launch-time). */
  usedPublicIps(tx: Tx): Promise<string[]>;
  insertLaunchAddresses(tx: Tx, rows: readonly LaunchAddressRow[]): Promise<void>;
  /** Interfaces deleted, launch-time addresses deleted, elastic ones disassociated; the zones touched. */
  release(tx: Tx, instanceIds: readonly string[]): Promise<string[]>;
  interfacesOf(tx: Tx, instanceIds: readonly string[]): Promise<InterfaceView[]>;
  lockInstance(tx: Tx, id: string): Promise<NetworkInstance | undefined>;
  metadataOptions(tx: Tx, id: string): Promise<InstanceMetadataOptions | undefined>;
  setMetadataOptions(tx: Tx, id: string, o: InstanceMetadataOptions): Promise<void>;
  nodeAddresses(tx: Tx, zone: string): Promise<Array<{ node: string; address: string }>>;
  insertNodeAddress(tx: Tx, zone: string, node: string, address: string, now: Date): Promise<void>;
  /** Interfaces of the zone's live placed instances (not terminated, with a node). */
  liveInterfaces(tx: Tx, zone: string): Promise<InterfaceInput[]>;
  /** Nodes hosting the zone's live instances. */
  instanceNodes(tx: Tx, zone: string): Promise<string[]>;
  groupsWithRules(tx: Tx, groupIds: readonly string[]): Promise<{ groups: Array<{ groupId: string; name: string }>; rules: StoredRule[] }>;
  /** The zone's last published version and digest, row-locked (created at version 0). */
  lockVersion(tx: Tx, zone: string, now: Date): Promise<{ version: number; digest: string }>;
  saveVersion(tx: Tx, zone: string, version: number, digest: string, now: Date): Promise<void>;
  /** Zones to publish periodically: every zone with a state or live instances, sorted. */
  zones(): Promise<string[]>;
  /** Zones where live members of the group are. */
  zonesOfGroup(tx: Tx, groupId: string): Promise<string[]>;
}

/** Nest token of the NetworkStore (bound to NetworkRepository in NetworkModule). */
export const NETWORK_STORE = Symbol('NETWORK_STORE');

/** Key class of the per-zone allocation lock (pg_advisory_xact_lock(class, hashtext(zone))). */
const ZONE_LOCK_CLASS = 0x6e6574; // "net"
/** The public address pool's lock: the same key AddressesService takes for AllocateAddress. */
export const PUBLIC_POOL_LOCK = 0x6b6f616c; // "koal"

const INTERFACE_COLUMNS = `n.id, n.instance_id AS "instanceId", n.attachment_id AS "attachmentId", n.zone, n.mac, n.private_ip AS "privateIp", n.created_at AS "createdAt"`;

/** Rows of an UPDATE/DELETE ... RETURNING (TypeORM answers `[rows, count]` for those). */
function returned<T>(r: unknown): T[] {
  return Array.isArray(r) && Array.isArray(r[0]) && typeof r[1] === 'number' ? (r[0] as T[]) : (r as T[]);
}

export class NetworkRepository implements NetworkStore {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.ds.transaction((em) => work(em));
  }

  get pool(): Tx {
    return this.ds.manager;
  }

  // ---- allocation ---------------------------------------------------------------------

  /** Serialises private-address allocations of one zone until the transaction ends. */
  async lockZone(tx: Tx, zone: string): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ZONE_LOCK_CLASS, zone]);
  }

  /** Private addresses taken in the zone: interfaces and node addresses. */
  async usedPrivateIps(tx: Tx, zone: string): Promise<string[]> {
    const rows: Array<{ ip: string }> = await tx.query('SELECT private_ip AS ip FROM network_interfaces WHERE zone = $1 UNION ALL SELECT address FROM network_nodes WHERE zone = $1', [zone]);
    return rows.map((r) => r.ip);
  }

  /** How many private addresses each of `zones` has taken (interfaces and node addresses). */
  async usedPrivateIpCounts(zones: readonly string[]): Promise<Map<string, number>> {
    if (!zones.length) return new Map();
    const rows: Array<{ zone: string; n: string }> = await this.ds.query(
      `SELECT zone, count(*) AS n FROM (SELECT zone FROM network_interfaces WHERE zone = ANY($1) UNION ALL SELECT zone FROM network_nodes WHERE zone = ANY($1)) u GROUP BY zone`,
      [[...zones]],
    );
    return new Map(rows.map((r) => [r.zone, Number(r.n)]));
  }

  /**
   * Private addresses (interfaces and node addresses) and MACs taken in the zone, in one round
   * trip: it runs under the zone's lock.
   */
  async usedAddresses(tx: Tx, zone: string): Promise<{ ips: string[]; macs: Set<string> }> {
    const rows: Array<{ ip: string; mac: string | null }> = await tx.query(
      'SELECT private_ip AS ip, mac FROM network_interfaces WHERE zone = $1 UNION ALL SELECT address, NULL FROM network_nodes WHERE zone = $1',
      [zone],
    );
    const macs = new Set<string>();
    for (const r of rows) if (r.mac !== null) macs.add(r.mac);
    return { ips: rows.map((r) => r.ip), macs };
  }

  /**
   * A launch's interfaces and its instances' private DNS names, in one statement (it runs under
   * the zone's lock; a round trip per row held it ~10 ms a row under load).
   */
  async insertInterfaces(tx: Tx, rows: readonly InterfaceRow[], dnsNames: ReadonlyMap<string, string>): Promise<void> {
    if (!rows.length) return;
    await tx.query(
      `WITH ins AS (
         INSERT INTO network_interfaces (id, instance_id, attachment_id, zone, mac, private_ip, created_at)
         SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[], $7::timestamptz[])
       )
       UPDATE instances SET private_dns_name = v.name FROM unnest($8::varchar[], $9::varchar[]) AS v(id, name) WHERE instances.id = v.id`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.instanceId),
        rows.map((r) => r.attachmentId),
        rows.map((r) => r.zone),
        rows.map((r) => r.mac),
        rows.map((r) => r.privateIp),
        rows.map((r) => r.createdAt),
        [...dnsNames.keys()],
        [...dnsNames.values()],
      ],
    );
  }

  async lockPublicPool(tx: Tx): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [PUBLIC_POOL_LOCK]);
  }

  async usedPublicIps(tx: Tx): Promise<string[]> {
    const rows: Array<{ public_ip: string }> = await tx.query('SELECT public_ip FROM addresses');
    return rows.map((r) => r.public_ip);
  }

  /** A launch's public addresses, in one statement (under the zone's and the pool's locks). */
  async insertLaunchAddresses(tx: Tx, rows: readonly LaunchAddressRow[]): Promise<void> {
    if (!rows.length) return;
    await tx.query(
      `INSERT INTO addresses (allocation_id, account_id, public_ip, domain, kind, instance_id, association_id, private_ip_address, created_at)
       SELECT a, o, p, 'vpc', 'launch', i, NULL, q, c FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::timestamptz[]) AS v(a, o, p, i, q, c)`,
      [rows.map((r) => r.allocationId), rows.map((r) => r.accountId), rows.map((r) => r.publicIp), rows.map((r) => r.instanceId), rows.map((r) => r.privateIp), rows.map((r) => r.createdAt)],
    );
  }

  /**
   * The instances' network goes: interfaces deleted (their IPs and MACs free again), launch-time
   * public addresses returned to the pool, elastic ones disassociated. Returns the zones touched.
   */
  async release(tx: Tx, instanceIds: readonly string[]): Promise<string[]> {
    if (!instanceIds.length) return [];
    const ids = [...instanceIds];
    const zones = returned<{ zone: string }>(await tx.query('DELETE FROM network_interfaces WHERE instance_id = ANY($1) RETURNING zone', [ids]));
    // EC2 shows a terminated instance without a private name; the name may be someone else's soon.
    await tx.query(`UPDATE instances SET private_dns_name = '' WHERE id = ANY($1)`, [ids]);
    await tx.query(`DELETE FROM addresses WHERE kind = 'launch' AND instance_id = ANY($1)`, [ids]);
    await tx.query(`UPDATE addresses SET instance_id = NULL, association_id = NULL, private_ip_address = NULL WHERE kind = 'elastic' AND instance_id = ANY($1)`, [ids]);
    return [...new Set(zones.map((z) => z.zone))];
  }

  // ---- views ---------------------------------------------------------------------------

  async interfacesOf(tx: Tx, instanceIds: readonly string[]): Promise<InterfaceView[]> {
    if (!instanceIds.length) return [];
    return tx.query(
      `SELECT ${INTERFACE_COLUMNS}, a.public_ip AS "publicIp", a.kind AS "publicKind", a.account_id AS "publicOwnerId",
              a.association_id AS "associationId", a.allocation_id AS "allocationId"
         FROM network_interfaces n LEFT JOIN addresses a ON a.instance_id = n.instance_id
        WHERE n.instance_id = ANY($1)`,
      [[...instanceIds]],
    );
  }

  // ---- instances -----------------------------------------------------------------------

  async lockInstance(tx: Tx, id: string): Promise<NetworkInstance | undefined> {
    const rows = await tx.query(
      `SELECT i.id, i.account_id AS "accountId", i.zone, i.state, i.terminated_at AS "terminatedAt", n.private_ip AS "privateIp"
         FROM instances i LEFT JOIN network_interfaces n ON n.instance_id = i.id
        WHERE i.id = $1 FOR UPDATE OF i`,
      [id],
    );
    return rows[0];
  }

  async metadataOptions(tx: Tx, id: string): Promise<InstanceMetadataOptions | undefined> {
    const rows = await tx.query('SELECT metadata_http_tokens AS "httpTokens", metadata_hop_limit AS "httpPutResponseHopLimit", metadata_http_endpoint AS "httpEndpoint" FROM instances WHERE id = $1', [
      id,
    ]);
    return rows[0];
  }

  async setMetadataOptions(tx: Tx, id: string, o: InstanceMetadataOptions): Promise<void> {
    await tx.query('UPDATE instances SET metadata_http_tokens = $2, metadata_hop_limit = $3, metadata_http_endpoint = $4 WHERE id = $1', [id, o.httpTokens, o.httpPutResponseHopLimit, o.httpEndpoint]);
  }

  // ---- the desired state ---------------------------------------------------------------

  async nodeAddresses(tx: Tx, zone: string): Promise<Array<{ node: string; address: string }>> {
    return tx.query('SELECT node, address FROM network_nodes WHERE zone = $1', [zone]);
  }

  async insertNodeAddress(tx: Tx, zone: string, node: string, address: string, now: Date): Promise<void> {
    await tx.query('INSERT INTO network_nodes (zone, node, address, created_at) VALUES ($1, $2, $3, $4)', [zone, node, address, now]);
  }

  /** Interfaces of the zone's live placed instances (not terminated, with a node). */
  async liveInterfaces(tx: Tx, zone: string): Promise<InterfaceInput[]> {
    const rows: Array<{
      instanceId: string;
      interfaceId: string;
      node: string;
      mac: string;
      privateIp: string;
      publicIp: string | null;
      groupIds: string[] | null;
      tokens: string;
      hops: number;
      endpoint: string;
    }> = await tx.query(
      `SELECT i.id AS "instanceId", n.id AS "interfaceId", i.node, n.mac, n.private_ip AS "privateIp", a.public_ip AS "publicIp",
              (SELECT array_agg(g.group_id ORDER BY g.position) FROM instance_security_groups g WHERE g.instance_id = i.id) AS "groupIds",
              i.metadata_http_tokens AS tokens, i.metadata_hop_limit AS hops, i.metadata_http_endpoint AS endpoint
         FROM instances i
         JOIN network_interfaces n ON n.instance_id = i.id
         LEFT JOIN addresses a ON a.instance_id = i.id
        WHERE i.zone = $1 AND i.state <> 'terminated' AND i.node IS NOT NULL`,
      [zone],
    );
    return rows.map((r) => ({
      instanceId: r.instanceId,
      interfaceId: r.interfaceId,
      node: r.node,
      mac: r.mac,
      privateIp: r.privateIp,
      publicIp: r.publicIp,
      groupIds: r.groupIds ?? [],
      metadataOptions: { httpTokens: r.tokens as 'optional' | 'required', httpPutResponseHopLimit: r.hops, httpEndpoint: r.endpoint as 'enabled' | 'disabled' },
    }));
  }

  /** Nodes hosting the zone's live instances. */
  async instanceNodes(tx: Tx, zone: string): Promise<string[]> {
    const rows: Array<{ node: string }> = await tx.query(`SELECT DISTINCT node FROM instances WHERE zone = $1 AND state <> 'terminated' AND node IS NOT NULL`, [zone]);
    return rows.map((r) => r.node);
  }

  async groupsWithRules(tx: Tx, groupIds: readonly string[]): Promise<{ groups: Array<{ groupId: string; name: string }>; rules: StoredRule[] }> {
    if (!groupIds.length) return { groups: [], rules: [] };
    const ids = [...groupIds];
    const groups = await tx.query('SELECT id AS "groupId", name FROM security_groups WHERE id = ANY($1)', [ids]);
    const rules = await tx.query(
      `SELECT group_id AS "groupId", is_egress AS "isEgress", ip_protocol AS "ipProtocol", from_port AS "fromPort", to_port AS "toPort",
              cidr_ipv4 AS "cidrIpv4", cidr_ipv6 AS "cidrIpv6", referenced_group_id AS "referencedGroupId"
         FROM security_group_rules WHERE group_id = ANY($1) ORDER BY seq`,
      [ids],
    );
    return { groups, rules };
  }

  /** The zone's last published version and digest, row-locked (created at version 0). */
  async lockVersion(tx: Tx, zone: string, now: Date): Promise<{ version: number; digest: string }> {
    await tx.query(`INSERT INTO network_versions (zone, version, digest, updated_at) VALUES ($1, 0, '', $2) ON CONFLICT (zone) DO NOTHING`, [zone, now]);
    const rows: Array<{ version: string; digest: string }> = await tx.query('SELECT version, digest FROM network_versions WHERE zone = $1 FOR UPDATE', [zone]);
    return { version: Number(rows[0]!.version), digest: rows[0]!.digest };
  }

  async saveVersion(tx: Tx, zone: string, version: number, digest: string, now: Date): Promise<void> {
    await tx.query('UPDATE network_versions SET version = $2, digest = $3, updated_at = $4 WHERE zone = $1', [zone, version, digest, now]);
  }

  /** Zones to publish periodically: every zone with a state or live instances. */
  async zones(): Promise<string[]> {
    const rows: Array<{ zone: string }> = await this.ds.query(`SELECT zone FROM network_versions UNION SELECT DISTINCT zone FROM instances WHERE state <> 'terminated'`);
    return rows.map((r) => r.zone).sort();
  }

  /** Zones where members of the group live (a rule change of the group touches only them). */
  async zonesOfGroup(tx: Tx, groupId: string): Promise<string[]> {
    const rows: Array<{ zone: string }> = await tx.query(
      `SELECT DISTINCT i.zone FROM instance_security_groups g JOIN instances i ON i.id = g.instance_id WHERE g.group_id = $1 AND i.state <> 'terminated'`,
      [groupId],
    );
    return rows.map((r) => r.zone);
  }
}
