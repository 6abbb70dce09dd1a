import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * RunInstances' EBS block-device mappings, one row per (instance, device), from the request until
 * the volume is attached (or the mapping failed / was released): the CLC creates and attaches the
 * volumes from these rows, so a restarted CLC carries on where it stopped.
 */
export class InstanceBlockDevices1764135000000 implements MigrationInterface {
  name = 'InstanceBlockDevices1764135000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE instance_block_devices (
        instance_id            varchar(32)  NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
        device_name            varchar(32)  NOT NULL,
        account_id             varchar(12)  NOT NULL,
        zone                   varchar(63)  NOT NULL,
        size_gib               integer,
        snapshot_id            varchar(32),
        volume_type            varchar(16),
        iops                   integer,
        delete_on_termination  boolean      NOT NULL,
        volume_tags            jsonb        NOT NULL DEFAULT '[]',
        volume_id              varchar(32),
        state                  varchar(16)  NOT NULL CHECK (state IN ('pending', 'creating', 'attaching', 'attached', 'failed', 'released')),
        reason_code            varchar(64),
        reason_message         varchar(512),
        claimed_at             timestamptz,
        created_at             timestamptz  NOT NULL,
        PRIMARY KEY (instance_id, device_name)
      )`);
    await q.query(`CREATE INDEX instance_block_devices_open_idx ON instance_block_devices (state) WHERE state IN ('pending', 'creating', 'attaching', 'failed')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX IF EXISTS instance_block_devices_open_idx');
    await q.query('DROP TABLE IF EXISTS instance_block_devices');
  }
}
