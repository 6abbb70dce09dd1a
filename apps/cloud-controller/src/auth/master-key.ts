import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { koalaPaths, type KoalaConfig } from '@koala/config';

/** Injection token: the master key string that encrypts secrets at rest (`encryptSecret`). */
export const MASTER_KEY = Symbol('MASTER_KEY');

/**
 * Where the master key comes from: `KOALA_MASTER_KEY`, else `$KOALA_HOME/master.key`
 * (64 hex digits = 32 random bytes, mode 0600). The only file-system access of the auth code.
 */
export class MasterKeyFile {
  constructor(private readonly config: Pick<KoalaConfig, 'masterKey' | 'home'>) {}

  get path(): string {
    return koalaPaths(this.config.home).masterKey;
  }

  /** The key, or undefined when neither the variable nor the file exists. */
  read(): string | undefined {
    if (this.config.masterKey) return this.config.masterKey;
    try {
      const key = readFileSync(this.path, 'utf8').trim();
      if (key.length < 16) throw new Error(`${this.path} holds no usable master key (at least 16 characters)`);
      return key;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** The key; creates `$KOALA_HOME/master.key` (0600, 32 random bytes as hex) when missing. */
  ensure(): { key: string; created: boolean } {
    const existing = this.read();
    if (existing) return { key: existing, created: false };
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const key = randomBytes(32).toString('hex');
    try {
      writeFileSync(this.path, key + '\n', { mode: 0o600, flag: 'wx' });
    } catch (e) {
      // another process created it first: use theirs
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return { key: this.read()!, created: false };
      throw e;
    }
    return { key, created: true };
  }
}
