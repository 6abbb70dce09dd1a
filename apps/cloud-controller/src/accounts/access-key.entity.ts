import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { AccountEntity } from './account.entity.js';

export type AccessKeyStatus = 'Active' | 'Inactive';

/** An access key of an account. The secret is stored encrypted with the master key (`encryptSecret`). */
@Entity('access_keys')
export class AccessKeyEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 })
  id: string;

  @Column({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'account_id' })
  account?: AccountEntity;

  /** `v1:…` blob from `encryptSecret(secret, masterKey)`; never the plain secret. */
  @Column({ name: 'secret_encrypted', type: 'text' })
  secretEncrypted: string;

  @Column({ type: 'varchar', length: 8, default: 'Active' })
  status: AccessKeyStatus;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
