import { Injectable } from '@nestjs/common';
import { randomInt } from 'node:crypto';
import { generateAccessKey } from '@koala/aws-auth';

/** Random ids for accounts and access keys, behind a class so tests can substitute it. */
@Injectable()
export class CredentialsGenerator {
  /** 12 decimal digits, first one not 0 (as AWS account ids). */
  accountId(): string {
    let s = String(1 + randomInt(9));
    for (let i = 0; i < 11; i++) s += String(randomInt(10));
    return s;
  }

  accessKey(): { accessKeyId: string; secretAccessKey: string } {
    return generateAccessKey();
  }
}
