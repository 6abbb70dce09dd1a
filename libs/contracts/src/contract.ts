import type { z } from 'zod';
import { ListDomainsRequest, ListDomainsResponse, ListNodesRequest, ListNodesResponse } from './messages.js';
import { Subjects } from './subjects.js';

/** A request/reply operation: subject plus the request and reply schemas, checked by the bus. */
export interface RequestContract<Req extends z.ZodType, Res extends z.ZodType> {
  readonly name: string;
  readonly subject: string;
  readonly request: Req;
  readonly response: Res;
}

export function requestContract<Req extends z.ZodType, Res extends z.ZodType>(name: string, subject: string, request: Req, response: Res): RequestContract<Req, Res> {
  return { name, subject, request, response };
}

/** CLC -> a zone's CC: the nodes it knows. */
export const listNodes = (zone: string) => requestContract('cc.list-nodes', Subjects.clusterCommand(zone, 'list-nodes'), ListNodesRequest, ListNodesResponse);
/** CLC -> a zone's CC: its nodes' domains, a page at a time (reconciliation). */
export const listDomains = (zone: string) => requestContract('cc.list-domains', Subjects.clusterCommand(zone, 'list-domains'), ListDomainsRequest, ListDomainsResponse);
