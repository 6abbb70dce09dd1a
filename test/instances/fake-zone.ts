/**
 * A fake cluster controller + node controller for one zone, on the real NATS: answers the CC
 * contract (placeInstances / instanceAction / consoleOutput / listNodes / listDomains / clusters.describe) and
 * publishes InstanceEvents through the real JetStream stream, as the real CC/NC will. Lets the
 * CLC's instance work be tested end to end while the real CC and NC are written.
 */
import {
  ClusterSummary,
  consoleOutput,
  EventSubjects,
  InstanceEvent,
  instanceAction,
  listDomains,
  listNodes,
  placeInstances,
  QueueGroups,
  Subjects,
  type InstanceSpec,
  EVENTS_STREAM_SPEC,
} from '@koala/contracts';
import { NatsBus, type EventStream } from '@koala/messaging';

type DomainState = 'running' | 'shutoff';
const codeError = (code: string, message: string) => Object.assign(new Error(message), { code });

export class FakeZone {
  /** Instance slots the node has left. */
  capacity = 4;
  nodeState: 'up' | 'down' = 'up';
  /** When false, the NC never reports anything (events lost). */
  publishEvents = true;
  /** Domains on the node: instance id → state. */
  readonly domains = new Map<string, DomainState>();
  readonly specs = new Map<string, InstanceSpec>();
  readonly actions: Array<{ instanceId: string; action: string; force?: boolean }> = [];
  readonly node: string;
  private events!: EventStream;

  private constructor(
    readonly zone: string,
    private readonly bus: NatsBus,
  ) {
    this.node = `${zone}-n1`;
  }

  static async start(zone: string, natsUrl = 'nats://127.0.0.1:4222'): Promise<FakeZone> {
    const bus = await NatsBus.connect({ url: natsUrl, name: `fake-zone-${zone}` });
    const z = new FakeZone(zone, bus);
    await z.serve();
    return z;
  }

  private async serve() {
    const { zone, bus } = this;
    this.events = bus.events(EVENTS_STREAM_SPEC);
    await this.events.ensure();
    const queue = QueueGroups.cluster(zone);
    bus.answer(Subjects.clustersDescribe, () =>
      ClusterSummary.parse({
        zone,
        ccId: `fake-cc-${zone}`,
        state: 'available',
        policy: 'GREEDY',
        nodes: 1,
        nodesUp: this.nodeState === 'up' ? 1 : 0,
        total: { cores: 4, memoryMiB: 4096, diskGiB: 100 },
        free: { cores: 4, memoryMiB: 4096, diskGiB: 100 },
      }),
    );
    bus.handle(
      listNodes(zone),
      () => ({
        zone,
        nodes: [
          {
            node: this.node,
            zone,
            version: 'test',
            hypervisorUri: 'test:///default',
            total: { cores: 4, memoryMiB: 4096, diskGiB: 100 },
            free: { cores: 4, memoryMiB: 4096, diskGiB: 100 },
            domainCount: this.domains.size,
            sentAt: new Date().toISOString(),
            state: this.nodeState,
            lastSeen: new Date().toISOString(),
          },
        ],
      }),
      { queue },
    );
    bus.handle(
      listDomains(zone),
      () => ({
        zone,
        nodes: [{ node: this.node, state: this.nodeState, lastSeen: new Date().toISOString(), domains: [...this.domains].map(([id, state]) => ({ name: id, instanceId: id, state })) }],
      }),
      { queue },
    );
    bus.handle(
      placeInstances(zone),
      (req) => {
        const n = Math.min(req.instances.length, this.capacity);
        if (n < req.minCount) throw codeError('InsufficientInstanceCapacity', `There is not enough capacity in zone ${zone} to launch ${req.minCount} instance(s).`);
        const placed = req.instances.slice(0, n);
        this.capacity -= n;
        for (const spec of placed) this.specs.set(spec.instanceId, spec);
        setTimeout(() => {
          for (const spec of placed) {
            this.domains.set(spec.instanceId, 'running');
            // a test may already have closed the zone when this fires: the event is then simply lost
            this.emit(spec.instanceId, 'running').catch(() => undefined);
          }
        }, 100);
        return { placements: placed.map((s) => ({ instanceId: s.instanceId, node: this.node })) };
      },
      { queue },
    );
    bus.handle(
      instanceAction(zone),
      async (req) => {
        this.actions.push({ instanceId: req.instanceId, action: req.action, force: req.force });
        const id = req.instanceId;
        switch (req.action) {
          case 'terminate':
            if (this.domains.delete(id)) this.capacity++;
            await this.emit(id, 'terminated');
            break;
          case 'stop':
            this.domains.set(id, 'shutoff');
            await this.emit(id, 'stopped');
            break;
          case 'start':
            this.domains.set(id, 'running');
            await this.emit(id, 'running');
            break;
          case 'reboot':
            break;
        }
        return { accepted: true };
      },
      { queue },
    );
    bus.handle(consoleOutput(zone), (req) => ({ output: Buffer.from(`Koala tiny-linux\ninstance-id: ${req.instanceId}\n`).toString('base64'), timestamp: new Date().toISOString() }), { queue });
    await bus.flush();
  }

  private closed = false;

  /** Publishes an InstanceEvent as the NC would. */
  async emit(instanceId: string, state: InstanceEvent['state'], extra: Partial<InstanceEvent> = {}) {
    if (!this.publishEvents || this.closed) return;
    await this.events.publish(EventSubjects.instance(this.zone), InstanceEvent, { instanceId, zone: this.zone, node: this.node, state, at: new Date().toISOString(), ...extra });
  }

  async close() {
    this.closed = true;
    await this.bus.close();
  }
}
