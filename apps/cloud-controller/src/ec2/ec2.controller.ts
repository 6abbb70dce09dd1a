import { Controller, Get, Inject, Optional, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { Ec2EndpointService, type Ec2HttpRequest, type Ec2HttpResponse } from './ec2-endpoint.service.js';
import { readRawBody } from './raw-body.js';
import { CLC_ROLE, type ClcRole } from '../cluster/clc-role.js';

/** AWS's path and the two Eucalyptus paths; trailing slashes are tolerated (Express non-strict routing). */
export const EC2_PATHS = ['/', '/services/compute', '/services/Eucalyptus'];

/** Writes an endpoint answer with Express's response (HEAD: headers only, as HTTP requires). */
export function writeEc2Response(req: Request, res: Response, out: Ec2HttpResponse, extra: Record<string, string> = {}): void {
  const body = Buffer.from(out.body, 'utf8');
  res.writeHead(out.status, { ...out.headers, ...extra, 'content-length': String(body.length) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** HTTP glue only: hands the raw request to `Ec2EndpointService` and writes what it answers. */
@Controller()
export class Ec2Controller {
  /** `x-koala-worker: <index>` on every answer of a multi-worker CLC (which process served it). */
  private readonly workerHeader: Record<string, string>;

  constructor(
    @Inject(Ec2EndpointService) private readonly endpoint: Ec2EndpointService,
    @Optional() @Inject(CLC_ROLE) role?: ClcRole,
  ) {
    this.workerHeader = role?.worker === undefined ? {} : { 'x-koala-worker': String(role.worker) };
  }

  @Post(EC2_PATHS)
  post(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.serve(req, res);
  }

  @Get(EC2_PATHS)
  get(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.serve(req, res);
  }

  private async serve(req: Request, res: Response): Promise<void> {
    const url = req.originalUrl || req.url;
    const q = url.indexOf('?');
    const input: Ec2HttpRequest = {
      method: req.method,
      path: q < 0 ? url : url.slice(0, q),
      query: q < 0 ? '' : url.slice(q + 1),
      headers: req.headers,
      readBody: (limit) => readRawBody(req, limit),
    };
    // HEAD (which Express routes to GET handlers) is not an EC2 verb; answered like PUT
    const out = req.method === 'HEAD' ? this.endpoint.refuse(405, 'UnsupportedHttpVerb', 'The HTTP verb HEAD is not supported; use GET or POST.') : await this.endpoint.handle(input);
    // writeHead/end, not res.send: Express would rewrite the content type to `text/xml; charset=utf-8`
    writeEc2Response(req, res, out, req.method === 'HEAD' ? { allow: 'GET, POST', ...this.workerHeader } : this.workerHeader);
  }
}
