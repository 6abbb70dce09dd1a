import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Volumes (with their one attachment and its encrypted CHAP secret), snapshots and their createVolumePermission. */
export class Volumes1764134000000 implements MigrationInterface {
  name = 'Volumes1764134000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE volumes (
        id                     varchar(32)  PRIMARY KEY,
        account_id             varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        zone                   varchar(63)  NOT NULL,
        size_gib               integer      NOT NULL CHECK (size_gib > 0),
        snapshot_id            varchar(32),
        volume_type            varchar(16)  NOT NULL,
        iops                   integer,
        state                  varchar(16)  NOT NULL,
        state_reason_code      varchar(64),
        state_reason_message   varchar(512),
        created_at             timestamptz  NOT NULL,
        deleted_at             timestamptz,
        client_token           varchar(64),
        params_hash            varchar(64),
        attach_instance_id     varchar(32),
        attach_device          varchar(32),
        attach_node            varchar(63),
        attach_state           varchar(16),
        attach_time            timestamptz,
        delete_on_termination  boolean      NOT NULL DEFAULT false,
        guest_device           varchar(32),
        chap_user              varchar(64),
        chap_secret_enc        text,
        CHECK ((attach_state IS NULL) = (attach_instance_id IS NULL))
      )`);
    await q.query('CREATE UNIQUE INDEX volumes_client_token_key ON volumes (account_id, client_token) WHERE client_token IS NOT NULL');
    await q.query('CREATE UNIQUE INDEX volumes_attachment_device_key ON volumes (attach_instance_id, attach_device) WHERE attach_instance_id IS NOT NULL');
    await q.query('CREATE INDEX volumes_account_idx ON volumes (account_id, id)');
    await q.query('CREATE INDEX volumes_zone_attach_idx ON volumes (zone, attach_state)');
    await q.query(`
      CREATE TABLE snapshots (
        id                    varchar(32)  PRIMARY KEY,
        account_id            varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        volume_id             varchar(32)  NOT NULL,
        volume_size_gib       integer      NOT NULL,
        zone                  varchar(63)  NOT NULL,
        state                 varchar(16)  NOT NULL,
        progress              integer      NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
        state_reason_code     varchar(64),
        state_reason_message  varchar(512),
        start_time            timestamptz  NOT NULL,
        description           varchar(255) NOT NULL DEFAULT '',
        is_public             boolean      NOT NULL DEFAULT false,
        source_snapshot_id    varchar(32)
      )`);
    await q.query('CREATE INDEX snapshots_account_idx ON snapshots (account_id, id)');
    await q.query(`
      CREATE TABLE snapshot_volume_permissions (
        snapshot_id  varchar(32) NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
        account_id   varchar(12) NOT NULL,
        PRIMARY KEY (snapshot_id, account_id)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE snapshot_volume_permissions');
    await q.query('DROP TABLE snapshots');
    await q.query('DROP TABLE volumes');
  }
}
