/** Fetching image bytes from the CLC's image store (signed, expiring URLs). */

/** An open download: iterate `body` once; `contentLength` when the server announced one. */
export interface BlobDownload {
  contentLength?: number;
  body: AsyncIterable<Uint8Array>;
  /** Releases the connection and timers; needed only when `body` is not read to its end. Idempotent. */
  cancel(): Promise<void>;
}

export interface BlobFetcher {
  /** Opens the URL; rejects (BlobFetchError) on a bad scheme, connection error or non-2xx status. */
  open(url: string): Promise<BlobDownload>;
}

export class BlobFetchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BlobFetchError';
  }
}

/** The URL without its query (the signature) and credentials, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

export interface HttpBlobFetcherOptions {
  /** Give up when no response headers arrive, or no body bytes arrive, for this long. Default 60 s. */
  stallTimeoutMs?: number;
  /** Give up when the whole download takes longer than this. Default: no limit. */
  totalTimeoutMs?: number;
  /** The fetch implementation (tests); default the global `fetch` of Node. */
  fetch?: typeof fetch;
}

/**
 * BlobFetcher over Node's `fetch` (undici), streaming the body: only http/https URLs; a stall
 * timeout on headers and between body chunks, and an optional total timeout.
 */
export class HttpBlobFetcher implements BlobFetcher {
  private readonly stallMs: number;

  constructor(private readonly opts: HttpBlobFetcherOptions = {}) {
    this.stallMs = opts.stallTimeoutMs ?? 60_000;
  }

  async open(url: string): Promise<BlobDownload> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new BlobFetchError('image URL is not a valid URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BlobFetchError(`image URL must use http or https, got ${u.protocol}`);
    const shown = redactUrl(url);
    const ac = new AbortController();
    const abort = (why: string) => ac.abort(new BlobFetchError(`${why} (${shown})`));
    const total = this.opts.totalTimeoutMs ? setTimeout(() => abort(`download took longer than ${this.opts.totalTimeoutMs} ms`), this.opts.totalTimeoutMs) : undefined;
    let stall: NodeJS.Timeout | undefined = setTimeout(() => abort(`no response within ${this.stallMs} ms`), this.stallMs);
    const done = () => {
      clearTimeout(stall);
      clearTimeout(total);
    };
    let res: Response;
    try {
      res = await (this.opts.fetch ?? fetch)(u, { signal: ac.signal, redirect: 'follow' });
    } catch (err) {
      done();
      throw err instanceof BlobFetchError ? err : new BlobFetchError(`cannot fetch ${shown}: ${reason(ac.signal.reason ?? err)}`, { cause: err });
    }
    clearTimeout(stall);
    if (!res.ok || !res.body) {
      done();
      await res.body?.cancel().catch(() => undefined);
      throw new BlobFetchError(`image store answered HTTP ${res.status} for ${shown}`);
    }
    const len = res.headers.get('content-length');
    const reader = res.body.getReader();
    const stallMs = this.stallMs;
    async function* body(): AsyncGenerator<Uint8Array> {
      let finished = false;
      try {
        for (;;) {
          stall = setTimeout(() => abort(`no data for ${stallMs} ms`), stallMs);
          let r: { done: boolean; value?: Uint8Array };
          try {
            r = await reader.read();
          } catch (err) {
            throw new BlobFetchError(`download of ${shown} failed: ${reason(ac.signal.reason ?? err)}`, { cause: err });
          } finally {
            clearTimeout(stall);
          }
          if (r.done) {
            finished = true;
            return;
          }
          yield r.value!;
        }
      } finally {
        done();
        if (!finished) await reader.cancel().catch(() => undefined);
      }
    }
    return {
      contentLength: len !== null && /^\d+$/.test(len) ? Number(len) : undefined,
      body: body(),
      cancel: async () => {
        done();
        await reader.cancel().catch(() => undefined);
      },
    };
  }
}

function reason(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}
