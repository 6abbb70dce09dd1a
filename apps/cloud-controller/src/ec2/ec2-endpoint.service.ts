import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import {

  EC2_XML_CONTENT_TYPE,
  Ec2Error,
  isEc2Error,
  Params,
  parseQueryParams,
  readActionAndVersion,
  renderError,
  renderResponse,
} from '@koala/ec2-query';
import { withCorrelationId, type Logger } from '@koala/logging';
import { CLOCK, LOGGER, type Clock } from '@koala/runtime';
import { AuthService, type Caller } from '../auth/auth.service.js';
import { identityApiOf, renderQueryError, renderQueryResponse, type QueryApi } from '../identity/identity-protocol.js';
import { ActionRegistry } from './action-registry.js';
import type { Ec2Context } from './ec2-action.decorator.js';

/** One HTTP request as the endpoint sees it (framework-free). */
export interface Ec2HttpRequest {
  method: string;
  /** Path as received (percent-encoded, no query). */
  path: string;
  /** Raw query string without `?`. */
  query: string;
  headers: IncomingHttpHeaders;
  /** Reads the body, enforcing `limit` bytes (rejects with a 413 `Ec2Error` beyond it). */
  readBody: (limit: number) => Promise<Buffer>;
}

export interface Ec2HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function isFormBody(headers: IncomingHttpHeaders): boolean {
  const ct = (headers['content-type'] ?? '').toLowerCase();
  return ct === '' || ct.startsWith('application/x-www-form-urlencoded');
}

/**
 * The EC2 Query endpoint: body limit, parameter parsing (query string and form body merged;
 * the query string wins for a name present in both, as in SigV2 verification), authentication,
 * dispatch to the `@Ec2Action` handler, XML rendering, one JSON log line per request.
 */
@Injectable()
export class Ec2EndpointService {
  constructor(
    @Inject(ActionRegistry) private readonly registry: ActionRegistry,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
  ) {}

  handle(req: Ec2HttpRequest): Promise<Ec2HttpResponse> {
    const requestId = randomUUID();
    return withCorrelationId(requestId, () => this.run(req, requestId));
  }

  private async run(req: Ec2HttpRequest, requestId: string): Promise<Ec2HttpResponse> {
    const started = process.hrtime.bigint();
    let action: string | undefined;
    // STS/IAM identity actions answer in their own Query dialect (namespace, error shape)
    let api: QueryApi | undefined;
    let caller: Caller | undefined;
    let status: number;
    let code: string | undefined;
    let body: string;
    try {
      const rawBody = await req.readBody(this.config.apiMaxBodyBytes);
      const now = this.clock.now();
      const fromBody = req.method.toUpperCase() === 'POST' && rawBody.length > 0 && isFormBody(req.headers) ? parseQueryParams(rawBody) : {};
      const params = new Params({ ...fromBody, ...parseQueryParams(req.query) });
      action = params.raw('Action') || undefined;
      api = identityApiOf(action);
      caller = await this.auth.authenticate({ method: req.method, path: req.path, query: req.query, headers: req.headers, rawBody }, now);
      if (!action) throw Ec2Error.missingParameter('Action');
      const av = readActionAndVersion(params);
      const handler = this.registry.get(av.action);
      if (!handler) throw Ec2Error.invalidAction(av.action);
      const ctx: Ec2Context = {
        requestId,
        action: av.action,
        version: av.version,
        params,
        account: caller.account,
        accessKeyId: caller.accessKeyId,
        now,
      };
      const output = await handler(ctx);
      body = api ? renderQueryResponse(api, av.action, requestId, output) : renderResponse(av.action, av.version, requestId, output);
      status = 200;
    } catch (err) {
      if (!isEc2Error(err)) this.logger.error({ err, action, requestId }, 'unexpected error in EC2 request');
      const e = api ? renderQueryError(api, err, requestId) : renderError(err, requestId);
      status = e.status;
      code = e.code;
      body = e.body;
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    this.logger.info(
      { requestId, action, account: caller?.account.id, accessKeyId: caller?.accessKeyId, status, code, ms: Math.round(ms * 100) / 100 },
      'ec2 request',
    );
    return {
      status,
      headers: { 'content-type': EC2_XML_CONTENT_TYPE, 'x-amzn-requestid': requestId, ...(status === 413 ? { connection: 'close' } : {}) },
      body,
    };
  }
}


