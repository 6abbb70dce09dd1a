import type { IncomingHttpHeaders } from 'node:http';
import type { ZoneNetworkState } from '@koala/contracts';
import { errorPage, renderImds } from './imds-tree.js';
import { ImdsTokens, parseTtl, TOKEN_HEADER, TOKEN_PATH, TTL_HEADER } from './imds-tokens.js';
import { imdsInstanceOf, interfaceOfCaller, metadataOptionsOf } from './imds-view.js';
import type { LaunchRecord } from './launch-spec-store.js';

export interface ImdsRequest {
  method: string;
  /** The request target as received (path and query). */
  url: string;
  headers: IncomingHttpHeaders;
  /** The caller's address, from the relay's PROXY line: the only thing that identifies it. */
  sourceIp: string;
}

export interface ImdsResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface ImdsContext {
  node: string;
  region: string;
  state: ZoneNetworkState | undefined;
  record(instanceId: string): Promise<LaunchRecord | undefined>;
  tokens: ImdsTokens;
}

const SERVER = { server: 'EC2ws' };

export function errorResponse(status: number, extra: Record<string, string> = {}): ImdsResponse {
  return { status, headers: { ...SERVER, 'content-type': 'text/html', ...extra }, body: Buffer.from(errorPage(status)) };
}

/**
 * One metadata request, decided: who is calling (by source address only: an address that is not
 * one of this node's instances gets 404, never anyone's data), the instance's live options
 * (endpoint disabled → 404, tokens required → 401 without one), IMDSv2 token issue and checks,
 * then the tree.
 */
export async function answerImds(req: ImdsRequest, ctx: ImdsContext): Promise<ImdsResponse> {
  const iface = interfaceOfCaller(ctx.state, ctx.node, req.sourceIp);
  if (!iface) return errorResponse(404);
  const record = await ctx.record(iface.instanceId);
  if (!record) return errorResponse(404);
  const options = metadataOptionsOf(iface, record);
  if (options.httpEndpoint === 'disabled') return errorResponse(404);

  const q = req.url.indexOf('?');
  const path = q >= 0 ? req.url.slice(0, q) : req.url;
  if (path === TOKEN_PATH || path === `${TOKEN_PATH}/`) {
    if (req.method !== 'PUT') return errorResponse(405, { allow: 'PUT' });
    // A PUT that went through a proxy is not the instance's own software asking.
    if (req.headers['x-forwarded-for'] !== undefined) return errorResponse(403);
    const ttl = parseTtl(req.headers[TTL_HEADER]);
    if (ttl === undefined) return errorResponse(400);
    return {
      status: 200,
      headers: { ...SERVER, 'content-type': 'text/plain', [TTL_HEADER]: String(ttl) },
      body: Buffer.from(ctx.tokens.issue(iface.instanceId, ttl)),
    };
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return errorResponse(405, { allow: 'GET, HEAD' });

  const extra: Record<string, string> = {};
  const token = req.headers[TOKEN_HEADER];
  if (token !== undefined) {
    const left = ctx.tokens.verify(token, iface.instanceId);
    if (left === undefined) return errorResponse(401);
    extra[TTL_HEADER] = String(left);
  } else if (options.httpTokens === 'required') {
    return errorResponse(401);
  }
  if (!ctx.state) return errorResponse(404);
  const a = renderImds(imdsInstanceOf(record, iface, ctx.state, ctx.region), path);
  if (a.status === 404) return errorResponse(404, extra);
  return { status: 200, headers: { ...SERVER, 'content-type': a.contentType, ...extra }, body: a.body };
}
