import { Inject, Injectable } from '@nestjs/common';
import { verifyRequest, type SignedRequest } from '@koala/aws-auth';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { AccountsService, type ResolvedAccessKey } from '../accounts/accounts.service.js';

export interface Caller {
  accessKeyId: string;
  account: { id: string; name: string; isAdmin: boolean };
  signatureVersion: 2 | 4;
}

/** What authentication asks of the accounts (AccountsService; specs: a fake). */
export interface AccessKeyResolver {
  /** The key's secret, whether it is active, and its account; undefined for an unknown key. */
  resolveAccessKey(accessKeyId: string): Promise<ResolvedAccessKey | undefined>;
}

/**
 * Verifies an EC2 request's signature (SigV4 header / presigned, SigV2) against the access key
 * table. Throws `Ec2Error` (AuthFailure for unknown, inactive or deleted keys and for ids that
 * cannot be access key ids, SignatureDoesNotMatch, RequestExpired, ...). Presigned URLs live at
 * most `KOALA_PRESIGN_MAX_SECONDS`.
 */
@Injectable()
export class AuthService {
  constructor(
    @Inject(AccountsService) private readonly accounts: AccessKeyResolver,
    @Inject(KOALA_CONFIG) private readonly config: Pick<KoalaConfig, 'presignMaxSeconds'>,
  ) {}

  async authenticate(req: SignedRequest, now: Date): Promise<Caller> {
    const v = await verifyRequest(req, (id) => this.accounts.resolveAccessKey(id), now, { maxPresignSeconds: this.config.presignMaxSeconds });
    return { accessKeyId: v.accessKeyId, account: v.key.account, signatureVersion: v.signatureVersion };
  }
}
