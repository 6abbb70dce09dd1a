/**
 * The CLC's database: its DataSource with every entity of its resource folders (listed
 * explicitly, see persistence/migrations/index.ts for why) and the migrations. It stands above
 * the folders, so persistence/ depends on none of them.
 */
import { DataSource } from 'typeorm';
import { MIGRATIONS } from './persistence/migrations/index.js';
import { AccountEntity } from './accounts/account.entity.js';
import { AccessKeyEntity } from './accounts/access-key.entity.js';

export const ENTITIES = [AccountEntity, AccessKeyEntity];

// Resources that need no hypervisor (tags, key pairs, security groups, addresses).
import { TagEntity } from './tags/tag.entity.js';
import { KeyPairEntity } from './key-pairs/key-pair.entity.js';
import { SecurityGroupEntity, SecurityGroupRuleEntity } from './security-groups/security-group.entity.js';
import { AddressEntity } from './addresses/address.entity.js';

(ENTITIES as Function[]).push(TagEntity, KeyPairEntity, SecurityGroupEntity, SecurityGroupRuleEntity, AddressEntity);

// Images (emi/eki/eri).
import { ImageEntity, ImageLaunchPermissionEntity } from './images/image.entity.js';

(ENTITIES as Function[]).push(ImageEntity, ImageLaunchPermissionEntity);

// Instances (reservations, instances, their security groups).
import { InstanceEntity, InstanceSecurityGroupEntity, ReservationEntity } from './instances/instance.entity.js';

(ENTITIES as Function[]).push(ReservationEntity, InstanceEntity, InstanceSecurityGroupEntity);

// Volumes and snapshots.
import { VolumeEntity } from './volumes/volume.entity.js';
import { SnapshotEntity, SnapshotVolumePermissionEntity } from './snapshots/snapshot.entity.js';

(ENTITIES as Function[]).push(VolumeEntity, SnapshotEntity, SnapshotVolumePermissionEntity);

/** The CLC's DataSource. Schema changes only through migrations, never `synchronize`. */
export function createDataSource(databaseUrl: string): DataSource {
  return new DataSource({
    type: 'postgres',
    url: databaseUrl,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'koala_migrations',
    synchronize: false,
    migrationsRun: false,
    extra: { max: 20 },
  });
}
