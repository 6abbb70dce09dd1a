import { spawnSync } from 'node:child_process';
import type { KoalaConfig } from '@koala/config';
import { CLC_ENTRY } from '../supervisor/components.js';

/**
 * `koala image import|list`: runs the CLC's `image` admin command (it owns the database and the
 * image store), with the terminal passed through so the progress bar draws in place.
 */
export function image(_config: KoalaConfig, args: string[]): number {
  const r = spawnSync(process.execPath, [CLC_ENTRY, 'image', ...args], { stdio: 'inherit', env: process.env });
  return r.status ?? 1;
}
