import { Module } from '@nestjs/common';
import { IdentityHandlers } from './identity.handlers.js';

/** STS/IAM identity answers for the caller (GetCallerIdentity, GetUser, ListAccountAliases). */
@Module({ providers: [IdentityHandlers] })
export class IdentityModule {}
