/**
 * A zone of 10,000 instances through a real CC on a real NATS: `listNodes` stays small (capacity
 * and a domain count per node) and `listDomains` hands every domain out exactly once, in pages
 * far below NATS's 1 MiB payload limit. Before the split one answer carried every domain.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { listDomains, listNodes, MAX_DOMAINS_PER_PAGE, NodeHeartbeat, Subjects, type ListDomainsResponse } from '@koala/contracts';
import { loadConfig } from '@koala/config';
import { NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { clusterModule } from '../../apps/cluster-controller/src/cluster.module.js';
import { TestNatsServer } from '../support/nats-server.js';
import { until } from '../support/wait.js';

const ZONE = 'listing';
const NODES = 40;
const PER_NODE = 250;
const nodeName = (k: number) => `node-${String(k).padStart(3, '0')}`;
const instanceId = (k: number, d: number) => `i-${(k * 1000 + d).toString(16).padStart(17, '0')}`;

describe('cluster controller node and domain listing', () => {
  let nats: TestNatsServer;
  let client: NatsBus;
  let app: INestApplicationContext;

  beforeAll(async () => {
    nats = await TestNatsServer.start();
    client = await NatsBus.connect({ url: nats.url, name: 'test' });
    const config = loadConfig({ KOALA_NATS_URL: nats.url, KOALA_ZONE: ZONE, KOALA_HOME: mkdtempSync(join(tmpdir(), 'koala-cc-')), KOALA_LOG_LEVEL: 'error' });
    ({ app } = await startDaemon('cluster-controller', clusterModule, { zoned: true, config }));
    for (let k = 0; k < NODES; k++) {
      const domains = Array.from({ length: PER_NODE }, (_, d) => ({ name: instanceId(k, d), instanceId: instanceId(k, d), state: 'running' }));
      const hb: NodeHeartbeat = {
        node: nodeName(k),
        zone: ZONE,
        version: '0.1.0',
        hypervisorUri: 'test:///default',
        total: { cores: 64, memoryMiB: 262_144, diskGiB: 4000 },
        free: { cores: 8, memoryMiB: 32_768, diskGiB: 500 },
        domains,
        sentAt: new Date().toISOString(),
      };
      client.publish(Subjects.nodeHeartbeat(ZONE), NodeHeartbeat, hb);
    }
    await client.flush();
    await until(async () => (await client.request(listNodes(ZONE), {})).nodes.length === NODES, 10_000, 'every node registered', 100);
  });

  afterAll(async () => {
    await app?.close();
    await client?.close();
    await nats?.dispose();
  });

  it('lists nodes with capacity and a domain count, without the domains', async () => {
    const res = await client.request(listNodes(ZONE), {});
    expect(res.nodes.map((n) => n.node)).toEqual(Array.from({ length: NODES }, (_, k) => nodeName(k)));
    for (const n of res.nodes) {
      expect(n).toMatchObject({ state: 'up', domainCount: PER_NODE, free: { cores: 8 } });
      expect(n).not.toHaveProperty('domains');
    }
    expect(JSON.stringify(res).length).toBeLessThan(64 * 1024);
  });

  /** Walks every page, checking each stays within its budget. */
  async function walk(maxDomains?: number): Promise<ListDomainsResponse[]> {
    const pages: ListDomainsResponse[] = [];
    let after: string | undefined;
    do {
      const page = await client.request(listDomains(ZONE), { ...(after !== undefined && { after }), ...(maxDomains !== undefined && { maxDomains }) });
      pages.push(page);
      after = page.next;
      expect(pages.length).toBeLessThanOrEqual(NODES);
    } while (after !== undefined);
    return pages;
  }

  it('pages every domain out exactly once, each page well under the payload limit', async () => {
    const pages = await walk();
    expect(pages).toHaveLength(Math.ceil((NODES * PER_NODE) / MAX_DOMAINS_PER_PAGE));
    const ids = pages.flatMap((p) => p.nodes.flatMap((n) => n.domains.map((d) => d.instanceId)));
    expect(ids).toHaveLength(NODES * PER_NODE);
    expect(new Set(ids).size).toBe(NODES * PER_NODE);
    expect(pages.flatMap((p) => p.nodes.map((n) => n.node))).toEqual(Array.from({ length: NODES }, (_, k) => nodeName(k)));
    for (const p of pages) {
      expect(p.nodes.reduce((sum, n) => sum + n.domains.length, 0)).toBeLessThanOrEqual(MAX_DOMAINS_PER_PAGE);
      expect(Buffer.byteLength(JSON.stringify(p))).toBeLessThan(1024 * 1024);
    }
  });

  it('keeps whole nodes together, one per page when a node alone exceeds the budget', async () => {
    const pages = await walk(100);
    expect(pages.map((p) => p.nodes.length)).toEqual(Array(NODES).fill(1));
    expect(pages.every((p) => p.nodes[0].domains.length === PER_NODE)).toBe(true);
  });

  it('refuses a page size beyond the protocol limit before sending it', async () => {
    await expect(client.request(listDomains(ZONE), { maxDomains: MAX_DOMAINS_PER_PAGE + 1 })).rejects.toThrow(/maxDomains/);
  });
});
