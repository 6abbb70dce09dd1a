import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import {
  EC2_XML_CONTENT_TYPE,
  checkParamShapes,
  Ec2Error,
  isEc2Error,
  Params,
  readActionAndVersion,
  readRequestParams,
  renderError,
  renderQueryError,
  renderQueryResponse,
  renderResponse,
  validateParamMap,
  type QueryApi,
} from '@koala/ec2-query';
import { withCorrelationId, type Logger } from '@koala/logging';
import { CLOCK, LOGGER, type Clock } from '@koala/runtime';
import { AuthService, type Caller } from '../auth/auth.service.js';
import { internalErrorMessage } from '../clusters/zone-error.js';
import { ActionRegistry } from './action-registry.js';
import { ec2Requests, ec2RequestSeconds } from './ec2-metrics.js';
import { RequestRateLimiter } from './rate-limiter.js';
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

/**
 * A PostgreSQL data exception (SQLSTATE class 22: NUL byte, invalid encoding, value too long,
 * out of range, bad number/uuid syntax) is bad input that slipped past the edge checks, not an
 * internal error: the caller gets InvalidParameterValue (400) and nothing of the SQL.
 */
export function databaseInputError(err: unknown): Ec2Error | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; driverError?: { code?: unknown } };
  const code = typeof e.driverError?.code === 'string' ? e.driverError.code : e.code;
  if (typeof code !== 'string' || !/^22[0-9A-Z]{3}$/.test(code)) return undefined;
  return new Ec2Error('InvalidParameterValue', 'A parameter value is invalid (too long, out of range or not representable).');
}

/**
 * A database that is momentarily unable to serve (a deadlock or serialization failure PostgreSQL
 * broke by aborting this transaction, too many connections, a lock timeout, the server starting
 * or shutting down) as EC2's `Unavailable` 503, which the SDKs retry: nothing was written (the
 * transaction was rolled back), and the caller did nothing wrong. Other errors: undefined.
 */
export function databaseBusyError(err: unknown): Ec2Error | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; driverError?: { code?: unknown } };
  const code = typeof e.driverError?.code === 'string' ? e.driverError.code : e.code;
  if (typeof code !== 'string' || !/^(40001|40P01|53[0-9A-Z]{3}|55P03|57P0[1-3])$/.test(code)) return undefined;
  return new Ec2Error('Unavailable', 'The service is busy right now; try the request again.', 503);
}

/**
 * Tests set `recorder` to learn the shape of every parameter name each action's handler reads
 * (test/api/parameters.e2e-spec.ts holds them against the declared shapes). Unset in production.
 */
export const paramReads: { recorder?: (action: string, shape: string, prefix: boolean) => void } = {};

/** The action name for logs: only a plausible one (a hostile Action is not log material). */
function loggableAction(a: string | undefined): string | undefined {
  return a && /^[A-Za-z0-9]{1,64}$/.test(a) ? a : a ? '(invalid)' : undefined;
}

/**
 * The EC2 Query endpoint: body limit, parameter parsing (`readRequestParams`: query string and
 * form body merged, the query string winning; the same reading verifies SigV2 signatures, and a
 * non-form POST body is refused), authentication, edge validation of every parameter
 * (`validateParamMap`: NUL/control characters, lengths), the request rate limit per access key,
 * the action's declared parameter shapes (`checkParamShapes`: unknown names refused, bare list
 * names read as `.1`), dispatch to the `@Ec2Action` handler,
 * XML rendering, one JSON log line per request.
 */
@Injectable()
export class Ec2EndpointService {
  constructor(
    @Inject(ActionRegistry) private readonly registry: ActionRegistry,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(RequestRateLimiter) private readonly limiter: Pick<RequestRateLimiter, 'allow'>,
  ) {}

