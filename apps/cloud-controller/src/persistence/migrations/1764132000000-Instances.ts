import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Reservations (one per RunInstances), instances and the security groups of each instance. */
export class Instances1764132000000 implements MigrationInterface {
  name = 'Instances1764132000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE reservations (
        id            varchar(32)  PRIMARY KEY,
        account_id    varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        requester_id  varchar(12)  NOT NULL,
        client_token  varchar(64),
        params_hash   varchar(64)  NOT NULL,
        created_at    timestamptz  NOT NULL
      )`);
    await q.query('CREATE UNIQUE INDEX reservations_client_token_key ON reservations (account_id, client_token) WHERE client_token IS NOT NULL');
    await q.query(`
      CREATE TABLE instances (
        id                        varchar(32)  PRIMARY KEY,
        reservation_id            varchar(32)  NOT NULL REFERENCES reservations(id) ON DELETE CASCADE,
        account_id                varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        image_id                  varchar(32)  NOT NULL,
        kernel_id                 varchar(32),
        ramdisk_id                varchar(32),
        instance_type             varchar(32)  NOT NULL,
        state                     varchar(16)  NOT NULL,
        state_code                integer      NOT NULL,
        state_reason_code         varchar(64),
        state_reason_message      varchar(255),
        state_transition_reason   varchar(255) NOT NULL DEFAULT '',
        state_changed_at          timestamptz  NOT NULL,
        zone                      varchar(63)  NOT NULL,
        node                      varchar(63),
        key_name                  varchar(255),
        user_data                 text,
        launch_index              integer      NOT NULL,
        launch_time               timestamptz  NOT NULL,
        client_token              varchar(64),
        disable_api_termination   boolean      NOT NULL DEFAULT false,
        shutdown_behavior         varchar(16)  NOT NULL DEFAULT 'stop',
        architecture              varchar(16)  NOT NULL,
        root_device_name          varchar(64)  NOT NULL,
        root_device_type          varchar(16)  NOT NULL,
        virtualization_type       varchar(16)  NOT NULL,
        platform                  varchar(16),
        private_dns_name          varchar(255) NOT NULL,
        monitoring_state          varchar(16)  NOT NULL DEFAULT 'disabled',
        terminated_at             timestamptz,
        last_seen_at              timestamptz,
        impaired                  boolean      NOT NULL DEFAULT false,
        impaired_since            timestamptz
      )`);
    await q.query('CREATE INDEX instances_account_idx ON instances (account_id, id)');
    await q.query('CREATE INDEX instances_reservation_idx ON instances (reservation_id)');
    await q.query('CREATE INDEX instances_zone_state_idx ON instances (zone, state)');
    await q.query(`
      CREATE TABLE instance_security_groups (
        instance_id  varchar(32) NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
        group_id     varchar(32) NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
        position     integer     NOT NULL,
        PRIMARY KEY (instance_id, group_id)
      )`);
    await q.query('CREATE INDEX instance_security_groups_group_idx ON instance_security_groups (group_id)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE instance_security_groups');
    await q.query('DROP TABLE instances');
    await q.query('DROP TABLE reservations');
  }
}
