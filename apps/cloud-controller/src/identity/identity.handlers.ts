import { Inject, Injectable } from '@nestjs/common';
import { Ec2Error, IAM_API, STS_API, type XmlValue } from '@koala/ec2-query';
import { AccountsService } from '../accounts/accounts.service.js';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { ACCOUNT_USER, callerIdentity } from './identity-protocol.js';

/**
 * STS `GetCallerIdentity` and IAM `GetUser` / `ListAccountAliases` for the caller's own key, on
 * the EC2 endpoint: ansible's amazon.aws modules and other tools ask them before anything else.
 * The endpoint renders them in the STS/IAM Query dialect their `dialect` names (@koala/ec2-query).
 */
@Injectable()
export class IdentityHandlers {
  constructor(@Inject(AccountsService) private readonly accounts: AccountsService) {}

  @Ec2Action('GetCallerIdentity', { params: [], dialect: STS_API })
  async getCallerIdentity(ctx: Ec2Context): Promise<Record<string, XmlValue>> {
    const id = callerIdentity(ctx.account.id);
    return { Arn: id.arn, UserId: id.userId, Account: id.account };
  }

  @Ec2Action('GetUser', { params: ['UserName'], dialect: IAM_API })
  async getUser(ctx: Ec2Context): Promise<Record<string, XmlValue>> {
    const name = ctx.params.str('UserName');
    if (name !== undefined && name !== ACCOUNT_USER) {
      throw new Ec2Error('NoSuchEntity', `The user with name ${name.slice(0, 128)} cannot be found.`, 404);
    }
    const id = callerIdentity(ctx.account.id);
    const account = await this.accounts.getAccount(ctx.account.name);
    return { User: { Path: '/', UserName: id.userName, UserId: id.userId, Arn: id.arn, CreateDate: account.createdAt } };
  }

  /** Eucalyptus: an account's alias is its name. */
  @Ec2Action('ListAccountAliases', { params: [], ignored: ['Marker', 'MaxItems'], dialect: IAM_API })
  async listAccountAliases(ctx: Ec2Context): Promise<Record<string, XmlValue>> {
    return { AccountAliases: [ctx.account.name], IsTruncated: false };
  }
}