  /**
   * An EC2 error document for a request that never reaches an action (unknown path or method,
   * unparsable HTTP): the endpoint answers nothing that is not EC2 XML with a request id.
   */
  refuse(status: number, code: string, message: string, log: Record<string, unknown> = {}): Ec2HttpResponse {
    const requestId = randomUUID();
    const e = renderError(new Ec2Error(code, message, status), requestId);
    this.logger.info({ requestId, status, code, ...log }, 'ec2 request refused');
    return { status, headers: { 'content-type': EC2_XML_CONTENT_TYPE, 'x-amzn-requestid': requestId }, body: e.body };
  }

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
      const signed = { method: req.method, path: req.path, query: req.query, headers: req.headers, rawBody };
      const extracted = readRequestParams(signed);
      const params = new Params(extracted.map);
      action = loggableAction(params.raw('Action') || undefined);
      // Known before authentication, so a refused key is answered in the action's own dialect.
      api = action === undefined ? undefined : this.registry.entry(action)?.dialect;
      caller = await this.auth.authenticate({ ...signed, params: extracted }, now);
      // After authentication: forged requests naming someone's key id cannot drain its bucket.
      if (!caller.account.isAdmin && !this.limiter.allow(caller.accessKeyId)) throw new Ec2Error('RequestLimitExceeded', 'Request limit exceeded.');
      validateParamMap(extracted.map);
      if (!action) throw Ec2Error.missingParameter('Action');
      const av = readActionAndVersion(params);
      const entry = this.registry.entry(av.action);
      if (!entry) throw Ec2Error.invalidAction(av.action);
      // before the handler: an unknown name is refused, never ignored (nothing half-happens)
      const checked = checkParamShapes(extracted.map, entry.shapes);
      const record = paramReads.recorder;
      const ctx: Ec2Context = {
        requestId,
        action: av.action,
        version: av.version,
        params: new Params(checked, '', record && ((shape, prefix) => record(av.action, shape, prefix))),
        account: caller.account,
        accessKeyId: caller.accessKeyId,
        now,
      };
      const output = await entry.handler(ctx);
      body = api ? renderQueryResponse(api, av.action, requestId, output) : renderResponse(av.action, av.version, requestId, output);
      status = 200;
    } catch (caught) {
      let err = caught;
      if (!isEc2Error(err)) {
        const input = databaseInputError(err);
        const busy = input ? undefined : databaseBusyError(err);
        // the logger's err serializer drops a QueryFailedError's bound parameters
        if (input) this.logger.warn({ err, action, requestId }, 'database refused a parameter value');
        else if (busy) this.logger.warn({ err, action, requestId }, 'database busy: answered Unavailable, nothing written');
        else this.logger.error({ err, action, requestId }, 'unexpected error in EC2 request');
        err = input ?? busy ?? err;
      } else if (err.code === 'InternalError') this.logger.error({ action, requestId, detail: err.message }, 'internal error in EC2 request');
      // Internal failures answer a generic message with the request id; their text (component
      // errors: host paths, libvirt/tgt output) is in the log line above, under that id.
      const internal = !isEc2Error(err) || err.code === 'InternalError';
      const shown = internal ? new Ec2Error('InternalError', internalErrorMessage(requestId)) : err;
      const e = api ? renderQueryError(api, shown, requestId) : renderError(shown, requestId);
      status = e.status;
      code = e.code;
      body = e.body;
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    // label only actions we serve: any other Action string would be a new series per request
    const label = action && this.registry.entry(action) ? action : action ? 'unknown' : 'none';
    ec2Requests.inc({ action: label, code: code ?? 'ok' });
    ec2RequestSeconds.observe({ action: label }, ms / 1000);
    this.logger.info({ requestId, action, account: caller?.account.id, accessKeyId: caller?.accessKeyId, status, code, ms: Math.round(ms * 100) / 100 }, 'ec2 request');
    return {
      status,
      headers: { 'content-type': EC2_XML_CONTENT_TYPE, 'x-amzn-requestid': requestId, ...(status === 413 ? { connection: 'close' } : {}) },
      body,
    };
  }
}
