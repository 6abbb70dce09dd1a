import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { Ec2EndpointService } from './ec2-endpoint.service.js';
import { EC2_PATHS, writeEc2Response } from './ec2.controller.js';

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 414: 'URI Too Long', 431: 'Request Header Fields Too Large' };

function isEc2Path(path: string): boolean {
  const p = path.length > 1 ? path.replace(/\/+$/, '') : path;
  return EC2_PATHS.includes(p);
}

/**
 * What the framework and Node would answer on their own, answered as EC2 instead: no
 * `X-Powered-By`; unknown paths (404 `InvalidAction`) and methods other than GET/POST on the EC2
 * paths (405 `UnsupportedHttpVerb`) get EC2 error documents; so do requests Node's HTTP parser
 * refuses (request line or headers over 16 KiB: 431, malformed: 400), which otherwise get a
 * bare status line. Other routes (/healthz, image blobs) keep their own answers.
 */
@Injectable()
export class HttpEdge implements OnModuleInit {
  constructor(
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(Ec2EndpointService) private readonly endpoint: Ec2EndpointService,
  ) {}

  // onModuleInit: after the controllers' routes are registered, before Nest adds its JSON not-found handler
  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter;
    if (!adapter) return; // application context without HTTP
    const app = adapter.getInstance() as { disable(s: string): void; use(fn: (req: Request, res: Response, next: NextFunction) => void): void };
    app.disable('x-powered-by');
    // Registered after every controller route, before Nest's JSON not-found handler.
    app.use((req, res) => {
      const path = (req.originalUrl || req.url).split('?', 1)[0]!;
      const method = req.method.toUpperCase();
      if (isEc2Path(path)) {
        const out = this.endpoint.refuse(405, 'UnsupportedHttpVerb', `The HTTP verb ${method.slice(0, 16)} is not supported; use GET or POST.`, { method: method.slice(0, 16) });
        writeEc2Response(req, res, out, { allow: 'GET, POST' });
        return;
      }
      const out = this.endpoint.refuse(404, 'InvalidAction', 'The requested path is not served by this endpoint; send EC2 Query requests to /.', { method: method.slice(0, 16) });
      writeEc2Response(req, res, out);
    });
    const server = adapter.getHttpServer() as Server | undefined;
    server?.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.clientError(err, socket));
  }

  private clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    // as Node's own handler: nothing to answer on a dead socket or after a response began
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const code = status === 431 ? 'RequestHeaderSectionTooLarge' : status === 408 ? 'RequestTimeout' : 'MalformedHTTPRequest';
    const message =
      status === 431
        ? 'The request line and headers must not exceed 16 KiB; send large parameters in a POST body.'
        : status === 408
          ? 'The request was not received in time.'
          : 'The HTTP request could not be parsed.';
    const out = this.endpoint.refuse(status, code, message, { httpError: err.code });
    const body = Buffer.from(out.body, 'utf8');
    const head = [`HTTP/1.1 ${status} ${REASONS[status]}`, ...Object.entries(out.headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${body.length}`, 'connection: close', '', ''].join('\r\n');
    socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  }
}
