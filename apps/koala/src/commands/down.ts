import type { KoalaConfig } from '@koala/config';
import { COMPONENTS } from '../supervisor/components.js';
import { ProcessSupervisor } from '../supervisor/process-supervisor.js';

/** `koala down`: stops every component (CLC first, so no new work arrives) and waits for each. */
export async function down(config: KoalaConfig): Promise<number> {
  const sup = new ProcessSupervisor(config);
  for (const c of [...COMPONENTS].reverse()) {
    const result = await sup.stop(c);
    process.stdout.write(`${c.short.padEnd(4)} ${c.kind.padEnd(20)} ${result}\n`);
  }
  return 0;
}
