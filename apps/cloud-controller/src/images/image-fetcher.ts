/**
 * Port: fetching an ImageLocation (RegisterImage). The one place the CLC makes outgoing HTTP
 * requests for images. Only http(s); the caller bounds time (signal) and size (the store).
 */
import { Readable } from 'node:stream';

export class FetchError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'FetchError';
  }
}

export interface ImageFetcher {
  /** Opens `url`; rejects with FetchError on a non-2xx answer or a network error. */
  open(url: string, signal: AbortSignal): Promise<{ body: Readable; contentLength?: number }>;
}
export const IMAGE_FETCHER = Symbol('IMAGE_FETCHER');

/** http(s) schemes only: anything else is refused before any request. */
export function isFetchableUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

/** Node's fetch (undici): follows http(s) redirects (at most 20), gives up when `signal` aborts. */
export class HttpImageFetcher implements ImageFetcher {
  async open(url: string, signal: AbortSignal): Promise<{ body: Readable; contentLength?: number }> {
    if (!isFetchableUrl(url)) throw new FetchError('Client.InvalidImageLocation', `unsupported image location ${url}`);
    let res: Response;
    try {
      res = await fetch(url, { signal, redirect: 'follow', headers: { 'user-agent': 'koala-cloud-controller' } });
    } catch (e) {
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      throw new FetchError('Client.InvalidImageLocation', `fetching ${url} failed: ${cause ?? (e as Error).message}`);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw new FetchError('Client.InvalidImageLocation', `fetching ${url}: HTTP ${res.status} ${res.statusText}`.trim());
    }
    const len = res.headers.get('content-length');
    return { body: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), contentLength: len ? Number(len) : undefined };
  }
}
