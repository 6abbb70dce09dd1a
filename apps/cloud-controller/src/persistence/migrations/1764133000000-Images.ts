import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Images (emi/eki/eri) and their launch permissions. */
export class Images1764133000000 implements MigrationInterface {
  name = 'Images1764133000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE images (
        id                    varchar(32)  PRIMARY KEY,
        account_id            varchar(12)  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name                  varchar(128) NOT NULL,
        description           varchar(255),
        state                 varchar(16)  NOT NULL CHECK (state IN ('pending', 'available', 'failed')),
        state_reason_code     varchar(64),
        state_reason_message  text,
        image_type            varchar(16)  NOT NULL CHECK (image_type IN ('machine', 'kernel', 'ramdisk')),
        architecture          varchar(16)  NOT NULL,
        virtualization_type   varchar(16)  NOT NULL CHECK (virtualization_type IN ('hvm', 'paravirtual')),
        root_device_name      varchar(64)  NOT NULL,
        root_device_type      varchar(32)  NOT NULL DEFAULT 'instance-store',
        kernel_id             varchar(32)  REFERENCES images(id),
        ramdisk_id            varchar(32)  REFERENCES images(id),
        kernel_args           text,
        blob_sha256           varchar(64),
        size_bytes            bigint,
        format                varchar(8)   CHECK (format IN ('raw', 'qcow2')),
        is_public             boolean      NOT NULL DEFAULT false,
        image_location        text         NOT NULL,
        created_at            timestamptz  NOT NULL,
        deregistered_at       timestamptz
      )`);
    await q.query('CREATE UNIQUE INDEX images_account_name_key ON images (account_id, name) WHERE deregistered_at IS NULL');
    await q.query('CREATE INDEX images_blob_sha256_idx ON images (blob_sha256)');
    await q.query(`
      CREATE TABLE image_launch_permissions (
        image_id    varchar(32) NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        account_id  varchar(12) NOT NULL,
        PRIMARY KEY (image_id, account_id)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE image_launch_permissions');
    await q.query('DROP TABLE images');
  }
}
