import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A tag on any resource; the resource is identified by its id (its prefix names its kind). */
@Entity('tags')
export class TagEntity {
  @PrimaryColumn({ name: 'resource_id', type: 'varchar', length: 64 })
  resourceId: string;

  @PrimaryColumn({ type: 'varchar', length: 128 })
  key: string;

  @Column({ type: 'varchar', length: 256, default: '' })
  value: string;

  @Column({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;

  /** EC2 resource type as DescribeTags shows it: `key-pair`, `security-group`, `elastic-ip`, ... */
  @Column({ name: 'resource_type', type: 'varchar', length: 64 })
  resourceType: string;
}
