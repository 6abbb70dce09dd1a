import { Inject, Injectable } from '@nestjs/common';
import { networkState, networkStateSubject, ZoneNetworkState } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import type { NatsBus } from '@koala/messaging';
import { BUS, LOGGER } from '@koala/runtime';

/** Port: how the desired network states reach the nodes (NATS), and how nodes ask for one. */
export interface NetworkBusPort {
  publish(state: ZoneNetworkState): void;
  /**
   * Answers `networkState(zone)` requests with `answer`; undefined = not this cloud's zone (no
   * reply at all, so a cloud that knows it answers). Returns the function that stops answering.
   */
  serve(answer: (zone: string, node: string) => Promise<ZoneNetworkState | undefined>): () => void;
}
export const NETWORK_BUS = Symbol('NETWORK_BUS');

const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

@Injectable()
export class NatsNetworkBus implements NetworkBusPort {
  constructor(
    @Inject(BUS) private readonly bus: NatsBus,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  publish(state: ZoneNetworkState): void {
    this.bus.publish(networkStateSubject(state.zone), ZoneNetworkState, state);
  }

  serve(answer: (zone: string, node: string) => Promise<ZoneNetworkState | undefined>): () => void {
    // Not bus.handle(): it must reply to every request, and clouds sharing one NATS (tests) must
    // stay silent about each other's zones. No queue group: every CLC of the cloud may answer;
    // they build the same state and the node takes the first reply. Replies use the bus's envelope.
    const contract = networkState();
    const sub = this.bus.connection.subscribe(contract.subject, {
      callback: (err, msg) => {
        if (err || !msg.reply) return;
        void (async () => {
          let reply: unknown;
          try {
            const req = contract.request.parse(JSON.parse(new TextDecoder().decode(msg.data)));
            const state = await answer(req.zone, req.node);
            if (!state) return;
            reply = { ok: contract.response.parse(state) };
          } catch (e) {
            const er = e as Error & { code?: string };
            if (!er.code) this.logger.warn({ err: e }, 'network-state request failed');
            reply = { error: { code: typeof er.code === 'string' ? er.code : 'InternalError', message: er.message ?? String(e) } };
          }
          msg.respond(encode(reply));
        })();
      },
    });
    return () => sub.unsubscribe();
  }
}
