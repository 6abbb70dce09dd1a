import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { decryptSecret, encryptSecret } from '@koala/aws-auth';
import { MASTER_KEY } from '../auth/master-key.js';

/** Port: CHAP secrets — generated at random, kept encrypted at rest with the master key. */
export interface ChapSecrets {
  /** A fresh random secret (32 characters, URL-safe base64 of 24 random bytes). */
  generate(): string;
  seal(secret: string): string;
  open(sealed: string): string;
}
export const CHAP_SECRETS = Symbol('CHAP_SECRETS');

@Injectable()
export class MasterKeyChapSecrets implements ChapSecrets {
  constructor(@Inject(MASTER_KEY) private readonly masterKey: string) {}

  generate() {
    return randomBytes(24).toString('base64url');
  }
  seal(secret: string) {
    return encryptSecret(secret, this.masterKey);
  }
  open(sealed: string) {
    return decryptSecret(sealed, this.masterKey);
  }
}
