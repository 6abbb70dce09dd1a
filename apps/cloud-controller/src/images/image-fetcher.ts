/**
 * Port: fetching an ImageLocation (RegisterImage). The one place the CLC makes outgoing HTTP
 * requests for images. Only http(s); the caller bounds time (signal) and size (the store).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { decideDestination, parseFetchAllowList, type FetchAllowList } from './fetch-destination.js';

/** What a tenant sees when a location cannot be fetched, whatever the cause (no port-scanner signal). */
export const LOCATION_NOT_FETCHED = 'The image location could not be fetched.';

export class FetchError extends Error {
  /**
   * @param message shown to the tenant (state reason)
   * @param detail for the log only (addresses, network errors, HTTP statuses)
   */
  constructor(
    readonly code: string,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'FetchError';
  }
}

function notFetched(detail: string): FetchError {
  return new FetchError('Client.InvalidImageLocation', LOCATION_NOT_FETCHED, detail);
}

export interface ImageFetcher {
  /** Opens `url`; rejects with FetchError on a non-2xx answer, a refused destination or a network error. */
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

/**
 * The location as stored and shown: without `user:password@`, query string and fragment (they
 * often carry secrets: basic credentials, presigned-URL signatures).
 */
export function displayLocation(s: string): string {
  try {
    const u = new URL(s);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString();
  } catch {
    return s;
  }
}

/** Resolves a host name to all its addresses (injectable for tests). */
export type Resolver = (host: string) => Promise<string[]>;
const systemResolver: Resolver = async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

export interface HttpImageFetcherOptions {
  /** KOALA_IMAGE_FETCH_ALLOW entries. */
  allow?: readonly string[];
  resolve?: Resolver;
  /** Redirects followed (each hop checked like the first); default 5. */
  maxRedirects?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * http/https with the destination checked before connecting: the host is resolved here, every
 * address must be public or allow-listed, and the TCP connection goes to the checked address
 * (https still verifies the certificate against the host name). Redirects are followed by hand,
 * each hop checked the same way.
 */
export class HttpImageFetcher implements ImageFetcher {
  private readonly allow: FetchAllowList;
  private readonly resolve: Resolver;
  private readonly maxRedirects: number;

  constructor(opts: HttpImageFetcherOptions = {}) {
    this.allow = parseFetchAllowList(opts.allow ?? []);
    this.resolve = opts.resolve ?? systemResolver;
    this.maxRedirects = opts.maxRedirects ?? 5;
  }

  async open(url: string, signal: AbortSignal): Promise<{ body: Readable; contentLength?: number }> {
    let current = url;
    for (let hop = 0; ; hop++) {
      if (!isFetchableUrl(current)) throw notFetched(`unsupported location ${displayLocation(current)}`);
      const res = await this.request(new URL(current), signal);
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status) && res.headers.location !== undefined) {
        res.resume();
        if (hop >= this.maxRedirects) throw notFetched(`more than ${this.maxRedirects} redirects from ${displayLocation(url)}`);
        try {
          current = new URL(res.headers.location, current).toString();
        } catch {
          throw notFetched(`bad redirect location from ${displayLocation(current)}`);
        }
        continue;
      }
      if (status < 200 || status > 299) {
        res.resume();
        throw notFetched(`${displayLocation(current)}: HTTP ${status} ${res.statusMessage ?? ''}`.trim());
      }
      const len = res.headers['content-length'];
      return { body: res, contentLength: len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined };
    }
  }

  /** One request to a checked, pinned address. */
  private async request(u: URL, signal: AbortSignal): Promise<IncomingMessage> {
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    let addresses: string[];
    try {
      addresses = /^[0-9.]+$|:/.test(host) ? [host] : await this.resolve(host);
    } catch (e) {
      throw notFetched(`resolving ${host}: ${(e as Error).message}`);
    }
    signal.throwIfAborted();
    const d = decideDestination(host, port, addresses, this.allow);
    if (!d.ok) throw notFetched(d.reason);
    // The connection goes to the address just checked, whatever a new lookup would say.
    const pinned: LookupFunction = (_name, options, cb) => {
      if ((options as { all?: boolean }).all) (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: d.address, family: d.family }]);
      else cb(null, d.address, d.family);
    };
    const mod = u.protocol === 'https:' ? https : http;
    const auth = u.username || u.password ? `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}` : undefined;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = mod.request(
        {
          protocol: u.protocol,
          host,
          port,
          path: `${u.pathname}${u.search}`,
          method: 'GET',
          auth,
          lookup: pinned,
          signal,
          // Host header and TLS name are the URL's host, not the pinned address.
          headers: { 'user-agent': 'koala-cloud-controller', host: u.host },
          ...(u.protocol === 'https:' ? { servername: /^[0-9.]+$|:/.test(host) ? undefined : host } : {}),
        },
        resolve,
      );
      req.on('error', (e) => reject(signal.aborted ? signal.reason : notFetched(`fetching ${displayLocation(u.toString())}: ${e.message}`)));
      req.end();
    });
  }
}
