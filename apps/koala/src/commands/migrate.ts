import { spawnSync } from 'node:child_process';
import type { KoalaConfig } from '@koala/config';
import { CLC_ENTRY } from '../supervisor/components.js';

/** `koala migrate [up|down|status]`: the CLC owns its schema, so the CLI runs the CLC's migrator. */
export function migrate(_config: KoalaConfig, args: string[]): number {
  const r = spawnSync(process.execPath, [CLC_ENTRY, 'migrate', args[0] ?? 'up'], { stdio: 'inherit', env: process.env });
  return r.status ?? 1;
}
