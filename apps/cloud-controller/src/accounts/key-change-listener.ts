import { Inject, Injectable, Optional, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import pg from 'pg';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { Logger } from '@koala/logging';
import { LOGGER } from '@koala/runtime';
import { AccountsService } from './accounts.service.js';

/** Channel on which the database announces access key and account changes (migration AccessKeyNotify). */
export const ACCESS_KEYS_CHANNEL = 'koala_access_keys';

/**
 * Listens (own PostgreSQL connection, `LISTEN koala_access_keys`) for changes of access keys and
 * accounts made by any process, and makes AccountsService's key cache forget them. The cache is
 * on only while this connection listens: lost connection → cache off and emptied, reconnect
 * after a second, cache on again once listening.
 */
@Injectable()
export class KeyChangeListener implements OnModuleInit, OnModuleDestroy {
  private client?: pg.Client;
  private retry?: NodeJS.Timeout;
  private closed = false;

  constructor(
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(KOALA_CONFIG) private readonly config: Pick<KoalaConfig, 'databaseUrl'>,
    @Optional() @Inject(LOGGER) private readonly logger?: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.connect();
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    this.accounts.keyCache.setEnabled(false);
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.config.databaseUrl });
    const lost = (err?: unknown) => {
      if (this.client !== client) return;
      this.client = undefined;
      this.accounts.keyCache.setEnabled(false);
      if (this.closed) return;
      this.logger?.warn({ err }, 'access key change listener lost its connection; key cache off until it is back');
      client.end().catch(() => undefined);
      this.retry = setTimeout(() => void this.connect(), 1000);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (n) => {
      if (n.channel !== ACCESS_KEYS_CHANNEL) return;
      if (!n.payload || n.payload === '*') this.accounts.keyCache.forgetAll();
      else this.accounts.keyCache.forget(n.payload);
    });
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${ACCESS_KEYS_CHANNEL}`);
      if (this.client === client && !this.closed) this.accounts.keyCache.setEnabled(true);
      else await client.end().catch(() => undefined);
    } catch (err) {
      lost(err);
    }
  }
}
