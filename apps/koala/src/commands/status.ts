import type { ComponentKind } from '@koala/contracts';
import type { KoalaConfig } from '@koala/config';
import { redactNatsUrl } from '@koala/messaging';
import { COMPONENTS } from '../supervisor/components.js';
import { ProcessSupervisor } from '../supervisor/process-supervisor.js';
import { natsUrlFor } from '../supervisor/cloud-bus.js';
import { allInOneNet, nodeHostExists } from '../supervisor/node-host.js';
import { probeCloud, type CloudProbe } from '../supervisor/probe.js';
import { table } from '../ui.js';

/** Every component's own answer plus the local pid files: what `status` and `health` judge. */
export async function gatherStatus(config: KoalaConfig) {
  const sup = new ProcessSupervisor(config);
  const probe = await probeCloud(config);
  const kinds: ComponentKind[] = ['cloud-controller', 'cluster-controller', 'node-controller', 'storage-controller'];
  const components = kinds.map((kind) => {
    const local = COMPONENTS.find((c) => c.kind === kind)!;
    const answers = probe.components.filter((c) => c.component === kind);
    const up = kind === 'cloud-controller' ? probe.clcHealthy && answers.length > 0 : answers.length > 0;
    return { kind, short: local.short, up, local: sup.state(local), answers };
  });
  const nodesUp = probe.nodes?.nodes.filter((n) => n.state === 'up') ?? [];
  const healthy = components.every((c) => c.up) && nodesUp.length > 0;
  return { healthy, components, probe };
}

function render(config: KoalaConfig, s: Awaited<ReturnType<typeof gatherStatus>>, probe: CloudProbe): string {
  const rows = [['COMPONENT', 'STATE', 'VERSION', 'ZONE', 'ID', 'LOCAL PID']];
  for (const c of s.components) {
    const a = c.answers[0];
    rows.push([c.kind, c.up ? 'up' : 'down', a?.version ?? '-', a?.zone ?? '-', c.answers.map((x) => x.id).join(',') || '-', c.local.running ? String(c.local.pid) : '-']);
  }
  const lines = [table(rows), ''];
  if (!probe.natsReachable) lines.push(`NATS ${redactNatsUrl(natsUrlFor(config, 'cli'))} does not answer.`);
  const nodes = probe.nodes?.nodes ?? [];
  lines.push(`Zone ${config.zone}: ${nodes.length} node(s)`);
  if (nodes.length) {
    const nrows = [['NODE', 'STATE', 'HYPERVISOR', 'CORES free/total', 'MEMORY MiB free/total', 'DISK GiB free/total', 'DOMAINS', 'LAST SEEN']];
    for (const n of nodes)
      nrows.push([n.node, n.state, `${n.hypervisorUri}${n.hypervisor ? ` (${n.hypervisor})` : ''}`, `${n.free.cores}/${n.total.cores}`, `${n.free.memoryMiB}/${n.total.memoryMiB}`, `${n.free.diskGiB}/${n.total.diskGiB}`, String(n.domainCount), n.lastSeen]);
    lines.push(table(nrows));
  }
  const net = allInOneNet(config);
  if (net) lines.push('', `Node host: network namespace ${net.netns} ${nodeHostExists(net) ? 'present' : 'absent'} (segment ${net.segment}, public side ${net.pub})`);
  lines.push('', s.healthy ? 'Koala is up.' : 'Koala is NOT fully up.');
  return lines.join('\n') + '\n';
}

/** `koala status [--json]`: each component and node: up/down, version, capacity. Exit 0 when all are up. */
export async function status(config: KoalaConfig, args: string[]): Promise<number> {
  const s = await gatherStatus(config);
  if (args.includes('--json')) process.stdout.write(JSON.stringify({ healthy: s.healthy, components: s.components, nodes: s.probe.nodes?.nodes ?? [], clc: s.probe.clcHealth }, null, 2) + '\n');
  else process.stdout.write(render(config, s, s.probe));
  return s.healthy ? 0 : 3;
}

/** `koala health`: silent check for scripts; exit 0 when every component and a node are up. */
export async function health(config: KoalaConfig): Promise<number> {
  const s = await gatherStatus(config);
  if (!s.healthy) process.stderr.write(`unhealthy: ${s.components.filter((c) => !c.up).map((c) => c.kind).join(', ') || 'no node up'}\n`);
  return s.healthy ? 0 : 1;
}
