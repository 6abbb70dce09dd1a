import { Inject, Injectable } from '@nestjs/common';
import {
  consoleOutput,
  instanceAction,
  listDomains,
  placeInstances,
  type ClusterSummary,
  type InstanceAction,
  type InstanceSpec,
  type NodeDomains,
  type NodeSummary,
  type PlaceInstancesResponse,
} from '@koala/contracts';
import type { NatsBus } from '@koala/messaging';
import { BUS } from '@koala/runtime';
import { ClustersService } from '../clusters/clusters.service.js';

/**
 * Port: what the instances module asks of the zones' cluster controllers (the CC contract of
 * libs/contracts/src/instances.ts). Errors are the bus's: `BusRemoteError` (the CC's EC2 code)
 * or `BusUnavailableError` (nobody answered).
 */
export interface ClusterGateway {
  zones(): Promise<Pick<ClusterSummary, 'zone' | 'state'>[]>;
  /** The zone's nodes with their capacity (cheap: no domains). */
  nodes(zone: string): Promise<NodeSummary[]>;
  /** Every node of the zone with its domains, read page by page. */
  domains(zone: string): Promise<NodeDomains[]>;
  place(zone: string, request: { reservationId: string; minCount: number; instances: InstanceSpec[] }): Promise<PlaceInstancesResponse>;
  action(zone: string, request: { instanceId: string; node: string; action: InstanceAction; force?: boolean }): Promise<void>;
  consoleOutput(zone: string, request: { instanceId: string; node: string; latest?: boolean }): Promise<{ output: string; timestamp: string }>;
}
export const CLUSTER_GATEWAY = Symbol('CLUSTER_GATEWAY');

/** The real gateway: NATS requests to `koala.v1.zone.<zone>.cc.*`. */
@Injectable()
export class NatsClusterGateway implements ClusterGateway {
  constructor(
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(ClustersService) private readonly clusters: ClustersService,
  ) {}

  zones() {
    return this.clusters.describe();
  }

  async nodes(zone: string) {
    return (await this.clusters.nodes(zone)).nodes;
  }

  async domains(zone: string) {
    const out: NodeDomains[] = [];
    let after: string | undefined;
    do {
      const page = await this.bus.request(listDomains(zone), after === undefined ? {} : { after }, { timeoutMs: 5000 });
      out.push(...page.nodes);
      after = page.next;
    } while (after !== undefined);
    return out;
  }

  place(zone: string, request: { reservationId: string; minCount: number; instances: InstanceSpec[] }) {
    return this.bus.request(placeInstances(zone), request, { timeoutMs: 15_000 });
  }

  async action(zone: string, request: { instanceId: string; node: string; action: InstanceAction; force?: boolean }) {
    await this.bus.request(instanceAction(zone), request, { timeoutMs: 15_000 });
  }

  consoleOutput(zone: string, request: { instanceId: string; node: string; latest?: boolean }) {
    return this.bus.request(consoleOutput(zone), request, { timeoutMs: 15_000 });
  }
}
