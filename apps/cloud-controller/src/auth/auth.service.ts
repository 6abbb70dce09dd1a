import { Inject, Injectable } from '@nestjs/common';
import { verifyRequest, type SignedRequest } from '@koala/aws-auth';
import { AccountsService } from '../accounts/accounts.service.js';

export interface Caller {
  accessKeyId: string;
  account: { id: string; name: string; isAdmin: boolean };
  signatureVersion: 2 | 4;
}

/**
 * Verifies an EC2 request's signature (SigV4 header / presigned, SigV2) against the access key
 * table. Throws `Ec2Error` (AuthFailure for unknown, inactive or deleted keys,
 * SignatureDoesNotMatch, RequestExpired, ...).
 */
@Injectable()
export class AuthService {
  constructor(@Inject(AccountsService) private readonly accounts: AccountsService) {}

  async authenticate(req: SignedRequest, now: Date): Promise<Caller> {
    const v = await verifyRequest(req, (id) => this.accounts.resolveAccessKey(id), now);
    return { accessKeyId: v.accessKeyId, account: v.key.account, signatureVersion: v.signatureVersion };
  }
}
