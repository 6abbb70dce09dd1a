import type { ComponentKind } from '@koala/contracts';
import type { KoalaConfig } from '@koala/config';
import { redactNatsUrl } from '@koala/messaging';
import { COMPONENTS } from '../supervisor/components.js';
import { ProcessSupervisor } from '../supervisor/process-supervisor.js';
import { natsUrlFor } from '../supervisor/cloud-bus.js';
import { allInOneNet, nodeHostExists } from '../supervisor/node-host.js';
import { probeCloud, type CloudProbe } from '../supervisor/probe.js';
import { table } from '../ui.js';
import { buildCloudView, type StatusRow } from './cloud-view.js';

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
  return { healthy, components, probe, view: buildCloudView(probe) };
}

const gib = (bytes: number | undefined) => (bytes === undefined ? '?' : (bytes / 1024 ** 3).toFixed(1));

function capacityCells(r: StatusRow): string[] {
  if (r.capacity) {
    const { free, total } = r.capacity;
    return [`${free.cores}/${total.cores}`, `${free.memoryMiB}/${total.memoryMiB}`, `${free.diskGiB}/${total.diskGiB}`];
  }
  if (r.storage) return ['-', '-', `${gib(r.storage.availableBytes)}/${gib(r.storage.capacityBytes)} (${r.storage.backend ?? '?'})`];
  return ['-', '-', '-'];
}

function render(config: KoalaConfig, s: Awaited<ReturnType<typeof gatherStatus>>, probe: CloudProbe): string {
  const rows = [['COMPONENT', 'STATE', 'VERSION', 'ANSWERING', 'LOCAL PID']];
  for (const c of s.components) {
    const a = c.answers[0];
    const ids = c.answers.length <= 2 ? c.answers.map((x) => x.id).join(',') : `${c.answers.length} processes`;
    rows.push([c.kind, c.up ? 'up' : 'down', a?.version ?? '-', ids || '-', c.local.running ? String(c.local.pid) : '-']);
  }
  const lines = [table(rows), ''];
  if (!probe.natsReachable) lines.push(`NATS ${redactNatsUrl(natsUrlFor(config, 'cli'))} does not answer.`);
  const head = ['ZONE', 'ROLE', 'NAME', 'STATE', 'HOST', 'VERSION', 'CORES free/total', 'MEMORY MiB free/total', 'DISK GiB free/total', 'DOMAINS', 'LAST SEEN'];
  const trows = [head];
  for (const r of s.view.clc) trows.push(['-', r.role, r.name, r.state, r.host ?? '-', r.version ?? '-', '-', '-', '-', '-', r.lastSeen ?? '-']);
  for (const z of s.view.zones) {
    for (const r of z.rows) trows.push([z.zone, r.role, r.name, r.state, r.host ?? '-', r.version ?? '-', ...capacityCells(r), r.domains === undefined ? '-' : String(r.domains), r.lastSeen ?? '-']);
  }
  lines.push(`${s.view.zones.length} zone(s): ${s.view.zones.map((z) => `${z.zone} ${z.state} (${z.nodesUp}/${z.nodes} nodes up)`).join(', ') || 'none answering'}`);
  lines.push(table(trows));
  const net = allInOneNet(config);
  if (net) lines.push('', `Node host: network namespace ${net.netns} ${nodeHostExists(net) ? 'present' : 'absent'} (segment ${net.segment}, public side ${net.pub})`);
  lines.push('', s.healthy ? 'Koala is up.' : 'Koala is NOT fully up.');
  return lines.join('\n') + '\n';
}

/** `koala status [--json]`: every zone's CC, SCs and NCs (and the CLC): up/down, host, version, capacity, last seen. Exit 0 when healthy. */
export async function status(config: KoalaConfig, args: string[]): Promise<number> {
  const s = await gatherStatus(config);
  if (args.includes('--json'))
    process.stdout.write(
      JSON.stringify({ healthy: s.healthy, components: s.components, nodes: s.probe.nodes?.nodes ?? [], clc: s.probe.clcHealth, controllers: s.view.clc, zones: s.view.zones }, null, 2) + '\n',
    );
  else process.stdout.write(render(config, s, s.probe));
  return s.healthy ? 0 : 3;
}

/** `koala health`: silent check for scripts; exit 0 when every component and a node are up. */
export async function health(config: KoalaConfig): Promise<number> {
  const s = await gatherStatus(config);
  if (!s.healthy)
    process.stderr.write(
      `unhealthy: ${
        s.components
          .filter((c) => !c.up)
          .map((c) => c.kind)
          .join(', ') || 'no node up'
      }\n`,
    );
  return s.healthy ? 0 : 1;
}
