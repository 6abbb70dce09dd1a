import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A key pair: name, fingerprint and public key (OpenSSH line). The private key is never stored. */
@Entity('key_pairs')
export class KeyPairEntity {
  /** `key-` + 17 hex. */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  id: string;

  @Column({ name: 'account_id', type: 'varchar', length: 12 })
  accountId: string;

  @Column({ type: 'varchar', length: 255 })
  name: string;

  @Column({ name: 'key_type', type: 'varchar', length: 16 })
  keyType: 'rsa' | 'ed25519';

  @Column({ type: 'varchar', length: 128 })
  fingerprint: string;

  /** `ssh-rsa AAAA…` / `ssh-ed25519 AAAA…` (what the config drive puts in authorized_keys). */
  @Column({ name: 'public_key', type: 'text' })
  publicKey: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
