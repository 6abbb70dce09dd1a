import { spawnSync } from 'node:child_process';
import type { KoalaConfig } from '@koala/config';
import { CLC_ENTRY } from '../supervisor/components.js';

/** Account administration lives in the CLC (it owns the database and the master key): run its admin command. */
function clcAdmin(command: string) {
  return (_config: KoalaConfig, args: string[]): number => {
    const r = spawnSync(process.execPath, [CLC_ENTRY, command, ...args], { stdio: 'inherit', env: process.env });
    return r.status ?? 1;
  };
}

/** `koala bootstrap`: master key, schema, admin account + access key, $KOALA_HOME/admin.env (idempotent). */
export const bootstrap = clcAdmin('bootstrap');
/** `koala account create NAME | list`. */
export const account = clcAdmin('account');
/** `koala credentials NAME`: export lines for an account (creates a key if it has none). */
export const credentials = clcAdmin('credentials');
/** `koala access-key create|list|deactivate|activate|delete ACCOUNT [KEYID]`. */
export const accessKey = clcAdmin('access-key');
/** `koala quota list ACCOUNT | set ACCOUNT NAME VALUE|default`: per-account quota overrides. */
export const quota = clcAdmin('quota');
