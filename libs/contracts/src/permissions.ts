/**
 * Who may do what on the bus: THE permission table of a Koala NATS server (one user per
 * component; per zone for CCs and SCs, per node for NCs). The nats-server configuration is
 * generated from it, and docs/SECURITY.md ("The bus") documents it; change the three together.
 *
 * Principles: a component subscribes only to the subjects it serves and publishes only the
 * requests and events that are its job; replies go back through `allow_responses` (a responder
 * may answer the requests it received, nothing else) and land in the requester's own inbox
 * prefix `_INBOX.<user>` (the bus sets it from the user name), so nobody reads another
 * component's replies (an SC's export answer carries a CHAP secret).
 */
import { EVENTS_STREAM, EventSubjects } from './instances.js';
import { Subjects } from './subjects.js';

export type BusPrincipal =
  | { kind: 'clc' }
  | { kind: 'cc'; zone: string }
  | { kind: 'sc'; zone: string }
  | { kind: 'nc'; zone: string; node: string }
  /** The operator CLI (`koala status`, `koala health`, `koala up`'s wait). */
  | { kind: 'cli' };

export interface SubjectRules {
  allow: string[];
  deny?: string[];
}

export interface BusPermissions {
  publish: SubjectRules;
  subscribe: SubjectRules;
  /** May answer requests it received (one reply each). */
  allowResponses: boolean;
}

const NAME = /^[a-z0-9][a-z0-9-]*$/;

/** The NATS user name of a principal; also its inbox prefix token. */
export function busUser(p: BusPrincipal): string {
  switch (p.kind) {
    case 'clc':
    case 'cli':
      return p.kind;
    case 'cc':
    case 'sc':
      return `${p.kind}-${p.zone}`;
    case 'nc':
      return `nc-${p.node}`;
  }
}

/** The inbox prefix of a NATS user: its replies (and JetStream deliveries) arrive below it. */
export const busInboxPrefix = (user: string) => `_INBOX.${user}`;

const JS = '$JS.API';
/** Producers may look the event stream up and create it when missing (same config for all); only the CLC updates it. */
const streamProducer = [`${JS}.INFO`, `${JS}.STREAM.INFO.${EVENTS_STREAM}`, `${JS}.STREAM.CREATE.${EVENTS_STREAM}`];
/** Durable consumers of the event stream: look up, create, pull, ack. Nothing on other streams. */
const streamConsumer = [`${JS}.CONSUMER.*.${EVENTS_STREAM}.>`, `${JS}.CONSUMER.*.*.${EVENTS_STREAM}.>`, `$JS.ACK.${EVENTS_STREAM}.>`];

/** Subject rules of one principal (pure: the table itself). */
export function natsPermissions(p: BusPrincipal): BusPermissions {
  const inbox = `${busInboxPrefix(busUser(p))}.>`;
  switch (p.kind) {
    case 'clc':
      return {
        publish: {
          allow: [
            Subjects.status,
            Subjects.clustersDescribe,
            'koala.v1.zone.*.cc.*',
            'koala.v1.zone.*.sc.*',
            'koala.v1.zone.*.network.state',
            ...streamProducer,
            `${JS}.STREAM.UPDATE.${EVENTS_STREAM}`,
            ...streamConsumer,
          ],
          // The SC's heartbeat is the SC's to send.
          deny: ['koala.v1.zone.*.sc.heartbeat'],
        },
        subscribe: { allow: [Subjects.cloudCommand('*'), Subjects.status, inbox] },
        allowResponses: true,
      };
    case 'cc':
      return {
        publish: {
          allow: [
            // Commands to the zone's nodes (`node.<node>.<cmd>`; never a heartbeat: that is `node.heartbeat`).
            `koala.v1.zone.${zoneToken(p.zone)}.node.*.*`,
            // A launch the CC could not deliver ends in its `failed` event.
            EventSubjects.instance(p.zone),
            ...streamProducer,
          ],
        },
        subscribe: {
          allow: [Subjects.clusterCommand(p.zone, '*'), Subjects.nodeHeartbeat(p.zone), EventSubjects.instance(p.zone), Subjects.status, Subjects.clustersDescribe, inbox],
        },
        allowResponses: true,
      };
    case 'sc':
      return {
        publish: { allow: [Subjects.storageHeartbeat(p.zone), Subjects.cloudCommand('list-exports'), EventSubjects.volume(p.zone), ...streamProducer] },
        subscribe: { allow: [Subjects.storageCommand(p.zone, '*'), Subjects.status, inbox], deny: [Subjects.storageHeartbeat(p.zone)] },
        allowResponses: true,
      };
    case 'nc':
      return {
        publish: { allow: [Subjects.nodeHeartbeat(p.zone), Subjects.cloudCommand('network-state'), EventSubjects.instance(p.zone), ...streamProducer] },
        subscribe: { allow: [Subjects.nodeCommand(p.zone, p.node, '*'), Subjects.zoneNetworkState(p.zone), Subjects.status, inbox] },
        allowResponses: true,
      };
    case 'cli':
      return {
        publish: { allow: [Subjects.status, Subjects.clustersDescribe, 'koala.v1.zone.*.cc.list-nodes'] },
        subscribe: { allow: [inbox] },
        allowResponses: false,
      };
  }
}

function zoneToken(zone: string): string {
  if (!NAME.test(zone)) throw new Error(`invalid zone for a NATS subject: "${zone}"`);
  return zone;
}

/** Every principal of a cloud: CLC, CLI, a CC and an SC per zone, an NC per node (node names unique across zones). */
export function busPrincipals(zones: { zone: string; nodes: string[] }[]): BusPrincipal[] {
  const out: BusPrincipal[] = [{ kind: 'clc' }, { kind: 'cli' }];
  const seen = new Set<string>();
  for (const { zone, nodes } of zones) {
    zoneToken(zone);
    out.push({ kind: 'cc', zone }, { kind: 'sc', zone });
    for (const node of nodes) {
      if (!NAME.test(node)) throw new Error(`invalid node name for a NATS user: "${node}"`);
      if (seen.has(node)) throw new Error(`node name "${node}" is used twice: NC users are per node name`);
      seen.add(node);
      out.push({ kind: 'nc', zone, node });
    }
  }
  return out;
}
