import { ComponentStatus, listNodes, type ListNodesResponse } from '@koala/contracts';
import type { KoalaConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { Subjects } from '@koala/contracts';
import { natsUrlFor } from './cloud-bus.js';

export interface CloudProbe {
  clcHealthy: boolean;
  clcHealth?: Record<string, unknown>;
  components: ComponentStatus[];
  nodes?: ListNodesResponse;
  natsReachable: boolean;
}

async function clcHealth(config: KoalaConfig): Promise<Record<string, unknown> | undefined> {
  const url = new URL('/healthz', `http://127.0.0.1:${config.apiPort}`);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as Record<string, unknown>;
    return res.ok ? body : { ...body, httpStatus: res.status };
  } catch {
    return undefined;
  }
}

/** Asks the running cloud how it is: the CLC's health endpoint plus every component over NATS. */
export async function probeCloud(config: KoalaConfig): Promise<CloudProbe> {
  const health = await clcHealth(config);
  let bus: NatsBus | undefined;
  try {
    bus = await NatsBus.connect({ url: natsUrlFor(config, 'cli'), caFile: config.natsCaFile, name: 'koala-cli', connectTimeoutMs: 3000, reconnectWaitMs: 500 });
  } catch {
    return { clcHealthy: health?.status === 'ok', clcHealth: health, components: [], natsReachable: false };
  }
  try {
    const components = await bus.gather(Subjects.status, ComponentStatus, {}, { timeoutMs: 700 });
    const nodes = await bus.request(listNodes(config.zone), {}, { timeoutMs: 1500 }).catch(() => undefined);
    return { clcHealthy: health?.status === 'ok', clcHealth: health, components, nodes, natsReachable: true };
  } finally {
    await bus.close();
  }
}
