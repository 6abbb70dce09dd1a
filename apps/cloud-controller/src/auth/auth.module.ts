import { Global, Module, type DynamicModule } from '@nestjs/common';
import { AccountsService } from '../accounts/accounts.service.js';
import { CredentialsGenerator } from '../accounts/credentials-generator.js';
import { KeyChangeListener } from '../accounts/key-change-listener.js';
import { AuthService } from './auth.service.js';
import { MASTER_KEY } from './master-key.js';

/** Accounts, access keys and request authentication; global so any resource module can inject `AccountsService`. */
@Global()
@Module({})
export class AuthModule {
  static forRoot(opts: { masterKey: string }): DynamicModule {
    return {
      module: AuthModule,
      providers: [{ provide: MASTER_KEY, useValue: opts.masterKey }, CredentialsGenerator, AccountsService, AuthService, KeyChangeListener],
      exports: [MASTER_KEY, AccountsService, AuthService],
    };
  }
}
