/** Every TypeORM entity of the CLC, listed explicitly (see migrations/index.ts for why). */
import { AccountEntity } from '../accounts/account.entity.js';
import { AccessKeyEntity } from '../accounts/access-key.entity.js';

export const ENTITIES = [AccountEntity, AccessKeyEntity];

// Resources that need no hypervisor (tags, key pairs, security groups, addresses).
import { TagEntity } from '../tags/tag.entity.js';
import { KeyPairEntity } from '../key-pairs/key-pair.entity.js';
import { SecurityGroupEntity, SecurityGroupRuleEntity } from '../security-groups/security-group.entity.js';
import { AddressEntity } from '../addresses/address.entity.js';

(ENTITIES as Function[]).push(TagEntity, KeyPairEntity, SecurityGroupEntity, SecurityGroupRuleEntity, AddressEntity);

// Images (emi/eki/eri).
import { ImageEntity, ImageLaunchPermissionEntity } from '../images/image.entity.js';

(ENTITIES as Function[]).push(ImageEntity, ImageLaunchPermissionEntity);

// Instances (reservations, instances, their security groups).
import { InstanceEntity, InstanceSecurityGroupEntity, ReservationEntity } from '../instances/instance.entity.js';

(ENTITIES as Function[]).push(ReservationEntity, InstanceEntity, InstanceSecurityGroupEntity);

// Volumes and snapshots.
import { VolumeEntity } from '../volumes/volume.entity.js';
import { SnapshotEntity, SnapshotVolumePermissionEntity } from '../snapshots/snapshot.entity.js';

(ENTITIES as Function[]).push(VolumeEntity, SnapshotEntity, SnapshotVolumePermissionEntity);
