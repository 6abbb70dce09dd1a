import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Guest networking. An instance's interface (private IP and MAC, unique per zone: two launches
 * can never share either), node addresses on each zone's segment (same subnet: an address is
 * unique across both, decided under a per-zone lock), the last published network state of each
 * zone (version only grows; digest detects changes), metadata options of instances, whether an
 * instance has a launch-time public address (it gets a new one when an elastic one leaves), the
 * kind of a public address (an elastic one, or the one an instance got at launch) with at most
 * one public address per instance.
 */
export class Network1764137000000 implements MigrationInterface {
  name = 'Network1764137000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE network_interfaces (
        id             varchar(32)  PRIMARY KEY,
        instance_id    varchar(32)  NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
        attachment_id  varchar(40)  NOT NULL,
        zone           varchar(63)  NOT NULL,
        mac            varchar(17)  NOT NULL,
        private_ip     varchar(15)  NOT NULL,
        created_at     timestamptz  NOT NULL,
        CONSTRAINT network_interfaces_instance_key UNIQUE (instance_id),
        CONSTRAINT network_interfaces_zone_ip_key UNIQUE (zone, private_ip),
        CONSTRAINT network_interfaces_zone_mac_key UNIQUE (zone, mac)
      )`);
    await q.query(`
      CREATE TABLE network_nodes (
        zone        varchar(63)  NOT NULL,
        node        varchar(63)  NOT NULL,
        address     varchar(15)  NOT NULL,
        created_at  timestamptz  NOT NULL,
        PRIMARY KEY (zone, node),
        CONSTRAINT network_nodes_zone_address_key UNIQUE (zone, address)
      )`);
    await q.query(`
      CREATE TABLE network_versions (
        zone        varchar(63)  PRIMARY KEY,
        version     bigint       NOT NULL,
        digest      varchar(64)  NOT NULL,
        updated_at  timestamptz  NOT NULL
      )`);
    await q.query(`
      ALTER TABLE instances
        ADD COLUMN metadata_http_tokens    varchar(8) NOT NULL DEFAULT 'optional',
        ADD COLUMN metadata_hop_limit      integer    NOT NULL DEFAULT 1,
        ADD COLUMN metadata_http_endpoint  varchar(8) NOT NULL DEFAULT 'enabled',
        ADD COLUMN associate_public_ip     boolean    NOT NULL DEFAULT false`);
    await q.query(`ALTER TABLE addresses ADD COLUMN kind varchar(8) NOT NULL DEFAULT 'elastic'`);
    await q.query('CREATE UNIQUE INDEX addresses_instance_key ON addresses (instance_id) WHERE instance_id IS NOT NULL');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX addresses_instance_key');
    await q.query(`DELETE FROM addresses WHERE kind <> 'elastic'`);
    await q.query('ALTER TABLE addresses DROP COLUMN kind');
    await q.query('ALTER TABLE instances DROP COLUMN metadata_http_tokens, DROP COLUMN metadata_hop_limit, DROP COLUMN metadata_http_endpoint, DROP COLUMN associate_public_ip');
    await q.query('DROP TABLE network_versions');
    await q.query('DROP TABLE network_nodes');
    await q.query('DROP TABLE network_interfaces');
  }
}
