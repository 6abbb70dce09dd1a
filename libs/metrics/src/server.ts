import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metricsAccessAllowed } from './access.js';
import { metrics as defaultRegistry, PROMETHEUS_CONTENT_TYPE, type Registry } from './registry.js';

/** Answers one scrape on an HTTP request (shared by the CLC's API port and the metrics ports). */
export async function serveScrape(req: IncomingMessage, res: ServerResponse, opts: { token?: string; registry?: Registry }): Promise<void> {
  if (!metricsAccessAllowed(req.socket.remoteAddress, req.headers.authorization, opts.token)) {
    res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('metrics are readable from loopback or with the metrics token\n');
    return;
  }
  const body = Buffer.from(await (opts.registry ?? defaultRegistry).metricsText(), 'utf8');
  res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': String(body.length), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A component's own metrics port: GET/HEAD /metrics, 404 for anything else. */
export async function startMetricsServer(opts: { port: number; host: string; token?: string; registry?: Registry }): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found: GET /metrics\n');
      return;
    }
    serveScrape(req, res, opts).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
