import type { KoalaConfig } from '@koala/config';
import { BusSupervisor, busEnabled } from '../supervisor/cloud-bus.js';
import { COMPONENTS } from '../supervisor/components.js';
import { ProcessSupervisor } from '../supervisor/process-supervisor.js';

/** `koala down`: stops every component (CLC first, so no new work arrives) and waits for each, then the cloud's nats-server. */
export async function down(config: KoalaConfig): Promise<number> {
  const sup = new ProcessSupervisor(config);
  for (const c of [...COMPONENTS].reverse()) {
    const result = await sup.stop(c);
    process.stdout.write(`${c.short.padEnd(4)} ${c.kind.padEnd(20)} ${result}\n`);
  }
  // The bus last: components shut down cleanly while it is there.
  if (busEnabled(config)) process.stdout.write(`${'nats'.padEnd(4)} ${'nats-server'.padEnd(20)} ${await new BusSupervisor(config).stop()}\n`);
  return 0;
}
