import { Inject, Injectable } from '@nestjs/common';
import { listNodes } from '@koala/contracts';
import type { NatsBus } from '@koala/messaging';
import { BUS } from '@koala/runtime';

/** Port: the names of a zone's nodes, as its CC lists them (rejects when the CC does not answer). */
export interface ZoneNodesPort {
  nodes(zone: string): Promise<string[]>;
}
export const ZONE_NODES = Symbol('ZONE_NODES');

@Injectable()
export class NatsZoneNodes implements ZoneNodesPort {
  constructor(@Inject(BUS) private readonly bus: NatsBus) {}

  async nodes(zone: string): Promise<string[]> {
    return (await this.bus.request(listNodes(zone), {}, { timeoutMs: 1000 })).nodes.map((n) => n.node);
  }
}
