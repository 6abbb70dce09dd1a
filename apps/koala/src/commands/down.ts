import type { KoalaConfig } from '@koala/config';
import { BusSupervisor, busEnabled } from '../supervisor/cloud-bus.js';
import { COMPONENTS } from '../supervisor/components.js';
import { allInOneNet, nodeHostDown } from '../supervisor/node-host.js';
import { ProcessSupervisor } from '../supervisor/process-supervisor.js';

/**
 * `koala down`: stops every component (CLC first, so no new work arrives) and waits for each,
 * then the cloud's nats-server, then removes the node host (its guests, libvirtd, namespaces):
 * `up` makes it afresh, and the CLC finds the instances gone as after a host failure.
 */
export async function down(config: KoalaConfig): Promise<number> {
  const sup = new ProcessSupervisor(config);
  for (const c of [...COMPONENTS].reverse()) {
    const result = await sup.stop(c);
    process.stdout.write(`${c.short.padEnd(4)} ${c.kind.padEnd(20)} ${result}\n`);
  }
  // The bus after the components: they shut down cleanly while it is there.
  if (busEnabled(config)) process.stdout.write(`${'nats'.padEnd(4)} ${'nats-server'.padEnd(20)} ${await new BusSupervisor(config).stop()}\n`);
  const net = allInOneNet(config);
  if (!net) return 0;
  const r = nodeHostDown(config, net);
  process.stdout.write(`node ${net.netns.padEnd(20)} ${'error' in r ? `NOT removed: ${r.error}` : (r.skipped ?? 'removed')}\n`);
  return 'error' in r ? 1 : 0;
}
