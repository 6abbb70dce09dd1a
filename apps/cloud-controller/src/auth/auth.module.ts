import { Global, Module, type DynamicModule } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ACCESS_KEY_SECRETS, masterKeySecrets } from '../accounts/access-key-secrets.js';
import { AccountsRepository } from '../accounts/accounts.repository.js';
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
      providers: [
        { provide: MASTER_KEY, useValue: opts.masterKey },
        { provide: ACCESS_KEY_SECRETS, inject: [MASTER_KEY], useFactory: masterKeySecrets },
        { provide: AccountsRepository, inject: [DataSource], useFactory: (ds: DataSource) => new AccountsRepository(ds) },
        CredentialsGenerator,
        AccountsService,
        AuthService,
        KeyChangeListener,
      ],
      exports: [MASTER_KEY, AccountsService, AuthService],
    };
  }
}
