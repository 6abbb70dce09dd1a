import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** An account (tenant). Every resource belongs to one; the admin account sees all. */
@Entity('accounts')
export class AccountEntity {
  /** 12 digits, as AWS account ids. */
  @PrimaryColumn({ type: 'varchar', length: 12 })
  id: string;

  @Column({ type: 'varchar', length: 64, unique: true })
  name: string;

  @Column({ name: 'is_admin', type: 'boolean', default: false })
  isAdmin: boolean;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
