import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { CLOCK, type Clock } from '@koala/runtime';
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { BLOB_STORE, SHA256_HEX, type BlobStore } from './blob-store.js';
import { BLOB_PATH_PREFIX, type BlobUrlSigner } from './blob-url-signer.js';
import { BLOB_URL_SIGNER } from './images.service.js';

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range); undefined → serve everything; 'unsatisfiable' → 416. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // malformed or several ranges: ignore (RFC 9110 allows)
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return undefined;
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/**
 * The image store over HTTP for NCs: `GET|HEAD /images/blobs/sha256/<hex>?expires=&signature=`
 * (URLs from `ImagesService.launchSpec`). 403 for a bad or expired signature, 404 for an unknown
 * digest; single `Range` requests are served (206/416).
 */
@Controller()
export class ImageBlobsController {
  constructor(
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(BLOB_URL_SIGNER) private readonly signer: BlobUrlSigner,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Get(`${BLOB_PATH_PREFIX}:digest`)
  async get(@Req() req: Request, @Res() res: Response): Promise<void> {
    const digest = String(req.params.digest ?? '');
    const q = req.query as Record<string, unknown>;
    const text = (status: number, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (!SHA256_HEX.test(digest)) return text(404, 'not found\n');
    const check = this.signer.verify(digest, typeof q.expires === 'string' ? q.expires : undefined, typeof q.signature === 'string' ? q.signature : undefined, this.clock.now());
    if (check !== 'ok') return text(403, check === 'expired' ? 'signature expired\n' : 'bad signature\n');
    const size = await this.blobs.size(digest);
    if (size === undefined) return text(404, 'not found\n');
    const range = parseRange(typeof req.headers.range === 'string' ? req.headers.range : undefined, size);
    if (range === 'unsatisfiable') return text(416, 'range not satisfiable\n', { 'content-range': `bytes */${size}` });
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      etag: `"sha256:${digest}"`,
      'cache-control': 'private, max-age=0',
    };
    if (range) {
      headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`;
      headers['content-length'] = String(range.end - range.start + 1);
    } else headers['content-length'] = String(size);
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD' || size === 0) {
      res.end();
      return;
    }
    const stream = await this.blobs.open(digest, range ?? undefined);
    await pipeline(stream, res).catch(() => res.destroy()); // client went away
  }
}
